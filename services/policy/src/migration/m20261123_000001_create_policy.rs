//! The first policy schema: groups, memberships, settings, permissions, workspaces and their
//! assignment, zones, file mappings and SSO group mappings.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn id(name: &'static str) -> ColumnDef {
    string(name).primary_key().take()
}

/// A table keyed by two string columns.
fn pair_table(table: &'static str, a: &'static str, b: &'static str) -> TableCreateStatement {
    Table::create()
        .table(table)
        .col(string(a))
        .col(string(b))
        .primary_key(Index::create().col(a).col(b))
        .to_owned()
}

fn index(name: &'static str, table: &'static str, col: &'static str) -> IndexCreateStatement {
    Index::create().name(name).table(table).col(col).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("groups")
                    .col(id("id"))
                    .col(string("name"))
                    .col(string_uniq("name_key"))
                    .col(text("description"))
                    .col(integer("priority"))
                    .col(boolean("is_system"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        let mut memberships = pair_table("memberships", "group_id", "user_id");
        memberships
            .col(string("source"))
            .col(timestamp_with_time_zone("added_at"));
        manager.create_table(memberships).await?;
        manager
            .create_index(index("memberships_user", "memberships", "user_id"))
            .await?;
        let mut settings = pair_table("group_settings", "group_id", "name");
        settings
            .col(text("value"))
            .col(timestamp_with_time_zone("updated_at"));
        manager.create_table(settings).await?;
        manager
            .create_table(pair_table("group_permissions", "group_id", "permission"))
            .await?;
        manager
            .create_table(pair_table("group_workspaces", "group_id", "workspace_id"))
            .await?;
        manager
            .create_index(index(
                "group_workspaces_workspace",
                "group_workspaces",
                "workspace_id",
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("zones")
                    .col(id("id"))
                    .col(string_uniq("name"))
                    .col(boolean("search_alternate_zones"))
                    .col(string("load_strategy"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("workspaces")
                    .col(id("id"))
                    .col(string("name"))
                    .col(string("friendly_name"))
                    .col(text("description"))
                    .col(text("categories"))
                    .col(boolean("enabled"))
                    .col(boolean("hidden"))
                    .col(double("cores"))
                    .col(big_integer("memory_mib"))
                    .col(integer("gpu_count"))
                    .col(boolean("require_gpu"))
                    .col(text("run_config"))
                    .col(text("exec_config"))
                    .col(text("volume_mappings"))
                    .col(string("persistent_profile_path"))
                    .col(big_integer_null("session_time_limit_secs"))
                    .col(string_null("zone_id"))
                    .col(string("thumbnail_url"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("file_mappings")
                    .col(id("id"))
                    .col(string("scope_kind"))
                    .col(string("scope_id"))
                    .col(string("name"))
                    .col(text("description"))
                    .col(string("destination"))
                    .col(text("content"))
                    .col(boolean("content_is_base64"))
                    .col(boolean("executable"))
                    .col(boolean("readable"))
                    .col(boolean("writable"))
                    .col(boolean("enabled"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("file_mappings_scope", "file_mappings", "scope_id"))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("sso_mappings")
                    .col(id("id"))
                    .col(string("group_id"))
                    .col(string("provider_id"))
                    .col(string("provider_type"))
                    .col(boolean("assign_all_users"))
                    .col(text("group_attributes"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "sso_mappings_provider",
                "sso_mappings",
                "provider_id",
            ))
            .await?;
        Ok(())
    }
}
