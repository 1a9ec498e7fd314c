//! Users: create, read, update, delete, list, reset 2FA, admin password set.

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::paging::Page;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use serde_json::json;

use crate::convert::{self, Realm, user_to_proto};
use crate::core::{Actor, Core, event, is_locked};
use crate::entity::user;
use crate::repo::UserFilter;

pub async fn create(
    core: &Core,
    principal: &Principal,
    req: pb::CreateUserRequest,
) -> ApiResult<pb::User> {
    core.require(principal, permissions::USERS_CREATE).await?;
    let row = new_user(core, req, false).await?;
    let ev = event(
        "user.create",
        Some(&row.id),
        &principal.actor(),
        json!({ "username": row.username }),
    );
    let settings = convert::default_settings(&row.id);
    let row = core.repo.create_user(row, settings, ev).await?;
    core.user_events_queued();
    Ok(user_to_proto(&row))
}

/// Validates a create request into a row (hashing the password). `is_admin` is for bootstrap.
pub async fn new_user(
    core: &Core,
    req: pb::CreateUserRequest,
    is_admin: bool,
) -> ApiResult<user::Model> {
    let username = convert::username("username", &req.username)?;
    let realm = Realm::from_proto("realm", req.realm, Some(Realm::Local))?.unwrap_or(Realm::Local);
    if req.force_password_reset && realm != Realm::Local {
        return Err(ApiError::invalid(
            "force_password_reset",
            "applies only to local accounts",
        ));
    }
    let password_hash = if req.password.is_empty() {
        if realm == Realm::Local {
            return Err(ApiError::invalid("password", "is required for local users"));
        }
        None
    } else {
        core.policy.check("password", &req.password, &username)?;
        Some(core.guard.hash(req.password).await?)
    };
    let now = Utc::now();
    Ok(user::Model {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        username_key: username.to_lowercase(),
        username,
        password_set_at: password_hash.as_ref().map(|_| now),
        password_hash,
        first_name: convert::text("first_name", &req.first_name, 255)?,
        last_name: convert::text("last_name", &req.last_name, 255)?,
        realm: realm.as_str().to_owned(),
        notes: convert::text("notes", &req.notes, 10_000)?,
        locked: req.locked,
        disabled: req.disabled,
        organization: convert::text("organization", &req.organization, 255)?,
        phone: convert::phone("phone", &req.phone)?,
        email: convert::email("email", &req.email)?,
        custom_attribute_1: convert::text("custom_attribute_1", &req.custom_attribute_1, 255)?,
        custom_attribute_2: convert::text("custom_attribute_2", &req.custom_attribute_2, 255)?,
        custom_attribute_3: convert::text("custom_attribute_3", &req.custom_attribute_3, 255)?,
        city: convert::text("city", &req.city, 255)?,
        state: convert::text("state", &req.state, 255)?,
        country: convert::text("country", &req.country, 255)?,
        created_at: now,
        updated_at: now,
        last_session_at: None,
        force_password_reset: req.force_password_reset,
        failed_login_count: 0,
        is_admin,
        totp_secret: None,
        totp_pending_secret: None,
        totp_required: false,
        totp_last_step: None,
        locked_until: None,
    })
}

/// Finds the target of a GetUser request.
async fn lookup(core: &Core, key: Option<pb::get_user_request::Key>) -> ApiResult<user::Model> {
    match key {
        Some(pb::get_user_request::Key::UserId(id)) => {
            core.repo.user(&convert::user_id("user_id", &id)?).await
        }
        Some(pb::get_user_request::Key::Username(name)) => {
            let name = convert::username("username", &name)?;
            core.repo
                .user_by_username(&name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("user {name}")))
        }
        None => Err(ApiError::invalid("key", "user_id or username is required")),
    }
}

pub async fn get(
    core: &Core,
    principal: &Principal,
    req: pb::GetUserRequest,
) -> ApiResult<pb::User> {
    let row = lookup(core, req.key).await;
    // Unknown users and other people's accounts look the same to a non-admin.
    match row {
        Ok(row) => {
            core.self_or(principal, &row.id, permissions::USERS_VIEW)
                .await?;
            Ok(user_to_proto(&row))
        }
        Err(ApiError::NotFound(what)) => {
            core.require(principal, permissions::USERS_VIEW).await?;
            Err(ApiError::NotFound(what))
        }
        Err(e) => Err(e),
    }
}

