//! File mappings (user, group and workspace scopes, and their resolution for a session) and SSO
//! group mappings (and their evaluation at login).
//!
//! Resolution of file mappings, one per destination path, most specific first: the user's own
//! mapping wins; then the group mappings, the group with the lowest priority number winning (ties
//! by group id, as for settings); then the workspace's mappings. Disabled mappings take no part.

use std::collections::BTreeMap;

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::{ApiError, ApiResult};
use base64::Engine;
use chrono::Utc;
use serde_json::json;

use crate::api::groups::existing;
use crate::convert;
use crate::core::{ALL_USERS_ID, Core};
use crate::entity::{file_mapping, sso_mapping};
use crate::repo::Change;

/// File content limit (decoded).
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;

type Scope = pb::file_mapping::Scope;

async fn scope_of(core: &Core, scope: &Option<Scope>) -> ApiResult<(&'static str, String)> {
    match scope {
        Some(Scope::UserId(id)) => Ok(("user", convert::uuid("user_id", id)?)),
        Some(Scope::GroupId(id)) => Ok(("group", existing(core, "group_id", id).await?.id)),
        Some(Scope::WorkspaceId(id)) => Ok((
            "workspace",
            core.repo
                .workspace(&convert::uuid("workspace_id", id)?)
                .await?
                .id,
        )),
        None => Err(ApiError::invalid(
            "scope",
            "one of user_id, group_id or workspace_id is required",
        )),
    }
}

fn mapping_row(
    m: &pb::FileMapping,
    id: String,
    scope: (&str, String),
) -> ApiResult<file_mapping::Model> {
    let size = if m.content_is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(m.content.trim())
            .map_err(|_| {
                ApiError::invalid("content", "is not valid base64 (content_is_base64 is set)")
            })?
            .len()
    } else {
        m.content.len()
    };
    if size > MAX_CONTENT_BYTES {
        return Err(ApiError::invalid(
            "content",
            format!("must be at most {MAX_CONTENT_BYTES} bytes"),
        ));
    }
    // The kit's path rule, which the agent applies to file destinations at launch.
    let destination = m.destination.trim().to_owned();
    if destination.ends_with('/') {
        return Err(ApiError::invalid(
            "destination",
            "must name a file, not a directory",
        ));
    }
    atrium_service_kit::host_path::host("destination", &destination)?;
    Ok(file_mapping::Model {
        id,
        scope_kind: scope.0.to_owned(),
        scope_id: scope.1,
        name: convert::required_text("name", &m.name, 255)?,
        description: convert::text("description", &m.description, 4096)?,
        destination,
        content: m.content.clone(),
        content_is_base64: m.content_is_base64,
        executable: m.executable,
        readable: m.readable,
        writable: m.writable,
        enabled: m.enabled,
        created_at: Utc::now(),
    })
}

/// Writing files into a user's sessions is acting on that user: the caller's rights must cover
/// the user's (the kit's delegation rule).
async fn may_write_for(
    core: &Core,
    principal: &Principal,
    scope: &(&str, String),
) -> ApiResult<()> {
    if scope.0 == "user" {
        core.may_act_on(principal, &scope.1).await?;
    }
    Ok(())
}

fn mapping_change(principal: &Principal, kind: &'static str, m: &file_mapping::Model) -> Change {
    let change = Change::new(principal, kind, format!("file_mapping:{}", m.id)).detail(json!({
        "scope": format!("{}:{}", m.scope_kind, m.scope_id),
        "name": m.name,
        "destination": m.destination,
        "enabled": m.enabled,
    }));
    if m.scope_kind == "user" {
        change.about(&m.scope_id)
    } else {
        change
    }
}

fn mapping_to_proto(m: &file_mapping::Model) -> pb::FileMapping {
    let scope = match m.scope_kind.as_str() {
        "user" => Scope::UserId(m.scope_id.clone()),
        "group" => Scope::GroupId(m.scope_id.clone()),
        _ => Scope::WorkspaceId(m.scope_id.clone()),
    };
    pb::FileMapping {
        id: m.id.clone(),
        scope: Some(scope),
        name: m.name.clone(),
        description: m.description.clone(),
        destination: m.destination.clone(),
        content: m.content.clone(),
        content_is_base64: m.content_is_base64,
        executable: m.executable,
        readable: m.readable,
        writable: m.writable,
        enabled: m.enabled,
    }
}

