//! Login, refresh, logout, password change: the life of a login session.
//!
//! A login passes, in order: password → TOTP (when enrolled) or enrolment (when 2FA is required
//! but not set up) → forced password change → a login session with full tokens. Each unfinished
//! step answers a restricted access token that only allows that step.

use std::net::IpAddr;

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{Principal, Scope};
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use serde_json::json;

use crate::convert::{self, Realm, timestamp, user_to_proto};
use crate::core::{Core, event, full_scope, is_locked, record};
use crate::crypto::{random_token, sha256_hex};
use crate::entity::{login_session, user};
use crate::policy_link::TwoFactorPolicy;
use crate::{password, totp};

const BAD_CREDENTIALS: &str = "invalid username or password";

/// The user's two-factor settings: from policy when configured; identity alone keeps the old
/// behaviour (enrolment voluntary, required only once enrolled or after an admin reset).
pub async fn two_factor_policy(core: &Core, user_id: &str) -> ApiResult<TwoFactorPolicy> {
    match &core.policy_link {
        Some(policy) => policy.two_factor(user_id).await,
        None => Ok(TwoFactorPolicy::STANDALONE),
    }
}

/// How many failures lock the account for this kind of attempt: wrong second factors after a
/// correct password are bounded by `totp_max_attempts` even when `lockout_threshold` is 0.
fn lock_at(core: &Core, second_factor: bool) -> u32 {
    let threshold = core.config.lockout_threshold;
    match (second_factor, threshold) {
        (false, t) => t,
        (true, 0) => core.config.totp_max_attempts,
        (true, t) => t.min(core.config.totp_max_attempts),
    }
}

pub async fn login(
    core: &Core,
    source: Option<IpAddr>,
    req: pb::LoginRequest,
) -> ApiResult<pb::LoginResponse> {
    let username = convert::username("username", &req.username)?;
    if req.password.is_empty() {
        return Err(ApiError::invalid("password", "is required"));
    }
    if req.password.len() > password::MAX_LENGTH {
        return Err(ApiError::Unauthenticated(BAD_CREDENTIALS.into()));
    }
    // Before any database or argon2 work: a flood is refused cheaply.
    core.guard.admit_login(&username, source)?;
    let Some(mut row) = core.repo.user_by_username(&username).await? else {
        // Same work as a wrong password, so timing does not reveal which usernames exist.
        let _ = core
            .guard
            .verify(req.password, core.dummy_hash.clone())
            .await?;
        record(
            core,
            event(
                "login.failure",
                None,
                "anonymous",
                json!({ "username": username, "reason": "unknown_user" }),
            ),
        )
        .await;
        return Err(ApiError::Unauthenticated(BAD_CREDENTIALS.into()));
    };
    let local = row.realm == Realm::Local.as_str();
    // Every account gets the same work and, unless it may sign in here, the same answer as an
    // unknown username whatever the password: neither whether it exists, nor its state, nor
    // whether a guess was right (which would let guessing go on against a locked account).
    // The audit trail keeps the reason for administrators.
    let verified = match (&row.password_hash, local) {
        (Some(hash), true) => core.guard.verify(req.password, hash.clone()).await?,
        _ => {
            let _ = core
                .guard
                .verify(req.password, core.dummy_hash.clone())
                .await?;
            false
        }
    };
    // An automatic lockout whose time is up ends here (an admin's lock has no end).
    if row.locked && !is_locked(&row) && core.repo.expire_lockout(&row.id, Utc::now()).await? {
        row.locked = false;
        row.locked_until = None;
        row.failed_login_count = 0;
    }
    let refused = if !local {
        Some("not_local")
    } else if row.locked {
        Some("locked")
    } else if row.disabled {
        Some("disabled")
    } else {
        None
    };
    if let Some(reason) = refused {
        // Not counted: the account cannot sign in here anyway.
        let detail = json!({ "reason": reason, "password_correct": verified });
        record(
            core,
            event("login.failure", Some(&row.id), "anonymous", detail),
        )
        .await;
        return Err(ApiError::Unauthenticated(BAD_CREDENTIALS.into()));
    }
    if !verified {
        let lock_at = lock_at(core, false);
        return Err(failed_attempt(core, &row, "bad_password", BAD_CREDENTIALS, lock_at).await);
    }
    if let Some(sealed) = &row.totp_secret {
        if req.totp_code.trim().is_empty() {
            return Ok(pb::LoginResponse {
                status: pb::LoginStatus::TotpRequired as i32,
                ..Default::default()
            });
        }
        let secret = core.secrets.open(sealed).map_err(ApiError::Internal)?;
        let Some(step) = totp::matching_step(&secret, &req.totp_code, Utc::now().timestamp())
        else {
            return Err(failed_attempt(
                core,
                &row,
                "bad_totp_code",
                "invalid two-factor code",
                lock_at(core, true),
            )
            .await);
        };
        if !core.repo.claim_totp_step(&row.id, step).await? {
            return Err(failed_attempt(
                core,
                &row,
                "reused_totp_code",
                "this two-factor code was already used; wait for the next one",
                lock_at(core, true),
            )
            .await);
        }
    }
    // Atomically: the account is still neither locked (by concurrent failures, say) nor
    // disabled; its failed count starts again.
    if !core.repo.claim_login(&row.id).await? {
        let detail = json!({ "reason": "locked_meanwhile", "password_correct": true });
        record(
            core,
            event("login.failure", Some(&row.id), "anonymous", detail),
        )
        .await;
        return Err(ApiError::Unauthenticated(BAD_CREDENTIALS.into()));
    }
    // The request's `require_two_factor` is ignored: the server decides.
    if let Some(response) = two_factor_step(core, &row).await? {
        return Ok(response);
    }
    continue_login(core, &row).await
}

