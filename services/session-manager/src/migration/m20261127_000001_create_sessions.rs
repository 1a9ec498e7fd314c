//! Sessions, the lifecycle outbox, the audit trail and the admission lock.

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
                    .table("sessions")
                    .col(string("id").primary_key())
                    .col(string("user_id"))
                    .col(string("username"))
                    .col(string("workspace_id"))
                    .col(string("image"))
                    .col(string("zone_id"))
                    .col(string("agent_id"))
                    .col(string("desired_state"))
                    .col(string("observed_state"))
                    .col(big_integer("generation"))
                    .col(integer("progress"))
                    .col(text("message"))
                    .col(string("host"))
                    .col(integer("port"))
                    .col(string("container_id"))
                    .col(text_null("secret_sealed"))
                    .col(text("spec_sealed"))
                    .col(string("url"))
                    .col(double("reserve_cores"))
                    .col(big_integer("reserve_memory_mib"))
                    .col(integer("reserve_gpus"))
                    .col(big_integer("keepalive_secs"))
                    .col(big_integer_null("time_limit_secs"))
                    .col(string("expiration_action"))
                    .col(boolean("first_launch_done"))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("last_keepalive_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone("state_since"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .col(string_null("lease_owner"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("sessions_user", &["user_id", "observed_state"][..]),
            ("sessions_agent", &["agent_id", "observed_state"][..]),
            ("sessions_observed", &["observed_state"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("sessions");
            for col in cols {
                index.col(*col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("session_events")
                    .col(string("id").primary_key())
                    .col(string("session_id"))
                    .col(string("user_id"))
                    .col(string("workspace_id"))
                    .col(string("agent_id"))
                    .col(string("zone_id"))
                    .col(string("kind"))
                    .col(timestamp_with_time_zone("at"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("session_events_undelivered")
                    .table("session_events")
                    .col("delivered_at")
                    .to_owned(),
            )
            .await?;
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
        manager
            .create_table(
                Table::create()
                    .table("placement_lock")
                    .col(integer("id").primary_key())
                    .col(big_integer("admissions"))
                    .to_owned(),
            )
            .await?;
        let seed = Query::insert()
            .into_table("placement_lock")
            .columns(["id", "admissions"])
            .values_panic([1.into(), 0i64.into()])
            .to_owned();
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "placement_lock",
            "audit_events",
            "session_events",
            "sessions",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
