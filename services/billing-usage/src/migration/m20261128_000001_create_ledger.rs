//! The ledger: events as delivered, one row per session with its charge, the sessions each
//! subject (user or group) is charged for, per-day running totals, cost rates, and settings.

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
                    .table("usage_events")
                    .col(string("id").primary_key())
                    .col(string("session_id"))
                    .col(string("kind"))
                    .col(big_integer("at_ms"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("usage_sessions")
                    .col(string("session_id").primary_key())
                    .col(string("user_id"))
                    .col(string("username"))
                    .col(string("workspace_id"))
                    .col(string("agent_id"))
                    .col(string("zone_id"))
                    .col(text("group_ids"))
                    .col(big_integer("start_ms"))
                    .col(big_integer_null("end_ms"))
                    .col(text("charge"))
                    .col(big_integer("updated_ms"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("usage_subjects")
                    .col(string("subject"))
                    .col(string("session_id"))
                    .col(big_integer("start_ms"))
                    .col(big_integer_null("end_ms"))
                    .primary_key(Index::create().col("subject").col("session_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("usage_rollups")
                    .col(string("subject"))
                    .col(integer("day"))
                    .col(big_integer("ms"))
                    .primary_key(Index::create().col("subject").col("day"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("workspace_rates")
                    .col(string("workspace_id").primary_key())
                    .col(double("per_hour"))
                    .col(string("currency"))
                    .col(big_integer("updated_ms"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("ledger_meta")
                    .col(string("key").primary_key())
                    .col(text("value"))
                    .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            ("usage_events_session", "usage_events", &["session_id"][..]),
            (
                "usage_sessions_period",
                "usage_sessions",
                &["start_ms", "end_ms"][..],
            ),
            (
                "usage_subjects_open",
                "usage_subjects",
                &["subject", "end_ms"][..],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(table);
            for col in cols {
                index.col(*col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "ledger_meta",
            "workspace_rates",
            "usage_rollups",
            "usage_subjects",
            "usage_sessions",
            "usage_events",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