/// When the user must use two-factor authentication but has not enrolled: the enrolment step
/// (or a refusal, when policy allows no method they could enrol).
async fn two_factor_step(core: &Core, row: &user::Model) -> ApiResult<Option<pb::LoginResponse>> {
    if row.totp_secret.is_some() {
        return Ok(None);
    }
    let policy = two_factor_policy(core, &row.id).await?;
    if !(row.totp_required || policy.required) {
        return Ok(None);
    }
    if !policy.totp_allowed {
        return Err(ApiError::FailedPrecondition(
            "two-factor authentication is required for this account, but no second factor it \
             could enrol is allowed (allow_totp_2fa is off); ask an administrator"
                .into(),
        ));
    }
    restricted(
        core,
        row,
        Scope::TotpEnrollment,
        pb::LoginStatus::TotpEnrollmentRequired,
    )
    .map(Some)
}

fn lockout_secs(core: &Core) -> i64 {
    i64::try_from(core.config.lockout_duration_secs).unwrap_or(i64::MAX / 2)
}

/// Counts a failed attempt (locking the account for `lockout_duration_secs` at `lock_at`
/// failures) and returns the error to send.
async fn failed_attempt(
    core: &Core,
    row: &user::Model,
    reason: &str,
    message: &str,
    lock_at: u32,
) -> ApiError {
    // The lock is announced only once the caller has proven the password (a wrong second
    // factor, a wrong old password), so a lock does not reveal that a username exists.
    let announce_lock = reason != "bad_password";
    let until = Utc::now() + Duration::seconds(lockout_secs(core));
    let (count, newly_locked) = match core.repo.record_failed_login(&row.id, lock_at, until).await {
        Ok(result) => result,
        Err(e) => return e,
    };
    record(
        core,
        event(
            "login.failure",
            Some(&row.id),
            "anonymous",
            json!({ "reason": reason, "failed_count": count }),
        ),
    )
    .await;
    if newly_locked {
        record(
            core,
            event(
                "user.locked",
                Some(&row.id),
                "service",
                json!({ "reason": "too_many_failed_logins", "until_secs": lockout_secs(core) }),
            ),
        )
        .await;
        if announce_lock {
            return ApiError::Unauthenticated(format!("{message}; the account is now locked"));
        }
    }
    ApiError::Unauthenticated(message.to_owned())
}

