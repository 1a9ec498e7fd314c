//! Retention: audit events and ended login sessions older than the configured windows are
//! deleted by a background task (see `crate::background`).

use atrium_service_kit::ApiResult;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::Repo;
use crate::entity::{audit_event, login_session};

impl Repo {
    /// Deletes audit events recorded before `cutoff`; returns how many.
    pub async fn prune_audit(&self, cutoff: DateTime<Utc>) -> ApiResult<u64> {
        Ok(audit_event::Entity::delete_many()
            .filter(audit_event::Column::At.lt(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Deletes login sessions that ended (revoked or expired) before `cutoff`.
    pub async fn prune_login_sessions(&self, cutoff: DateTime<Utc>) -> ApiResult<u64> {
        let ended = Condition::any()
            .add(login_session::Column::RevokedAt.lt(cutoff))
            .add(login_session::Column::ExpiresAt.lt(cutoff));
        Ok(login_session::Entity::delete_many()
            .filter(ended)
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
