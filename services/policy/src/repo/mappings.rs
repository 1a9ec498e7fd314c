//! File mappings and SSO group mappings.

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::{Change, Repo, admins, audit, insert_if_missing};
use crate::entity::{file_mapping, membership, sso_mapping};

impl Repo {
    // ---- file mappings -----------------------------------------------------------------

    pub async fn insert_file_mapping(
        &self,
        row: file_mapping::Model,
        change: Change,
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        file_mapping::Entity::insert(row.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
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
        change: Change,
    ) -> ApiResult<file_mapping::Model> {
        let txn = self.db.begin().await?;
        let saved = row.into_active_model().reset_all().update(&txn).await?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(saved)
    }

    pub async fn delete_file_mapping(&self, id: &str, change: Change) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        let deleted = file_mapping::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("file mapping {id}")));
        }
        audit::record(&txn, change).await?;
        txn.commit().await?;
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

    pub async fn insert_sso_mapping(
        &self,
        row: sso_mapping::Model,
        change: Change,
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        sso_mapping::Entity::insert(row.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        audit::record(&txn, change).await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn sso_mapping(&self, id: &str) -> ApiResult<sso_mapping::Model> {
        sso_mapping::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("SSO group mapping {id}")))
    }

    pub async fn delete_sso_mapping(&self, id: &str, change: Change) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        let deleted = sso_mapping::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("SSO group mapping {id}")));
        }
        audit::record(&txn, change).await?;
        txn.commit().await?;
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
        guard: bool,
        change: Change,
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        let existed = guard && admins::begin_guard(&txn).await?;
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
        admins::end_guard(&txn, existed).await?;
        if !add.is_empty() || !remove.is_empty() {
            audit::record(&txn, change).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