/// Fields a user may change on their own profile.
const SELF_EDITABLE: &[&str] = &[
    "first_name",
    "last_name",
    "organization",
    "phone",
    "email",
    "city",
    "state",
    "country",
];

pub async fn update(
    core: &Core,
    principal: &Principal,
    req: pb::UpdateUserRequest,
) -> ApiResult<pb::User> {
    let id = convert::user_id("user_id", &req.user_id)?;
    let actor = core
        .act_on(principal, &id, permissions::USERS_MODIFY)
        .await?;
    let current = core.repo.user(&id).await?;
    let mut changed: Vec<&'static str> = Vec::new();
    let mut row = current.clone().into_active_model();
    macro_rules! text_field {
        ($name:ident, $max:expr) => {
            if let Some(v) = &req.$name {
                row.$name = Set(convert::text(stringify!($name), v, $max)?);
                changed.push(stringify!($name));
            }
        };
    }
    text_field!(first_name, 255);
    text_field!(last_name, 255);
    text_field!(notes, 10_000);
    text_field!(organization, 255);
    text_field!(custom_attribute_1, 255);
    text_field!(custom_attribute_2, 255);
    text_field!(custom_attribute_3, 255);
    text_field!(city, 255);
    text_field!(state, 255);
    text_field!(country, 255);
    if let Some(v) = &req.email {
        row.email = Set(convert::email("email", v)?);
        changed.push("email");
    }
    if let Some(v) = &req.phone {
        row.phone = Set(convert::phone("phone", v)?);
        changed.push("phone");
    }
    if let Some(v) = &req.username {
        let name = convert::username("username", v)?;
        row.username_key = Set(name.to_lowercase());
        row.username = Set(name);
        changed.push("username");
    }
    let mut realm = Realm::parse_stored(&current.realm);
    if let Some(v) = req.realm {
        realm = Realm::from_proto("realm", v, None)?
            .ok_or_else(|| ApiError::invalid("realm", "must be local, ldap, saml or oidc"))?;
        row.realm = Set(realm.as_str().to_owned());
        changed.push("realm");
    }
    let mut revoke_sessions = false;
    // Held until the change is saved (see `guard_last_admin`).
    let mut _serial = None;
    if let Some(locked) = req.locked {
        if locked && !is_locked(&current) {
            _serial = core.guard_last_admin(&current, "lock").await?;
        }
        row.locked = Set(locked);
        // An administrator's lock is manual: it stays until unlocked (no expiry).
        row.locked_until = Set(None);
        if !locked {
            row.failed_login_count = Set(0);
        }
        revoke_sessions |= locked;
        changed.push("locked");
    }
    if let Some(disabled) = req.disabled {
        if disabled && !current.disabled && _serial.is_none() {
            _serial = core.guard_last_admin(&current, "disable").await?;
        }
        row.disabled = Set(disabled);
        revoke_sessions |= disabled;
        changed.push("disabled");
    }
    let force_reset = req
        .force_password_reset
        .unwrap_or(current.force_password_reset);
    if req.force_password_reset.is_some() {
        row.force_password_reset = Set(force_reset);
        // A forced reset takes effect now: the user's sessions end, and their next sign-in
        // goes through the password change.
        revoke_sessions |= force_reset && !current.force_password_reset;
        changed.push("force_password_reset");
    }
    if force_reset && realm != Realm::Local {
        return Err(ApiError::invalid(
            "force_password_reset",
            "applies only to local accounts",
        ));
    }
    if let Actor::SelfUser(_) = actor
        && let Some(field) = changed.iter().find(|f| !SELF_EDITABLE.contains(f))
    {
        return Err(ApiError::PermissionDenied(format!(
            "{field}: only an administrator may change it"
        )));
    }
    if changed.is_empty() {
        return Ok(user_to_proto(&current));
    }
    row.updated_at = Set(Utc::now());
    let ev = event(
        "user.update",
        Some(&id),
        &principal.actor(),
        json!({ "fields": changed }),
    );
    let saved = core
        .repo
        .save_user(row, Some(ev), revoke_sessions, None)
        .await?;
    Ok(user_to_proto(&saved))
}

