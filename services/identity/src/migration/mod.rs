//! Identity's schema migrations. Released migrations are never edited; add a new one.

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_identity;
mod m20261123_000002_policy_outbox;
mod m20261127_000001_trust_model;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_identity::Migration),
            Box::new(m20261123_000002_policy_outbox::Migration),
            Box::new(m20261127_000001_trust_model::Migration),
        ]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        "identity_migrations".into_iden()
    }
}
