//! Groups, memberships, settings and permission grants.

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::{Change, Repo, admins, audit, contains_pattern, insert_if_missing, map_err};
use crate::entity::{
    file_mapping, group, group_permission, group_setting, group_workspace, membership, sso_mapping,
    workspace,
};

impl Repo {
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

    /// Creates a group through the API, with its audit event.
    pub async fn insert_group(&self, row: group::Model, change: Change) -> ApiResult<group::Model> {
        let what = format!("group {}", row.name);
        let txn = self.db.begin().await?;
        group::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(|e| map_err(e, &what))?;
        audit::record(&txn, change).await?;
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

    /// Updates a group; `guard`: the change may take administrator away from someone.
    pub async fn update_group(
        &self,
        row: group::ActiveModel,
        guard: bool,
        change: Change,
    ) -> ApiResult<group::Model> {
        let txn = self.db.begin().await?;
        let existed = guard && admins::begin_guard(&txn).await?;
        let saved = row
            .update(&txn)
            .await
            .map_err(|e| map_err(e, "group with that name"))?;
        admins::end_guard(&txn, existed).await?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(saved)
    }

    /// Deletes a group and everything that refers to it, in one transaction.
    pub async fn delete_group(&self, id: &str, guard: bool, change: Change) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        let existed = guard && admins::begin_guard(&txn).await?;
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
        admins::end_guard(&txn, existed).await?;
        audit::record(&txn, change).await?;
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
    /// Adds a membership unless it exists (recording `change` only then); true when added.
    /// `guard`: the group sets administrator (joining a stronger `false` takes it away).
    pub async fn add_member(
        &self,
        row: membership::Model,
        guard: bool,
        change: Change,
    ) -> ApiResult<bool> {
        let txn = self.db.begin().await?;
        let existed = guard && admins::begin_guard(&txn).await?;
        let added = insert_if_missing(
            &txn,
            row.into_active_model(),
            [membership::Column::GroupId, membership::Column::UserId],
        )
        .await?;
        if added {
            admins::end_guard(&txn, existed).await?;
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(added)
    }

    /// Removes a membership (recording `change` when there was one); `guard` as for
    /// [`Repo::add_member`].
    pub async fn remove_member(
        &self,
        group_id: &str,
        user_id: &str,
        guard: bool,
        change: Change,
    ) -> ApiResult<bool> {
        let txn = self.db.begin().await?;
        let existed = guard && admins::begin_guard(&txn).await?;
        let deleted = membership::Entity::delete_many()
            .filter(membership::Column::GroupId.eq(group_id))
            .filter(membership::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        let removed = deleted.rows_affected > 0;
        if removed {
            admins::end_guard(&txn, existed).await?;
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(removed)
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
    pub async fn remove_user(&self, user_id: &str, change: Change) -> ApiResult<()> {
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
        audit::record(&txn, change).await?;
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
        guard: bool,
        change: Change,
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        let existed = guard && admins::begin_guard(&txn).await?;
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
        admins::end_guard(&txn, existed).await?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Removes a group's setting (recording `change` when it was set); `guard` as for
    /// [`Repo::set_setting`].
    pub async fn unset_setting(
        &self,
        group_id: &str,
        name: &str,
        guard: bool,
        change: Change,
    ) -> ApiResult<bool> {
        let txn = self.db.begin().await?;
        let existed = guard && admins::begin_guard(&txn).await?;
        let deleted = group_setting::Entity::delete_many()
            .filter(group_setting::Column::GroupId.eq(group_id))
            .filter(group_setting::Column::Name.eq(name))
            .exec(&txn)
            .await?;
        let removed = deleted.rows_affected > 0;
        if removed {
            admins::end_guard(&txn, existed).await?;
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(removed)
    }

    pub async fn settings_of(&self, group_ids: &[String]) -> ApiResult<Vec<group_setting::Model>> {
        Ok(group_setting::Entity::find()
            .filter(group_setting::Column::GroupId.is_in(group_ids.iter().map(String::as_str)))
            .order_by_asc(group_setting::Column::Name)
            .all(&self.db)
            .await?)
    }

    // ---- permissions -------------------------------------------------------------------

    pub async fn grant(&self, group_id: &str, permission: &str, change: Change) -> ApiResult<bool> {
        let row = group_permission::Model {
            group_id: group_id.to_owned(),
            permission: permission.to_owned(),
        };
        let txn = self.db.begin().await?;
        let granted = insert_if_missing(
            &txn,
            row.into_active_model(),
            [
                group_permission::Column::GroupId,
                group_permission::Column::Permission,
            ],
        )
        .await?;
        if granted {
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(granted)
    }

    pub async fn revoke(
        &self,
        group_id: &str,
        permission: &str,
        change: Change,
    ) -> ApiResult<bool> {
        let txn = self.db.begin().await?;
        let deleted = group_permission::Entity::delete_many()
            .filter(group_permission::Column::GroupId.eq(group_id))
            .filter(group_permission::Column::Permission.eq(permission))
            .exec(&txn)
            .await?;
        let revoked = deleted.rows_affected > 0;
        if revoked {
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(revoked)
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
}
