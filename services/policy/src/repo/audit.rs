//! The audit trail: every write of the repository takes a [`Change`] and records it in the
//! same transaction, so a refused or failed write leaves no event and no change goes
//! unrecorded.

use atrium_service_kit::ApiResult;
use atrium_service_kit::auth::Principal;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value as Json;

use super::Repo;
use crate::entity::audit_event;

/// One change, as it will be recorded: who (the actor), what kind, on what, about whom, and
/// the detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub actor: String,
    pub kind: &'static str,
    pub target: String,
    pub user_id: Option<String>,
    pub detail: Json,
}

impl Change {
    /// `kind` (e.g. `group.update`) by `principal` on `target` (e.g. `group:<id>`).
    pub fn new(principal: &Principal, kind: &'static str, target: impl Into<String>) -> Self {
        Change {
            actor: principal.actor(),
            kind,
            target: target.into(),
            user_id: None,
            detail: Json::Object(Default::default()),
        }
    }

    /// The user the change is about.
    pub fn about(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// What changed (a JSON object).
    pub fn detail(mut self, detail: Json) -> Self {
        self.detail = detail;
        self
    }

    fn into_model(self) -> audit_event::Model {
        audit_event::Model {
            id: uuid::Uuid::now_v7().hyphenated().to_string(),
            at: Utc::now(),
            kind: self.kind.to_owned(),
            user_id: self.user_id,
            actor: self.actor,
            target: self.target,
            detail: self.detail.to_string(),
        }
    }
}

/// Records `change` on `conn` (the write's own transaction).
pub async fn record<C: ConnectionTrait>(conn: &C, change: Change) -> ApiResult<()> {
    audit_event::Entity::insert(change.into_model().into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Filters for listing the trail.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub kind: Option<String>,
    pub target: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Repo {
    /// Events newest first (ids are UUIDv7), before the keyset `before` (an event id).
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<audit_event::Model>> {
        let mut query = audit_event::Entity::find()
            .order_by_desc(audit_event::Column::Id)
            .limit(limit);
        if let Some(user_id) = &filter.user_id {
            query = query.filter(audit_event::Column::UserId.eq(user_id.as_str()));
        }
        if let Some(kind) = &filter.kind {
            query = query.filter(audit_event::Column::Kind.eq(kind.as_str()));
        }
        if let Some(target) = &filter.target {
            query = query.filter(audit_event::Column::Target.eq(target.as_str()));
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(audit_event::Column::Actor.eq(actor.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_event::Column::At.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_event::Column::At.lt(until));
        }
        if let Some(before) = before {
            query = query.filter(audit_event::Column::Id.lt(before));
        }
        Ok(query.all(self.db()).await?)
    }
}
