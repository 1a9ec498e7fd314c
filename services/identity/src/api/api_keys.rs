//! API keys: a permission set, secret shown once and stored as a hash. A key has an owner (the
//! user who created it, or the owner of the key that did): it confers only what the creator
//! holds, acts with its permissions that the owner still holds, and stops working when the owner
//! is deleted, locked or disabled.

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{ApiKeyPrincipal, Principal, permissions};
use atrium_service_kit::paging::Page;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use serde_json::json;

use crate::convert::{self, api_key_to_proto, split_permissions};
use crate::core::{Core, event, is_locked, record};
use crate::crypto::{random_token, sha256_hex};
use crate::entity::api_key;

/// `last_used_at` and the `api_key.use` audit event are written at most this often per key.
const USE_RECORD_INTERVAL_SECS: i64 = 60;

pub async fn create(
    core: &Core,
    principal: &Principal,
    req: pb::CreateApiKeyRequest,
) -> ApiResult<pb::CreateApiKeyResponse> {
    core.require(principal, permissions::API_KEYS_MANAGE)
        .await?;
    let name = convert::text("name", &req.name, 128)?;
    if name.is_empty() {
        return Err(ApiError::invalid("name", "is required"));
    }
    let mut perms: Vec<String> = Vec::new();
    for (i, p) in req.permissions.iter().enumerate() {
        let p = p.trim();
        if !permissions::is_known(p) {
            return Err(ApiError::invalid(
                format!("permissions[{i}]"),
                format!(
                    "unknown permission {p:?}; known: {}",
                    permissions::all().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if req.read_only && !permissions::is_read_only(p) {
            return Err(ApiError::invalid(
                format!("permissions[{i}]"),
                format!("{p} is not allowed on a read-only key"),
            ));
        }
        if !perms.iter().any(|q| q == p) {
            perms.push(p.to_owned());
        }
    }
    // Delegation never escalates: a key carries only permissions its creator holds.
    core.caller_rights(principal)
        .await?
        .confer(perms.iter().map(String::as_str), false)?;
    let owner_user_id = match principal {
        Principal::User(u) => Some(u.user_id.clone()),
        Principal::ApiKey(k) => core
            .repo
            .api_key(&k.key_id)
            .await?
            .and_then(|row| row.owner_user_id),
        Principal::Service(_) => None,
    };
    let now = Utc::now();
    let expires_at = req
        .expires_at
        .as_ref()
        .map(|t| convert::from_timestamp("expires_at", t))
        .transpose()?;
    if expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    let secret = random_token::<32>();
    let row = api_key::Model {
        id: format!("ak_{}", &uuid::Uuid::new_v4().simple().to_string()[..20]),
        name,
        secret_hash: sha256_hex(&secret),
        read_only: req.read_only,
        permissions: perms.join(","),
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
        created_by: principal.actor(),
        owner_user_id,
    };
    let ev = event(
        "api_key.create",
        None,
        &principal.actor(),
        json!({ "api_key_id": row.id, "permissions": perms }),
    );
    core.repo.insert_api_key(row.clone(), ev).await?;
    Ok(pb::CreateApiKeyResponse {
        api_key: Some(api_key_to_proto(&row)),
        secret,
    })
}

pub async fn list(
    core: &Core,
    principal: &Principal,
    req: pb::ListApiKeysRequest,
) -> ApiResult<pb::ListApiKeysResponse> {
    core.require(principal, permissions::API_KEYS_MANAGE)
        .await?;
    let page = Page::from_request(req.page.as_ref())?;
    let rows = core
        .repo
        .list_api_keys(
            req.include_revoked,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
    let (rows, page) = page.finish(rows, |k| k.id.clone());
    Ok(pb::ListApiKeysResponse {
        api_keys: rows.iter().map(api_key_to_proto).collect(),
        page: Some(page),
    })
}

pub async fn revoke(
    core: &Core,
    principal: &Principal,
    req: pb::RevokeApiKeyRequest,
) -> ApiResult<pb::ApiKey> {
    core.require(principal, permissions::API_KEYS_MANAGE)
        .await?;
    if req.id.trim().is_empty() {
        return Err(ApiError::invalid("id", "is required"));
    }
    let row = core
        .repo
        .api_key(req.id.trim())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("API key {}", req.id.trim())))?;
    if row.revoked_at.is_some() {
        return Ok(api_key_to_proto(&row));
    }
    let mut active = row.clone().into_active_model();
    let now = Utc::now();
    active.revoked_at = Set(Some(now));
    core.repo
        .save_with_event(
            active,
            event(
                "api_key.revoke",
                None,
                &principal.actor(),
                json!({ "api_key_id": row.id }),
            ),
        )
        .await?;
    let mut revoked = row;
    revoked.revoked_at = Some(now);
    Ok(api_key_to_proto(&revoked))
}

/// Resolves key + secret into a principal (identity's auth layer and AuthenticateApiKey).
pub async fn authenticate(core: &Core, id: &str, secret: &str) -> ApiResult<ApiKeyPrincipal> {
    let refused = || ApiError::Unauthenticated("API key or secret is invalid".into());
    let row = core.repo.api_key(id).await?.ok_or_else(refused)?;
    if !atrium_service_kit::auth::secret_eq(&row.secret_hash, &sha256_hex(secret)) {
        return Err(refused());
    }
    let now = Utc::now();
    if row.revoked_at.is_some() {
        return Err(ApiError::Unauthenticated("API key has been revoked".into()));
    }
    if row.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::Unauthenticated("API key has expired".into()));
    }
    if row
        .last_used_at
        .is_none_or(|t| now - t >= Duration::seconds(USE_RECORD_INTERVAL_SECS))
    {
        let mut active = row.clone().into_active_model();
        active.last_used_at = Set(Some(now));
        if let Err(e) = core
            .repo
            .save_with_event(
                active,
                event("api_key.use", None, &format!("api_key:{id}"), json!({})),
            )
            .await
        {
            tracing::warn!(api_key_id = id, error = %e, "recording API key use failed");
        }
    }
    let permissions = effective_permissions(core, &row).await?;
    Ok(ApiKeyPrincipal {
        key_id: row.id,
        name: row.name,
        read_only: row.read_only,
        permissions,
    })
}

/// The key's permissions that its owner still holds; refused when the owner is gone, locked,
/// disabled, or holds none of them any more.
async fn effective_permissions(core: &Core, row: &api_key::Model) -> ApiResult<Vec<String>> {
    let stored = split_permissions(&row.permissions);
    let Some(owner) = &row.owner_user_id else {
        return Ok(stored);
    };
    let owner_row = match core.repo.user(owner).await {
        Ok(owner_row) => owner_row,
        Err(ApiError::NotFound(_)) => {
            return Err(ApiError::Unauthenticated(
                "API key's owner no longer exists".into(),
            ));
        }
        Err(e) => {
            tracing::warn!(api_key_id = %row.id, error = %e, "reading an API key's owner failed");
            return Err(ApiError::Unavailable(
                "API key cannot be checked right now; try again shortly".into(),
            ));
        }
    };
    if is_locked(&owner_row) || owner_row.disabled {
        return Err(ApiError::Unauthenticated(
            "API key's owner is locked or disabled".into(),
        ));
    }
    let rights = core.user_rights(owner, false).await?;
    let kept: Vec<String> = stored.iter().filter(|p| rights.holds(p)).cloned().collect();
    if kept.is_empty() && !stored.is_empty() {
        return Err(ApiError::Unauthenticated(
            "API key's owner no longer holds any of its permissions".into(),
        ));
    }
    Ok(kept)
}

pub async fn authenticate_rpc(
    core: &Core,
    principal: &Principal,
    req: pb::AuthenticateApiKeyRequest,
) -> ApiResult<pb::ApiKey> {
    if !principal.is_service() {
        return Err(ApiError::PermissionDenied(
            "AuthenticateApiKey is for Atrium's services".into(),
        ));
    }
    if req.id.is_empty() {
        return Err(ApiError::invalid("id", "is required"));
    }
    let resolved = authenticate(core, &req.id, &req.secret).await;
    if let Err(ApiError::Unauthenticated(reason)) = &resolved {
        record(
            core,
            event(
                "api_key.failure",
                None,
                &principal.actor(),
                json!({ "api_key_id": req.id, "reason": reason }),
            ),
        )
        .await;
    }
    let principal = resolved?;
    let row = core
        .repo
        .api_key(&principal.key_id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    // What the key may do now: its permissions that the owner still holds.
    let mut key = api_key_to_proto(&row);
    key.permissions = principal.permissions;
    Ok(key)
}