pub async fn create_file_mapping(
    core: &Core,
    principal: &Principal,
    req: pb::FileMapping,
) -> ApiResult<pb::FileMapping> {
    core.require(principal, permissions::FILE_MAPPINGS_MODIFY)
        .await?;
    let scope = scope_of(core, &req.scope).await?;
    may_write_for(core, principal, &scope).await?;
    let row = mapping_row(&req, uuid::Uuid::now_v7().hyphenated().to_string(), scope)?;
    let change = mapping_change(principal, "file_mapping.create", &row);
    core.repo.insert_file_mapping(row.clone(), change).await?;
    Ok(mapping_to_proto(&row))
}

pub async fn update_file_mapping(
    core: &Core,
    principal: &Principal,
    req: pb::FileMapping,
) -> ApiResult<pb::FileMapping> {
    core.require(principal, permissions::FILE_MAPPINGS_MODIFY)
        .await?;
    let current = core
        .repo
        .file_mapping(&convert::uuid("id", &req.id)?)
        .await?;
    may_write_for(
        core,
        principal,
        &(current.scope_kind.as_str(), current.scope_id.clone()),
    )
    .await?;
    let scope = scope_of(core, &req.scope).await?;
    may_write_for(core, principal, &scope).await?;
    let mut row = mapping_row(&req, current.id.clone(), scope)?;
    row.created_at = current.created_at;
    let change = mapping_change(principal, "file_mapping.update", &row);
    Ok(mapping_to_proto(
        &core.repo.replace_file_mapping(row, change).await?,
    ))
}

pub async fn delete_file_mapping(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteFileMappingRequest,
) -> ApiResult<pb::DeleteFileMappingResponse> {
    core.require(principal, permissions::FILE_MAPPINGS_MODIFY)
        .await?;
    let current = core
        .repo
        .file_mapping(&convert::uuid("id", &req.id)?)
        .await?;
    may_write_for(
        core,
        principal,
        &(current.scope_kind.as_str(), current.scope_id.clone()),
    )
    .await?;
    let change = mapping_change(principal, "file_mapping.delete", &current);
    core.repo.delete_file_mapping(&current.id, change).await?;
    Ok(pb::DeleteFileMappingResponse {})
}

pub async fn list_file_mappings(
    core: &Core,
    principal: &Principal,
    req: pb::ListFileMappingsRequest,
) -> ApiResult<pb::ListFileMappingsResponse> {
    core.require(principal, permissions::FILE_MAPPINGS_VIEW)
        .await?;
    let scope = req.scope.map(|s| match s {
        pb::list_file_mappings_request::Scope::UserId(id) => Scope::UserId(id),
        pb::list_file_mappings_request::Scope::GroupId(id) => Scope::GroupId(id),
        pb::list_file_mappings_request::Scope::WorkspaceId(id) => Scope::WorkspaceId(id),
    });
    let (kind, id) = scope_of(core, &scope).await?;
    let rows = core.repo.file_mappings(kind, &[id]).await?;
    Ok(pb::ListFileMappingsResponse {
        file_mappings: rows.iter().map(mapping_to_proto).collect(),
    })
}