pub async fn delete(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteUserRequest,
) -> ApiResult<pb::DeleteUserResponse> {
    let id = convert::user_id("user_id", &req.user_id)?;
    core.require(principal, permissions::USERS_DELETE).await?;
    if let Principal::User(u) = principal
        && u.user_id == id
    {
        return Err(ApiError::FailedPrecondition(
            "you cannot delete your own account".into(),
        ));
    }
    core.may_act_on(principal, &id).await?;
    let target = core.repo.user(&id).await?;
    let _serial = core.guard_last_admin(&target, "delete").await?;
    let ev = event("user.delete", Some(&id), &principal.actor(), json!({}));
    core.repo.delete_user(&id, ev).await?;
    core.user_events_queued();
    Ok(pb::DeleteUserResponse {})
}

pub async fn list(
    core: &Core,
    principal: &Principal,
    req: pb::ListUsersRequest,
) -> ApiResult<pb::ListUsersResponse> {
    core.require(principal, permissions::USERS_VIEW).await?;
    let page = Page::from_request(req.page.as_ref())?;
    let filter = UserFilter {
        username_contains: convert::text("username_contains", &req.username_contains, 255)?,
        email_contains: convert::text("email_contains", &req.email_contains, 255)?,
        realm: Realm::from_proto("realm", req.realm, None)?.map(|r| r.as_str().to_owned()),
        locked: req.locked,
        disabled: req.disabled,
    };
    let rows = core
        .repo
        .list_users(&filter, page.after.as_deref(), page.fetch_limit())
        .await?;
    let (rows, page) = page.finish(rows, |u| u.id.clone());
    Ok(pb::ListUsersResponse {
        users: rows.iter().map(user_to_proto).collect(),
        page: Some(page),
    })
}

pub async fn reset_two_factor(
    core: &Core,
    principal: &Principal,
    req: pb::ResetTwoFactorRequest,
) -> ApiResult<pb::User> {
    let id = convert::user_id("user_id", &req.user_id)?;
    core.require(principal, permissions::USERS_MODIFY).await?;
    core.may_act_on(principal, &id).await?;
    let current = core.repo.user(&id).await?;
    let required = current.totp_required || current.totp_secret.is_some();
    let mut row = current.into_active_model();
    row.totp_secret = Set(None);
    row.totp_pending_secret = Set(None);
    row.totp_required = Set(required);
    row.updated_at = Set(Utc::now());
    let ev = event("2fa.reset", Some(&id), &principal.actor(), json!({}));
    // Sessions opened with the old second factor end: the next sign-in enrols again.
    Ok(user_to_proto(
        &core.repo.save_user(row, Some(ev), true, None).await?,
    ))
}

pub async fn set_password(
    core: &Core,
    principal: &Principal,
    req: pb::SetPasswordRequest,
) -> ApiResult<pb::User> {
    let id = convert::user_id("user_id", &req.user_id)?;
    core.require(principal, permissions::USERS_MODIFY).await?;
    core.may_act_on(principal, &id).await?;
    let current = core.repo.user(&id).await?;
    if req.force_password_reset && current.realm != Realm::Local.as_str() {
        return Err(ApiError::invalid(
            "force_password_reset",
            "applies only to local accounts",
        ));
    }
    core.policy
        .check("new_password", &req.new_password, &current.username)?;
    let hash = core.guard.hash(req.new_password).await?;
    let now = Utc::now();
    let mut row = current.into_active_model();
    row.password_hash = Set(Some(hash));
    row.password_set_at = Set(Some(now));
    row.force_password_reset = Set(req.force_password_reset);
    row.failed_login_count = Set(0);
    row.updated_at = Set(now);
    let ev = event(
        "password.set",
        Some(&id),
        &principal.actor(),
        json!({ "force_password_reset": req.force_password_reset }),
    );
    let saved = core.repo.save_user(row, Some(ev), true, None).await?;
    Ok(user_to_proto(&saved))
}
