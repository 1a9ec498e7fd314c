//! Policy's schema migrations. Released migrations are never edited; add a new one.

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_policy;
mod m20261127_000001_audit_events;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_policy::Migration),
            Box::new(m20261127_000001_audit_events::Migration),
        ]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        "policy_migrations".into_iden()
    }
}