pub async fn resolve_file_mappings(
    core: &Core,
    principal: &Principal,
    req: pb::ResolveFileMappingsRequest,
) -> ApiResult<pb::ResolveFileMappingsResponse> {
    let user_id = core
        .self_or(principal, &req.user_id, permissions::FILE_MAPPINGS_VIEW)
        .await?;
    let workspace = core
        .repo
        .workspace(&convert::uuid("workspace_id", &req.workspace_id)?)
        .await?;
    let policy = core.user_policy(&user_id).await?;
    if core
        .require(principal, permissions::FILE_MAPPINGS_VIEW)
        .await
        .is_err()
    {
        // Users resolving their own mappings see those of workspaces they may launch, as
        // GetWorkspace shows them only those: the content of others' is not theirs to read.
        let launchable = core.repo.workspaces_of(&policy.group_ids()).await?;
        if !launchable.iter().any(|w| w.id == workspace.id) {
            return Err(ApiError::not_found(format!("workspace {}", workspace.id)));
        }
    }
    let mut chosen: BTreeMap<String, pb::ResolvedFileMapping> = BTreeMap::new();
    let mut offer = |rows: Vec<file_mapping::Model>,
                     source: &dyn Fn(&file_mapping::Model) -> String| {
        for row in rows.into_iter().filter(|m| m.enabled) {
            chosen
                .entry(row.destination.clone())
                .or_insert_with(|| pb::ResolvedFileMapping {
                    source: source(&row),
                    mapping: Some(mapping_to_proto(&row)),
                });
        }
    };
    offer(
        core.repo
            .file_mappings("user", std::slice::from_ref(&user_id))
            .await?,
        &|_| "user".to_owned(),
    );
    let group_rows = core
        .repo
        .file_mappings("group", &policy.group_ids())
        .await?;
    for group in &policy.groups {
        let rows: Vec<_> = group_rows
            .iter()
            .filter(|m| m.scope_id == group.id)
            .cloned()
            .collect();
        offer(rows, &|_| format!("group:{}", group.name));
    }
    offer(
        core.repo
            .file_mappings("workspace", std::slice::from_ref(&workspace.id))
            .await?,
        &|_| "workspace".to_owned(),
    );
    Ok(pb::ResolveFileMappingsResponse {
        file_mappings: chosen.into_values().collect(),
    })
}

// ---- SSO group mappings --------------------------------------------------------------------

fn sso_to_proto(m: &sso_mapping::Model) -> pb::SsoGroupMapping {
    pb::SsoGroupMapping {
        id: m.id.clone(),
        group_id: m.group_id.clone(),
        provider_id: m.provider_id.clone(),
        provider_type: m.provider_type.clone(),
        assign_all_users: m.assign_all_users,
        group_attributes: serde_json::from_str(&m.group_attributes).unwrap_or_default(),
    }
}

pub async fn create_sso(
    core: &Core,
    principal: &Principal,
    req: pb::SsoGroupMapping,
) -> ApiResult<pb::SsoGroupMapping> {
    core.require(principal, permissions::SSO_MODIFY).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    // A mapping puts users into the group at every login (and takes them out when they no
    // longer match): the caller must be able to confer what the group confers.
    core.may_change_membership(principal, &group.id, "mapping SSO users into")
        .await?;
    let provider_id = convert::required_text("provider_id", &req.provider_id, 255)?;
    let provider_type = match req.provider_type.to_lowercase().as_str() {
        t @ ("ldap" | "saml" | "oidc") => t.to_owned(),
        _ => {
            return Err(ApiError::invalid(
                "provider_type",
                "must be ldap, saml or oidc",
            ));
        }
    };
    let mut attributes = Vec::with_capacity(req.group_attributes.len());
    for (i, a) in req.group_attributes.iter().enumerate() {
        attributes.push(
            convert::required_text(&format!("group_attributes[{i}]"), a, 1024)?.to_lowercase(),
        );
    }
    if !req.assign_all_users && attributes.is_empty() {
        return Err(ApiError::invalid(
            "group_attributes",
            "give at least one attribute, or set assign_all_users",
        ));
    }
    let row = sso_mapping::Model {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        group_id: group.id,
        provider_id,
        provider_type,
        assign_all_users: req.assign_all_users,
        group_attributes: serde_json::to_string(&attributes).unwrap_or_else(|_| "[]".into()),
    };
    let change = Change::new(
        principal,
        "sso_mapping.create",
        format!("sso_mapping:{}", row.id),
    )
    .detail(json!({
        "group_id": row.group_id, "provider_id": row.provider_id,
        "provider_type": row.provider_type, "assign_all_users": row.assign_all_users,
        "group_attributes": attributes,
    }));
    core.repo.insert_sso_mapping(row.clone(), change).await?;
    Ok(sso_to_proto(&row))
}

pub async fn delete_sso(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteSsoGroupMappingRequest,
) -> ApiResult<pb::DeleteSsoGroupMappingResponse> {
    core.require(principal, permissions::SSO_MODIFY).await?;
    let current = core
        .repo
        .sso_mapping(&convert::uuid("id", &req.id)?)
        .await?;
    let change = Change::new(
        principal,
        "sso_mapping.delete",
        format!("sso_mapping:{}", current.id),
    )
    .detail(json!({"group_id": current.group_id, "provider_id": current.provider_id}));
    core.repo.delete_sso_mapping(&current.id, change).await?;
    Ok(pb::DeleteSsoGroupMappingResponse {})
}

