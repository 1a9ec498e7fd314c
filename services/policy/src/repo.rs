//! Every database access of the policy service, and the one place database errors become domain
//! errors.

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};

use crate::entity::{
    file_mapping, group, group_permission, group_setting, group_workspace, membership, sso_mapping,
    workspace, zone,
};
use crate::settings::{self, SettingType, Value};

fn map_err(error: DbErr, what: &str) -> ApiError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::AlreadyExists(what.to_owned()),
        _ => ApiError::from(error),
    }
}

fn contains_pattern(needle: &str) -> LikeExpr {
    let escaped: String = needle
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// Inserts a row unless its primary key exists; true when inserted.
async fn insert_if_missing<C, A>(
    conn: &C,
    row: A,
    key: impl IntoIterator<Item = <A::Entity as EntityTrait>::Column>,
) -> ApiResult<bool>
where
    C: ConnectionTrait,
    A: ActiveModelTrait + Send,
{
    let inserted = <A::Entity as EntityTrait>::insert(row)
        .on_conflict(OnConflict::columns(key).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(inserted > 0)
}

#[derive(Clone)]
pub struct Repo {
    db: DatabaseConnection,
}

impl Repo {
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    // ---- groups ------------------------------------------------------------------------

    /// Creates a group (and, for seeding, its first settings and permissions) atomically.
    pub async fn create_group(
        &self,
        row: group::Model,
        settings: Vec<group_setting::Model>,
        permissions: Vec<String>,
    ) -> ApiResult<group::Model> {
        let what = format!("group {}", row.name);
        let txn = self.db.begin().await?;
        group::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(|e| map_err(e, &what))?;
        for s in settings {
            group_setting::Entity::insert(s.into_active_model())
                .exec_without_returning(&txn)
                .await?;
        }
        for p in permissions {
            let grant = group_permission::Model {
                group_id: row.id.clone(),
                permission: p,
            };
            group_permission::Entity::insert(grant.into_active_model())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(row)
    }

    pub async fn group(&self, id: &str) -> ApiResult<group::Model> {
        group::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("group {id}")))
    }

    pub async fn find_group(&self, id: &str) -> ApiResult<Option<group::Model>> {
        Ok(group::Entity::find_by_id(id).one(&self.db).await?)
    }

    pub async fn group_by_name(&self, name: &str) -> ApiResult<Option<group::Model>> {
        Ok(group::Entity::find()
            .filter(group::Column::NameKey.eq(name.to_lowercase()))
            .one(&self.db)
            .await?)
    }

    pub async fn update_group(&self, row: group::ActiveModel) -> ApiResult<group::Model> {
        row.update(&self.db)
            .await
            .map_err(|e| map_err(e, "group with that name"))
    }

    /// Deletes a group and everything that refers to it, in one transaction.
    pub async fn delete_group(&self, id: &str) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        membership::Entity::delete_many()
            .filter(membership::Column::GroupId.eq(id))
            .exec(&txn)
            .await?;
        group_setting::Entity::delete_many()
            .filter(group_setting::Column::GroupId.eq(id))
            .exec(&txn)
            .await?;
        group_permission::Entity::delete_many()
            .filter(group_permission::Column::GroupId.eq(id))
            .exec(&txn)
            .await?;
        group_workspace::Entity::delete_many()
            .filter(group_workspace::Column::GroupId.eq(id))
            .exec(&txn)
            .await?;
        file_mapping::Entity::delete_many()
            .filter(file_mapping::Column::ScopeKind.eq("group"))
            .filter(file_mapping::Column::ScopeId.eq(id))
            .exec(&txn)
            .await?;
        sso_mapping::Entity::delete_many()
            .filter(sso_mapping::Column::GroupId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = group::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("group {id}")));
        }
        txn.commit().await?;
        Ok(())
    }

    /// Groups ordered by (priority, name), after the keyset `(priority, name_key)` (names are
    /// unique ignoring case, so the order is total).
    pub async fn list_groups(
        &self,
        name_contains: &str,
        after: Option<(i32, String)>,
        limit: u64,
    ) -> ApiResult<Vec<group::Model>> {
        let mut cond = Condition::all();
        if !name_contains.is_empty() {
            cond =
                cond.add(Expr::col(group::Column::NameKey).like(contains_pattern(name_contains)));
        }
        if let Some((priority, name_key)) = after {
            cond = cond.add(
                Condition::any()
                    .add(group::Column::Priority.gt(priority))
                    .add(
                        Condition::all()
                            .add(group::Column::Priority.eq(priority))
                            .add(group::Column::NameKey.gt(name_key)),
                    ),
            );
        }
        Ok(group::Entity::find()
            .filter(cond)
            .order_by_asc(group::Column::Priority)
            .order_by_asc(group::Column::NameKey)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    pub async fn groups_by_ids(&self, ids: &[String]) -> ApiResult<Vec<group::Model>> {
        Ok(group::Entity::find()
            .filter(group::Column::Id.is_in(ids.iter().map(String::as_str)))
            .order_by_asc(group::Column::Priority)
            .order_by_asc(group::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn member_count(&self, group_id: &str) -> ApiResult<u64> {
        use sea_orm::PaginatorTrait;
        Ok(membership::Entity::find()
            .filter(membership::Column::GroupId.eq(group_id))
            .count(&self.db)
            .await?)
    }

    // ---- memberships -------------------------------------------------------------------

    /// Adds a membership unless it exists; true when added.
    pub async fn add_member(&self, row: membership::Model) -> ApiResult<bool> {
        insert_if_missing(
            &self.db,
            row.into_active_model(),
            [membership::Column::GroupId, membership::Column::UserId],
        )
        .await
    }

    pub async fn remove_member(&self, group_id: &str, user_id: &str) -> ApiResult<bool> {
        let deleted = membership::Entity::delete_many()
            .filter(membership::Column::GroupId.eq(group_id))
            .filter(membership::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected > 0)
    }

    pub async fn membership(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> ApiResult<Option<membership::Model>> {
        Ok(
            membership::Entity::find_by_id((group_id.to_owned(), user_id.to_owned()))
                .one(&self.db)
                .await?,
        )
    }

    pub async fn list_members(
        &self,
        group_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<membership::Model>> {
        let mut query = membership::Entity::find()
            .filter(membership::Column::GroupId.eq(group_id))
            .order_by_asc(membership::Column::UserId)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(membership::Column::UserId.gt(after));
        }
        Ok(query.all(&self.db).await?)
    }

    pub async fn user_memberships(&self, user_id: &str) -> ApiResult<Vec<membership::Model>> {
        Ok(membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?)
    }

    /// Removes every membership of a user (the user was deleted).
    pub async fn remove_user(&self, user_id: &str) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        membership::Entity::delete_many()
            .filter(membership::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        file_mapping::Entity::delete_many()
            .filter(file_mapping::Column::ScopeKind.eq("user"))
            .filter(file_mapping::Column::ScopeId.eq(user_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    // ---- settings ----------------------------------------------------------------------

    /// Sets (or replaces) a group's setting. `workspace`: the workspace the value names (an
    /// image-typed setting), which must exist and is share-locked until the write commits, so
    /// it cannot be deleted in between (see `delete_workspace`).
    pub async fn set_setting(
        &self,
        row: group_setting::Model,
        workspace: Option<&str>,
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        if let Some(id) = workspace {
            let found = workspace::Entity::find_by_id(id)
                .lock_shared()
                .one(&txn)
                .await?;
            if found.is_none() {
                return Err(ApiError::invalid(
                    row.name.clone(),
                    format!("no such workspace {id}"),
                ));
            }
        }
        group_setting::Entity::insert(row.into_active_model())
            .on_conflict(
                OnConflict::columns([group_setting::Column::GroupId, group_setting::Column::Name])
                    .update_columns([
                        group_setting::Column::Value,
                        group_setting::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn unset_setting(&self, group_id: &str, name: &str) -> ApiResult<bool> {
        let deleted = group_setting::Entity::delete_many()
            .filter(group_setting::Column::GroupId.eq(group_id))
            .filter(group_setting::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected > 0)
    }

    pub async fn settings_of(&self, group_ids: &[String]) -> ApiResult<Vec<group_setting::Model>> {
        Ok(group_setting::Entity::find()
            .filter(group_setting::Column::GroupId.is_in(group_ids.iter().map(String::as_str)))
            .order_by_asc(group_setting::Column::Name)
            .all(&self.db)
            .await?)
    }

    // ---- permissions -------------------------------------------------------------------

    pub async fn grant(&self, group_id: &str, permission: &str) -> ApiResult<bool> {
        let row = group_permission::Model {
            group_id: group_id.to_owned(),
            permission: permission.to_owned(),
        };
        insert_if_missing(
            &self.db,
            row.into_active_model(),
            [
                group_permission::Column::GroupId,
                group_permission::Column::Permission,
            ],
        )
        .await
    }

    pub async fn revoke(&self, group_id: &str, permission: &str) -> ApiResult<bool> {
        let deleted = group_permission::Entity::delete_many()
            .filter(group_permission::Column::GroupId.eq(group_id))
            .filter(group_permission::Column::Permission.eq(permission))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected > 0)
    }

    pub async fn permissions_of(
        &self,
        group_ids: &[String],
    ) -> ApiResult<Vec<group_permission::Model>> {
        Ok(group_permission::Entity::find()
            .filter(group_permission::Column::GroupId.is_in(group_ids.iter().map(String::as_str)))
            .order_by_asc(group_permission::Column::Permission)
            .all(&self.db)
            .await?)
    }

    // ---- workspaces --------------------------------------------------------------------

    /// Creates a workspace, assigned to `assign_to` groups, atomically.
    pub async fn create_workspace(
        &self,
        row: workspace::Model,
        assign_to: &[String],
    ) -> ApiResult<workspace::Model> {
        let txn = self.db.begin().await?;
        hold_zone(&txn, row.zone_id.as_deref()).await?;
        workspace::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        for group_id in assign_to {
            let link = group_workspace::Model {
                group_id: group_id.clone(),
                workspace_id: row.id.clone(),
            };
            group_workspace::Entity::insert(link.into_active_model())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(row)
    }

    pub async fn workspace(&self, id: &str) -> ApiResult<workspace::Model> {
        workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("workspace {id}")))
    }

    pub async fn replace_workspace(&self, row: workspace::Model) -> ApiResult<workspace::Model> {
        let txn = self.db.begin().await?;
        hold_zone(&txn, row.zone_id.as_deref()).await?;
        let updated = row.into_active_model().reset_all().update(&txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Deletes a workspace with its group assignments, its file mappings and the settings that
    /// name it (`default_image`), in one transaction.
    pub async fn delete_workspace(&self, id: &str) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        // Locked first: a setting being pointed at it holds a share lock (`set_setting`).
        let found = workspace::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        if found.is_none() {
            return Err(ApiError::not_found(format!("workspace {id}")));
        }
        let naming_it = settings::catalogue()
            .iter()
            .filter(|d| matches!(d.ty, SettingType::Image))
            .map(|d| d.name);
        group_setting::Entity::delete_many()
            .filter(group_setting::Column::Name.is_in(naming_it))
            .filter(group_setting::Column::Value.eq(Value::String(id.to_owned()).to_storage()))
            .exec(&txn)
            .await?;
        group_workspace::Entity::delete_many()
            .filter(group_workspace::Column::WorkspaceId.eq(id))
            .exec(&txn)
            .await?;
        file_mapping::Entity::delete_many()
            .filter(file_mapping::Column::ScopeKind.eq("workspace"))
            .filter(file_mapping::Column::ScopeId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = workspace::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("workspace {id}")));
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn list_workspaces(
        &self,
        include_disabled: bool,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<workspace::Model>> {
        let mut query = workspace::Entity::find()
            .order_by_asc(workspace::Column::Id)
            .limit(limit);
        if !include_disabled {
            query = query.filter(workspace::Column::Enabled.eq(true));
        }
        if let Some(after) = after {
            query = query.filter(workspace::Column::Id.gt(after));
        }
        Ok(query.all(&self.db).await?)
    }

    pub async fn assign(&self, group_id: &str, workspace_id: &str) -> ApiResult<bool> {
        let row = group_workspace::Model {
            group_id: group_id.to_owned(),
            workspace_id: workspace_id.to_owned(),
        };
        insert_if_missing(
            &self.db,
            row.into_active_model(),
            [
                group_workspace::Column::GroupId,
                group_workspace::Column::WorkspaceId,
            ],
        )
        .await
    }

    pub async fn unassign(&self, group_id: &str, workspace_id: &str) -> ApiResult<bool> {
        let deleted = group_workspace::Entity::delete_many()
            .filter(group_workspace::Column::GroupId.eq(group_id))
            .filter(group_workspace::Column::WorkspaceId.eq(workspace_id))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected > 0)
    }

    /// Enabled workspaces assigned to any of the groups.
    pub async fn workspaces_of(&self, group_ids: &[String]) -> ApiResult<Vec<workspace::Model>> {
        let links = group_workspace::Entity::find()
            .filter(group_workspace::Column::GroupId.is_in(group_ids.iter().map(String::as_str)))
            .all(&self.db)
            .await?;
        let mut ids: Vec<String> = links.into_iter().map(|l| l.workspace_id).collect();
        ids.sort();
        ids.dedup();
        Ok(workspace::Entity::find()
            .filter(workspace::Column::Id.is_in(ids))
            .filter(workspace::Column::Enabled.eq(true))
            .order_by_asc(workspace::Column::Id)
            .all(&self.db)
            .await?)
    }

    // ---- zones -------------------------------------------------------------------------

    pub async fn insert_zone(&self, row: zone::Model) -> ApiResult<()> {
        let what = format!("zone {}", row.name);
        zone::Entity::insert(row.into_active_model())
            .exec_without_returning(&self.db)
            .await
            .map_err(|e| map_err(e, &what))?;
        Ok(())
    }

    pub async fn zone(&self, id: &str) -> ApiResult<zone::Model> {
        zone::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("zone {id}")))
    }

    pub async fn replace_zone(&self, row: zone::Model) -> ApiResult<zone::Model> {
        let active = row.into_active_model().reset_all();
        active
            .update(&self.db)
            .await
            .map_err(|e| map_err(e, "zone with that name"))
    }

    pub async fn delete_zone(&self, id: &str) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        // Locked first: a workspace being pointed at this zone right now holds a share lock on
        // it (`hold_zone`), so either that write commits before this check sees it, or it waits
        // and then finds the zone gone. (SQLite runs one transaction at a time anyway.)
        let zone = zone::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        if zone.is_none() {
            return Err(ApiError::not_found(format!("zone {id}")));
        }
        let used = workspace::Entity::find()
            .filter(workspace::Column::ZoneId.eq(id))
            .one(&txn)
            .await?;
        if let Some(ws) = used {
            return Err(ApiError::FailedPrecondition(format!(
                "zone {id} is used by workspace {} ({})",
                ws.friendly_name, ws.id
            )));
        }
        let deleted = zone::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("zone {id}")));
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn zones(&self) -> ApiResult<Vec<zone::Model>> {
        Ok(zone::Entity::find()
            .order_by_asc(zone::Column::Name)
            .all(&self.db)
            .await?)
    }

    // ---- file mappings -----------------------------------------------------------------

    pub async fn insert_file_mapping(&self, row: file_mapping::Model) -> ApiResult<()> {
        file_mapping::Entity::insert(row.into_active_model())
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    pub async fn file_mapping(&self, id: &str) -> ApiResult<file_mapping::Model> {
        file_mapping::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("file mapping {id}")))
    }

    pub async fn replace_file_mapping(
        &self,
        row: file_mapping::Model,
    ) -> ApiResult<file_mapping::Model> {
        let active = row.into_active_model().reset_all();
        Ok(active.update(&self.db).await?)
    }

    pub async fn delete_file_mapping(&self, id: &str) -> ApiResult<()> {
        let deleted = file_mapping::Entity::delete_by_id(id)
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("file mapping {id}")));
        }
        Ok(())
    }

    pub async fn file_mappings(
        &self,
        scope_kind: &str,
        scope_ids: &[String],
    ) -> ApiResult<Vec<file_mapping::Model>> {
        Ok(file_mapping::Entity::find()
            .filter(file_mapping::Column::ScopeKind.eq(scope_kind))
            .filter(file_mapping::Column::ScopeId.is_in(scope_ids.iter().map(String::as_str)))
            .order_by_asc(file_mapping::Column::Id)
            .all(&self.db)
            .await?)
    }

    // ---- SSO group mappings ------------------------------------------------------------

    pub async fn insert_sso_mapping(&self, row: sso_mapping::Model) -> ApiResult<()> {
        sso_mapping::Entity::insert(row.into_active_model())
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    pub async fn delete_sso_mapping(&self, id: &str) -> ApiResult<()> {
        let deleted = sso_mapping::Entity::delete_by_id(id).exec(&self.db).await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("SSO group mapping {id}")));
        }
        Ok(())
    }

    pub async fn sso_mappings(
        &self,
        group_id: Option<&str>,
        provider_id: Option<&str>,
    ) -> ApiResult<Vec<sso_mapping::Model>> {
        let mut query = sso_mapping::Entity::find().order_by_asc(sso_mapping::Column::Id);
        if let Some(g) = group_id {
            query = query.filter(sso_mapping::Column::GroupId.eq(g));
        }
        if let Some(p) = provider_id {
            query = query.filter(sso_mapping::Column::ProviderId.eq(p));
        }
        Ok(query.all(&self.db).await?)
    }

    /// Applies SSO membership changes atomically: adds and removes.
    pub async fn apply_sso(
        &self,
        user_id: &str,
        source: &str,
        add: &[String],
        remove: &[String],
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        let now = chrono::Utc::now();
        for group_id in add {
            let row = membership::Model {
                group_id: group_id.clone(),
                user_id: user_id.to_owned(),
                source: source.to_owned(),
                added_at: now,
            };
            insert_if_missing(
                &txn,
                row.into_active_model(),
                [membership::Column::GroupId, membership::Column::UserId],
            )
            .await?;
        }
        if !remove.is_empty() {
            membership::Entity::delete_many()
                .filter(membership::Column::UserId.eq(user_id))
                .filter(membership::Column::GroupId.is_in(remove.iter().map(String::as_str)))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

/// Within a workspace write: checks that the zone exists and share-locks it until the
/// transaction ends, so the zone cannot be deleted under the workspace (see `delete_zone`).
async fn hold_zone(txn: &sea_orm::DatabaseTransaction, zone_id: Option<&str>) -> ApiResult<()> {
    let Some(zone_id) = zone_id else {
        return Ok(());
    };
    zone::Entity::find_by_id(zone_id)
        .lock_shared()
        .one(txn)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::invalid("workspace.zone_id", "no such zone"))
}
