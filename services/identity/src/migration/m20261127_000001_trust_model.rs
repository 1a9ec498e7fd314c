//! The trust model (issue 8): API keys get an owner, revocations of login sessions are kept with
//! an increasing cursor for `WatchRevocations`, and automatic lockouts expire.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .add_column(string_null("owner_user_id"))
                    .to_owned(),
            )
            .await?;
        // Keys created before owners existed belong to the user who created them.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE api_keys SET owner_user_id = SUBSTR(created_by, 6) \
                 WHERE created_by LIKE 'user:%'",
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(timestamp_with_time_zone_null("locked_until"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("revocations")
                    .col(big_pk_auto("id"))
                    .col(string("login_session_id"))
                    .col(string("user_id"))
                    .col(timestamp_with_time_zone("forget_after"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("revocations_forget_after")
                    .table("revocations")
                    .col("forget_after")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
