//! Billing-usage's schema migrations. Released migrations are never edited; add a new one.

use sea_orm_migration::prelude::*;

mod m20261128_000001_create_ledger;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261128_000001_create_ledger::Migration)]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        "billing_usage_migrations".into_iden()
    }
}
