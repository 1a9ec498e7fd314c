//! Usage: the owner's groups on each session and on each outbox event (billing-usage charges
//! per-group allowances by them), the owner's name on each event, and whether a session was
//! admitted without a usage check. Group ids are stored as a JSON array of strings
//! (`["id-1","id-2"]`, strongest group first); '' on rows written before this migration.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            ("sessions", text("group_ids").default("").take()),
            ("sessions", boolean("usage_unchecked").default(false).take()),
            ("session_events", string("username").default("").take()),
            ("session_events", text("group_ids").default("").take()),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        // The delivery reads undelivered events in id order.
        manager
            .create_index(
                Index::create()
                    .name("session_events_outbox")
                    .table("session_events")
                    .col("delivered_at")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("session_events_outbox")
                    .table("session_events")
                    .to_owned(),
            )
            .await?;
        for (table, column) in [
            ("session_events", "group_ids"),
            ("session_events", "username"),
            ("sessions", "usage_unchecked"),
            ("sessions", "group_ids"),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
