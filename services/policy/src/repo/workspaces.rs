//! Workspaces, their assignment to groups, and zones.

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::{Change, Repo, audit, insert_if_missing, map_err};
use crate::entity::{file_mapping, group_setting, group_workspace, workspace, zone};
use crate::settings::{self, SettingType, Value};

impl Repo {
    // ---- workspaces --------------------------------------------------------------------

    /// Creates a workspace, assigned to `assign_to` groups, atomically.
    pub async fn create_workspace(
        &self,
        row: workspace::Model,
        assign_to: &[String],
        change: Change,
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
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(row)
    }

    pub async fn workspace(&self, id: &str) -> ApiResult<workspace::Model> {
        workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("workspace {id}")))
    }

    pub async fn replace_workspace(
        &self,
        row: workspace::Model,
        change: Change,
    ) -> ApiResult<workspace::Model> {
        let txn = self.db.begin().await?;
        hold_zone(&txn, row.zone_id.as_deref()).await?;
        let updated = row.into_active_model().reset_all().update(&txn).await?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Deletes a workspace with its group assignments, its file mappings and the settings that
    /// name it (`default_image`), in one transaction.
    pub async fn delete_workspace(&self, id: &str, change: Change) -> ApiResult<()> {
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
        audit::record(&txn, change).await?;
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

    pub async fn assign(
        &self,
        group_id: &str,
        workspace_id: &str,
        change: Change,
    ) -> ApiResult<bool> {
        let row = group_workspace::Model {
            group_id: group_id.to_owned(),
            workspace_id: workspace_id.to_owned(),
        };
        let txn = self.db.begin().await?;
        let changed = insert_if_missing(
            &txn,
            row.into_active_model(),
            [
                group_workspace::Column::GroupId,
                group_workspace::Column::WorkspaceId,
            ],
        )
        .await?;
        if changed {
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(changed)
    }

    pub async fn unassign(
        &self,
        group_id: &str,
        workspace_id: &str,
        change: Change,
    ) -> ApiResult<bool> {
        let txn = self.db.begin().await?;
        let deleted = group_workspace::Entity::delete_many()
            .filter(group_workspace::Column::GroupId.eq(group_id))
            .filter(group_workspace::Column::WorkspaceId.eq(workspace_id))
            .exec(&txn)
            .await?;
        let changed = deleted.rows_affected > 0;
        if changed {
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(changed)
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

    pub async fn insert_zone(&self, row: zone::Model, change: Change) -> ApiResult<()> {
        let what = format!("zone {}", row.name);
        let txn = self.db.begin().await?;
        zone::Entity::insert(row.into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(|e| map_err(e, &what))?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn zone(&self, id: &str) -> ApiResult<zone::Model> {
        zone::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("zone {id}")))
    }

    pub async fn replace_zone(&self, row: zone::Model, change: Change) -> ApiResult<zone::Model> {
        let txn = self.db.begin().await?;
        let saved = row
            .into_active_model()
            .reset_all()
            .update(&txn)
            .await
            .map_err(|e| map_err(e, "zone with that name"))?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(saved)
    }

    pub async fn delete_zone(&self, id: &str, change: Change) -> ApiResult<()> {
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
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn zones(&self) -> ApiResult<Vec<zone::Model>> {
        Ok(zone::Entity::find()
            .order_by_asc(zone::Column::Name)
            .all(&self.db)
            .await?)
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