/// After password and 2FA: the forced password change, or a full login session.
pub async fn continue_login(core: &Core, row: &user::Model) -> ApiResult<pb::LoginResponse> {
    if row.force_password_reset && row.realm == Realm::Local.as_str() {
        return restricted(
            core,
            row,
            Scope::PasswordChange,
            pb::LoginStatus::PasswordChangeRequired,
        );
    }
    open_session(core, row).await
}

fn restricted(
    core: &Core,
    row: &user::Model,
    scope: Scope,
    status: pb::LoginStatus,
) -> ApiResult<pb::LoginResponse> {
    let issued = core.tokens.issue(row, "", scope)?;
    Ok(pb::LoginResponse {
        status: status as i32,
        access_token: issued.token,
        access_token_expires_at: Some(timestamp(issued.expires_at)),
        user: Some(user_to_proto(row)),
        ..Default::default()
    })
}

/// Creates a login session with full tokens and records the login.
async fn open_session(core: &Core, row: &user::Model) -> ApiResult<pb::LoginResponse> {
    let now = Utc::now();
    let refresh = random_token::<32>();
    let session = login_session::Model {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        user_id: row.id.clone(),
        refresh_hash: sha256_hex(&refresh),
        previous_refresh_hash: None,
        created_at: now,
        expires_at: now + Duration::seconds(i64::from(core.config.refresh_token_ttl_secs)),
        last_used_at: now,
        revoked_at: None,
    };
    let issued = core.tokens.issue(row, &session.id, Scope::Full)?;
    let expires_at = session.expires_at;
    let session_id = session.id.clone();
    core.repo.insert_login_session(session).await?;
    core.repo.touch_last_session(&row.id, now).await?;
    record(
        core,
        event(
            "login.success",
            Some(&row.id),
            &format!("user:{}", row.id),
            json!({ "login_session_id": session_id }),
        ),
    )
    .await;
    let mut user = row.clone();
    user.last_session_at = Some(now);
    user.failed_login_count = 0;
    Ok(pb::LoginResponse {
        status: pb::LoginStatus::Success as i32,
        access_token: issued.token,
        access_token_expires_at: Some(timestamp(issued.expires_at)),
        refresh_token: refresh,
        refresh_token_expires_at: Some(timestamp(expires_at)),
        login_session_id: session_id,
        user: Some(user_to_proto(&user)),
    })
}

pub async fn refresh(core: &Core, req: pb::RefreshRequest) -> ApiResult<pb::LoginResponse> {
    if req.refresh_token.trim().is_empty() {
        return Err(ApiError::invalid("refresh_token", "is required"));
    }
    let hash = sha256_hex(req.refresh_token.trim());
    let now = Utc::now();
    let Some(session) = core.repo.login_session_by_refresh(&hash).await? else {
        if let Some(stolen) = core.repo.login_session_by_previous_refresh(&hash).await? {
            // A replaced refresh token came back: someone kept a copy. End the session.
            core.repo.revoke_login_session(&stolen.id, now).await?;
            record(
                core,
                event(
                    "login_session.reuse_detected",
                    Some(&stolen.user_id),
                    "anonymous",
                    json!({ "login_session_id": stolen.id }),
                ),
            )
            .await;
        }
        return Err(ApiError::Unauthenticated("refresh token is invalid".into()));
    };
    if session.revoked_at.is_some() {
        return Err(ApiError::Unauthenticated("login session has ended".into()));
    }
    if session.expires_at <= now {
        return Err(ApiError::Unauthenticated(
            "refresh token has expired".into(),
        ));
    }
    let row = core.active_user(&session.user_id).await?;
    // A refresh is not a way around what a login would require now: a forced password change
    // or a two-factor enrolment ends this session and answers that step instead.
    let pending = if row.force_password_reset && row.realm == Realm::Local.as_str() {
        Some(restricted(
            core,
            &row,
            Scope::PasswordChange,
            pb::LoginStatus::PasswordChangeRequired,
        )?)
    } else {
        two_factor_step(core, &row).await?
    };
    if let Some(step) = pending {
        core.repo.revoke_login_session(&session.id, now).await?;
        return Ok(step);
    }
    let refresh = random_token::<32>();
    if !core
        .repo
        .rotate_refresh(&session.id, &hash, &sha256_hex(&refresh), now)
        .await?
    {
        return Err(ApiError::Unauthenticated(
            "refresh token was already used".into(),
        ));
    }
    let issued = core.tokens.issue(&row, &session.id, Scope::Full)?;
    Ok(pb::LoginResponse {
        status: pb::LoginStatus::Success as i32,
        access_token: issued.token,
        access_token_expires_at: Some(timestamp(issued.expires_at)),
        refresh_token: refresh,
        refresh_token_expires_at: Some(timestamp(session.expires_at)),
        login_session_id: session.id,
        user: Some(user_to_proto(&row)),
    })
}

