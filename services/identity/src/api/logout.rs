//! Ending login sessions: Logout (one session) and LogoutEverywhere (all of a user's). Both
//! write revocations, so the sessions' access tokens are refused too, not only their refresh
//! tokens.

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;
use serde_json::json;

use crate::convert;
use crate::core::{Core, event, record};
use crate::crypto::sha256_hex;

pub async fn logout(
    core: &Core,
    principal: &Principal,
    req: pb::LogoutRequest,
) -> ApiResult<pb::LogoutResponse> {
    let now = Utc::now();
    let session_id = if !req.refresh_token.trim().is_empty() {
        let hash = sha256_hex(req.refresh_token.trim());
        core.repo
            .login_session_by_refresh(&hash)
            .await?
            .map(|s| s.id)
    } else {
        match principal {
            Principal::User(u) if !u.login_session_id.is_empty() => {
                Some(u.login_session_id.clone())
            }
            Principal::User(_) => None,
            _ => {
                return Err(ApiError::invalid(
                    "refresh_token",
                    "is required when the caller is not a user",
                ));
            }
        }
    };
    let Some(session_id) = session_id else {
        return Ok(pb::LogoutResponse { ended: 0 });
    };
    let session = core.repo.login_session(&session_id).await?;
    if let (Some(session), Principal::User(u)) = (&session, principal)
        && session.user_id != u.user_id
    {
        core.require(principal, permissions::USERS_AUTH_SESSION)
            .await?;
        core.may_act_on(principal, &session.user_id).await?;
    }
    let ended = core.repo.revoke_login_session(&session_id, now).await?;
    // This process refuses the session's tokens at once; the feed tells the other services
    // (and would tell this one a moment later).
    if ended > 0 {
        core.revocations.set().revoke(
            &session_id,
            (now + crate::repo::REVOCATION_RELEVANCE).timestamp(),
        );
    }
    // A session that had already ended is not logged out again.
    if let Some(session) = session
        && ended > 0
    {
        record(
            core,
            event(
                "logout",
                Some(&session.user_id),
                &principal.actor(),
                json!({ "login_session_id": session_id }),
            ),
        )
        .await;
    }
    Ok(pb::LogoutResponse {
        ended: u32::try_from(ended).unwrap_or(u32::MAX),
    })
}

pub async fn logout_everywhere(
    core: &Core,
    principal: &Principal,
    req: pb::LogoutEverywhereRequest,
) -> ApiResult<pb::LogoutResponse> {
    let target = if req.user_id.trim().is_empty() {
        core.caller_user(principal)?.user_id.clone()
    } else {
        convert::user_id("user_id", &req.user_id)?
    };
    core.act_on(principal, &target, permissions::USERS_AUTH_SESSION)
        .await?;
    core.repo.user(&target).await?;
    let ended = core.repo.end_user_sessions(&target, Utc::now()).await?;
    record(
        core,
        event(
            "logout.everywhere",
            Some(&target),
            &principal.actor(),
            json!({ "ended": ended }),
        ),
    )
    .await;
    Ok(pb::LogoutResponse {
        ended: u32::try_from(ended).unwrap_or(u32::MAX),
    })
}
