//! The audit trail of policy's changes, newest first (the same shape and filters as
//! identity's, plus target and actor).

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::paging::Page;
use atrium_service_kit::validate::from_timestamp;
use atrium_service_kit::{ApiError, ApiResult};

use crate::convert::{self, timestamp};
use crate::core::Core;
use crate::entity::audit_event;
use crate::repo::AuditFilter;

fn to_proto(e: &audit_event::Model) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id.clone(),
        at: Some(timestamp(e.at)),
        kind: e.kind.clone(),
        user_id: e.user_id.clone().unwrap_or_default(),
        actor: e.actor.clone(),
        detail: e.detail.clone(),
        target: e.target.clone(),
    }
}

fn optional(field: &str, raw: &str) -> ApiResult<Option<String>> {
    let value = convert::text(field, raw, 256)?;
    Ok((!value.is_empty()).then_some(value))
}

pub async fn list(
    core: &Core,
    principal: &Principal,
    req: pb::ListAuditEventsRequest,
) -> ApiResult<pb::ListAuditEventsResponse> {
    core.require(principal, permissions::AUDIT_VIEW).await?;
    let page = Page::from_request(req.page.as_ref())?;
    let filter = AuditFilter {
        user_id: (!req.user_id.trim().is_empty())
            .then(|| convert::uuid("user_id", &req.user_id))
            .transpose()?,
        kind: optional("kind", req.kind.trim())?,
        target: optional("target", req.target.trim())?,
        actor: optional("actor", req.actor.trim())?,
        since: req
            .since
            .as_ref()
            .map(|t| from_timestamp("since", t))
            .transpose()?,
        until: req
            .until
            .as_ref()
            .map(|t| from_timestamp("until", t))
            .transpose()?,
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        return Err(ApiError::invalid("until", "must not be before since"));
    }
    let rows = core
        .repo
        .list_audit(&filter, page.after.as_deref(), page.fetch_limit())
        .await?;
    let (rows, page) = page.finish(rows, |e| e.id.clone());
    Ok(pb::ListAuditEventsResponse {
        events: rows.iter().map(to_proto).collect(),
        page: Some(page),
    })
}