pub async fn change_password(
    core: &Core,
    principal: &Principal,
    req: pb::ChangePasswordRequest,
) -> ApiResult<pb::LoginResponse> {
    let Principal::User(caller) = principal else {
        return Err(ApiError::PermissionDenied(
            "only a signed-in user changes their own password; use SetPassword".into(),
        ));
    };
    if caller.scope == Scope::TotpEnrollment {
        full_scope(caller)?;
    }
    if req.old_password.is_empty() {
        return Err(ApiError::invalid("old_password", "is required"));
    }
    let row = core.active_user(&caller.user_id).await?;
    if row.realm != Realm::Local.as_str() {
        return Err(ApiError::FailedPrecondition(format!(
            "this account's password is managed by {}",
            row.realm
        )));
    }
    core.policy
        .check("new_password", &req.new_password, &row.username)?;
    let stored = row.password_hash.clone().unwrap_or_default();
    if !core
        .guard
        .verify(req.old_password.clone(), stored.clone())
        .await?
    {
        return Err(failed_attempt(
            core,
            &row,
            "bad_old_password",
            "old_password: is not the current password",
            lock_at(core, false),
        )
        .await);
    }
    if core.guard.verify(req.new_password.clone(), stored).await? {
        return Err(ApiError::invalid(
            "new_password",
            "must differ from the current password",
        ));
    }
    let hash = core.guard.hash(req.new_password).await?;
    let now = Utc::now();
    let mut active = row.clone().into_active_model();
    active.password_hash = Set(Some(hash));
    active.password_set_at = Set(Some(now));
    active.force_password_reset = Set(false);
    active.failed_login_count = Set(0);
    active.updated_at = Set(now);
    let ev = event(
        "password.change",
        Some(&row.id),
        &principal.actor(),
        json!({}),
    );
    // Every other login session ends: whoever knew the old password is signed out.
    let keep = (!caller.login_session_id.is_empty()).then_some(caller.login_session_id.as_str());
    let saved = core.repo.save_user(active, Some(ev), true, keep).await?;
    if caller.scope == Scope::PasswordChange {
        return open_session(core, &saved).await;
    }
    Ok(pb::LoginResponse {
        status: pb::LoginStatus::Success as i32,
        user: Some(user_to_proto(&saved)),
        ..Default::default()
    })
}

pub async fn who_am_i(core: &Core, principal: &Principal) -> ApiResult<pb::WhoAmIResponse> {
    let is_admin = core.is_admin(principal).await;
    Ok(match principal {
        Principal::User(u) => pb::WhoAmIResponse {
            kind: "user".into(),
            user_id: u.user_id.clone(),
            username: u.username.clone(),
            scope: u.scope.as_str().into(),
            is_admin,
            ..Default::default()
        },
        Principal::ApiKey(k) => pb::WhoAmIResponse {
            kind: "api_key".into(),
            api_key_id: k.key_id.clone(),
            permissions: k.permissions.clone(),
            ..Default::default()
        },
        Principal::Service(service) => pb::WhoAmIResponse {
            kind: "service".into(),
            service: service.name().into(),
            ..Default::default()
        },
    })
}
