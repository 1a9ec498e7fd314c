//! The session-manager's schema migrations. Released migrations are never edited; add a new one.

use sea_orm_migration::prelude::*;

mod m20261127_000001_create_sessions;
mod m20261201_000001_usage_groups;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_sessions::Migration),
            Box::new(m20261201_000001_usage_groups::Migration),
        ]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        "session_manager_migrations".into_iden()
    }
}
