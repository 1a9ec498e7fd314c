//! The audit trail: every change made through policy, with its actor, target and detail.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_events")
                    .col(string("id").primary_key())
                    .col(timestamp_with_time_zone("at"))
                    .col(string("kind"))
                    .col(string_null("user_id"))
                    .col(string("actor"))
                    .col(string("target"))
                    .col(text("detail"))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("audit_events_user", "user_id"),
            ("audit_events_target", "target"),
            ("audit_events_at", "at"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("audit_events")
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_events").to_owned())
            .await
    }
}
