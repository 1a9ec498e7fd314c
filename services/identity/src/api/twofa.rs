//! Two-factor enrolment: EnrollTotp stores a pending secret, ConfirmTotp makes it active once the
//! user proves their authenticator produces codes for it.

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{Principal, Scope};
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use serde_json::json;

use crate::convert::{self, user_to_proto};
use crate::core::{Core, event};
use crate::totp;

const ISSUER: &str = "Atrium";

/// The caller, who must be a user with a full or enrolment-restricted token.
fn enrolling_user<'a>(
    principal: &'a Principal,
    user_id: &str,
) -> ApiResult<&'a atrium_service_kit::auth::UserPrincipal> {
    let Principal::User(caller) = principal else {
        return Err(ApiError::PermissionDenied(
            "only a signed-in user enrols their own authenticator".into(),
        ));
    };
    if caller.scope == Scope::PasswordChange {
        return Err(ApiError::PermissionDenied(
            "a password change is required first".into(),
        ));
    }
    if !user_id.trim().is_empty() && convert::user_id("user_id", user_id)? != caller.user_id {
        return Err(ApiError::PermissionDenied(
            "users enrol only their own authenticator; admins reset it with ResetTwoFactor".into(),
        ));
    }
    Ok(caller)
}

pub async fn enroll(
    core: &Core,
    principal: &Principal,
    req: pb::EnrollTotpRequest,
) -> ApiResult<pb::EnrollTotpResponse> {
    let caller = enrolling_user(principal, &req.user_id)?;
    let row = core.active_user(&caller.user_id).await?;
    if row.totp_secret.is_some() {
        return Err(ApiError::FailedPrecondition(
            "two-factor authentication is already set up; an administrator can reset it".into(),
        ));
    }
    // Policy decides (identity alone: enrolment is voluntary).
    let policy = crate::api::login::two_factor_policy(core, &row.id).await?;
    if !policy.totp_allowed {
        return Err(ApiError::FailedPrecondition(
            "TOTP is not an allowed second factor for this account (allow_totp_2fa is off)".into(),
        ));
    }
    let must_enrol = policy.required || row.totp_required;
    if caller.scope == Scope::Full && !must_enrol && !policy.self_enrollment {
        return Err(ApiError::PermissionDenied(
            "enrolling a second factor yourself is not allowed for this account \
             (allow_2fa_self_enrollment is off); an administrator can require it"
                .into(),
        ));
    }
    let secret = totp::generate_secret();
    let mut active = row.clone().into_active_model();
    active.totp_pending_secret = Set(Some(
        core.secrets.seal(&secret).map_err(ApiError::Internal)?,
    ));
    active.updated_at = Set(Utc::now());
    core.repo.save_user(active, None, false, None).await?;
    Ok(pb::EnrollTotpResponse {
        secret: totp::encode_secret(&secret),
        otpauth_uri: totp::otpauth_uri(ISSUER, &row.username, &secret),
    })
}

pub async fn confirm(
    core: &Core,
    principal: &Principal,
    req: pb::ConfirmTotpRequest,
) -> ApiResult<pb::LoginResponse> {
    let caller = enrolling_user(principal, "")?;
    if req.code.trim().is_empty() {
        return Err(ApiError::invalid("code", "is required"));
    }
    let row = core.active_user(&caller.user_id).await?;
    let Some(pending) = &row.totp_pending_secret else {
        return Err(ApiError::FailedPrecondition(
            "no enrolment in progress: call EnrollTotp first".into(),
        ));
    };
    let secret = core.secrets.open(pending).map_err(ApiError::Internal)?;
    let Some(step) = totp::matching_step(&secret, &req.code, Utc::now().timestamp()) else {
        return Err(ApiError::invalid(
            "code",
            "does not match the authenticator; check the device clock",
        ));
    };
    let mut active = row.clone().into_active_model();
    // The confirming code is spent: it cannot also complete a login.
    active.totp_last_step = Set(Some(step));
    active.totp_secret = Set(Some(pending.clone()));
    active.totp_pending_secret = Set(None);
    active.totp_required = Set(true);
    active.updated_at = Set(Utc::now());
    let ev = event("2fa.enroll", Some(&row.id), &principal.actor(), json!({}));
    let saved = core.repo.save_user(active, Some(ev), false, None).await?;
    if caller.scope == Scope::TotpEnrollment {
        return crate::api::login::continue_login(core, &saved).await;
    }
    Ok(pb::LoginResponse {
        status: pb::LoginStatus::Success as i32,
        user: Some(user_to_proto(&saved)),
        ..Default::default()
    })
}
