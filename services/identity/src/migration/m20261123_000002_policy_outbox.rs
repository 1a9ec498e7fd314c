//! The outbox of user lifecycle events for the policy service.

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
                    .table("policy_outbox")
                    .col(string("id").primary_key())
                    .col(string("user_id"))
                    .col(string("username"))
                    .col(string("kind"))
                    .col(boolean("administrator"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(integer("attempts"))
                    .to_owned(),
            )
            .await
    }
}
