//! API key rows.

use atrium_service_kit::ApiResult;
use sea_orm::{
    ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::Repo;
use crate::entity::{api_key, audit_event};

impl Repo {
    pub async fn insert_api_key(
        &self,
        row: api_key::Model,
        event: audit_event::Model,
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        api_key::Entity::insert(row.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        audit_event::Entity::insert(event.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn api_key(&self, id: &str) -> ApiResult<Option<api_key::Model>> {
        Ok(api_key::Entity::find_by_id(id).one(&self.db).await?)
    }

    pub async fn list_api_keys(
        &self,
        include_revoked: bool,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<api_key::Model>> {
        let mut query = api_key::Entity::find()
            .order_by_asc(api_key::Column::Id)
            .limit(limit);
        if !include_revoked {
            query = query.filter(api_key::Column::RevokedAt.is_null());
        }
        if let Some(after) = after {
            query = query.filter(api_key::Column::Id.gt(after));
        }
        Ok(query.all(&self.db).await?)
    }
}
