//! The session-manager's schema migrations. Released migrations are never edited; add a new one.

use sea_orm_migration::prelude::*;

mod m20261127_000001_create_sessions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261127_000001_create_sessions::Migration)]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        "session_manager_migrations".into_iden()
    }
}
