//! The audit trail, newest first.

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::paging::Page;
use atrium_service_kit::{ApiError, ApiResult};

use crate::convert::{self, audit_to_proto};
use crate::core::Core;
use crate::repo::AuditFilter;

pub async fn list(
    core: &Core,
    principal: &Principal,
    req: pb::ListAuditEventsRequest,
) -> ApiResult<pb::ListAuditEventsResponse> {
    core.require(principal, permissions::AUDIT_VIEW).await?;
    let page = Page::from_request(req.page.as_ref())?;
    let filter = AuditFilter {
        user_id: (!req.user_id.trim().is_empty())
            .then(|| convert::user_id("user_id", &req.user_id))
            .transpose()?,
        kind: (!req.kind.trim().is_empty()).then(|| req.kind.trim().to_owned()),
        since: req
            .since
            .as_ref()
            .map(|t| convert::from_timestamp("since", t))
            .transpose()?,
        until: req
            .until
            .as_ref()
            .map(|t| convert::from_timestamp("until", t))
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
        events: rows.iter().map(audit_to_proto).collect(),
        page: Some(page),
    })
}