pub async fn list_sso(
    core: &Core,
    principal: &Principal,
    req: pb::ListSsoGroupMappingsRequest,
) -> ApiResult<pb::ListSsoGroupMappingsResponse> {
    core.require(principal, permissions::SSO_VIEW).await?;
    let group_id = (!req.group_id.is_empty())
        .then(|| convert::uuid("group_id", &req.group_id))
        .transpose()?;
    let provider = (!req.provider_id.is_empty()).then_some(req.provider_id.as_str());
    let rows = core
        .repo
        .sso_mappings(group_id.as_deref(), provider)
        .await?;
    Ok(pb::ListSsoGroupMappingsResponse {
        mappings: rows.iter().map(sso_to_proto).collect(),
    })
}

/// Which mapped groups a login matches: for each group mapped for the provider, whether any of
/// its mappings assigns all users or shares an attribute with the login.
pub fn evaluate(mappings: &[sso_mapping::Model], attributes: &[String]) -> BTreeMap<String, bool> {
    let attributes: Vec<String> = attributes.iter().map(|a| a.trim().to_lowercase()).collect();
    let mut result: BTreeMap<String, bool> = BTreeMap::new();
    for m in mappings {
        let wanted: Vec<String> = serde_json::from_str(&m.group_attributes).unwrap_or_default();
        let matched = m.assign_all_users || wanted.iter().any(|w| attributes.contains(w));
        *result.entry(m.group_id.clone()).or_insert(false) |= matched;
    }
    result
}

pub async fn apply_sso_login(
    core: &Core,
    principal: &Principal,
    req: pb::ApplySsoLoginRequest,
) -> ApiResult<pb::ApplySsoLoginResponse> {
    // Logins report through the service credential; anyone else could use it to join groups.
    core.require_administrator(principal, "applying an SSO login by hand")
        .await?;
    let user_id = convert::uuid("user_id", &req.user_id)?;
    let provider_id = convert::required_text("provider_id", &req.provider_id, 255)?;
    let mappings = core.repo.sso_mappings(None, Some(&provider_id)).await?;
    let verdicts = evaluate(&mappings, &req.attributes);
    let current: Vec<String> = core
        .repo
        .user_memberships(&user_id)
        .await?
        .into_iter()
        .map(|m| m.group_id)
        .collect();
    let add: Vec<String> = verdicts
        .iter()
        .filter(|(g, m)| **m && !current.contains(g))
        .map(|(g, _)| g.clone())
        .collect();
    let mut remove: Vec<String> = verdicts
        .iter()
        .filter(|(g, m)| !**m && current.contains(g) && g.as_str() != ALL_USERS_ID)
        .map(|(g, _)| g.clone())
        .collect();
    // Leaving a group that sets administrator may take it away: guarded, and if it would leave
    // no administrator, the login still applies, keeping those memberships.
    let mut sets_administrator = Vec::new();
    for g in add.iter().chain(&remove) {
        if core.group_grant(g).await?.sets_administrator.is_some() {
            sets_administrator.push(g.clone());
        }
    }
    let source = format!("sso:{provider_id}");
    let change = |remove: &[String]| {
        Change::new(principal, "sso.apply", format!("user:{user_id}"))
            .about(&user_id)
            .detail(json!({"provider_id": provider_id, "added": add, "removed": remove}))
    };
    let guard = !sets_administrator.is_empty();
    match core
        .repo
        .apply_sso(&user_id, &source, &add, &remove, guard, change(&remove))
        .await
    {
        Err(ApiError::FailedPrecondition(reason)) if guard => {
            tracing::warn!(%user_id, %provider_id, %reason, "SSO login kept administrator memberships");
            remove.retain(|g| !sets_administrator.contains(g));
            core.repo
                .apply_sso(&user_id, &source, &add, &remove, true, change(&remove))
                .await?;
        }
        other => other?,
    }
    core.invalidate();
    Ok(pb::ApplySsoLoginResponse {
        added_group_ids: add,
        removed_group_ids: remove,
    })
}
