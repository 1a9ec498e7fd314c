//! Groups and their permission grants.

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::paging::Page;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use serde_json::json;

use crate::convert::{self, group_to_proto};
use crate::core::Core;
use crate::entity::group;
use crate::repo::Change;

pub const MIN_PRIORITY: i32 = 1;
pub const MAX_PRIORITY: i32 = 1_000_000;

fn priority(field: &str, p: i32) -> ApiResult<i32> {
    if (MIN_PRIORITY..=MAX_PRIORITY).contains(&p) {
        Ok(p)
    } else {
        Err(ApiError::invalid(
            field,
            format!("must be between {MIN_PRIORITY} and {MAX_PRIORITY} (lower is stronger)"),
        ))
    }
}

fn name(field: &str, raw: &str) -> ApiResult<String> {
    convert::required_text(field, raw, 128)
}

pub async fn create(
    core: &Core,
    principal: &Principal,
    req: pb::CreateGroupRequest,
) -> ApiResult<pb::Group> {
    core.require(principal, permissions::GROUPS_CREATE).await?;
    let now = Utc::now();
    let name = name("name", &req.name)?;
    let row = group::Model {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        name_key: name.to_lowercase(),
        name,
        description: convert::text("description", &req.description, 4096)?,
        priority: priority("priority", req.priority)?,
        is_system: false,
        created_at: now,
        updated_at: now,
    };
    let change =
        Change::new(principal, "group.create", format!("group:{}", row.id)).detail(json!({
            "name": row.name, "description": row.description, "priority": row.priority,
        }));
    let row = core.repo.insert_group(row, change).await?;
    Ok(group_to_proto(&row, 0))
}

/// Finds a group by id or name.
pub async fn lookup(
    core: &Core,
    key: Option<pb::get_group_request::Key>,
) -> ApiResult<group::Model> {
    match key {
        Some(pb::get_group_request::Key::GroupId(id)) => {
            core.repo.group(&convert::uuid("group_id", &id)?).await
        }
        Some(pb::get_group_request::Key::Name(n)) => {
            let n = name("name", &n)?;
            core.repo
                .group_by_name(&n)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("group {n}")))
        }
        None => Err(ApiError::invalid("key", "group_id or name is required")),
    }
}

/// An existing group by id, for calls that take `group_id`.
pub async fn existing(core: &Core, field: &str, id: &str) -> ApiResult<group::Model> {
    core.repo.group(&convert::uuid(field, id)?).await
}

pub async fn get(
    core: &Core,
    principal: &Principal,
    req: pb::GetGroupRequest,
) -> ApiResult<pb::Group> {
    core.require(principal, permissions::GROUPS_VIEW).await?;
    let row = lookup(core, req.key).await?;
    let count = core.repo.member_count(&row.id).await?;
    Ok(group_to_proto(&row, count))
}

pub async fn update(
    core: &Core,
    principal: &Principal,
    req: pb::UpdateGroupRequest,
) -> ApiResult<pb::Group> {
    core.require(principal, permissions::GROUPS_MODIFY).await?;
    let current = existing(core, "group_id", &req.group_id).await?;
    let sets_administrator = core.group_grant(&current.id).await?.sets_administrator;
    if sets_administrator.is_some() {
        // Its priority decides whose `administrator` wins; its name is how admins find it.
        core.require_administrator(principal, "changing a group that sets administrator")
            .await?;
    }
    let mut detail = serde_json::Map::new();
    let mut row = current.clone().into_active_model();
    if let Some(n) = &req.name {
        let n = name("name", n)?;
        if current.is_system && n != current.name {
            return Err(ApiError::FailedPrecondition(format!(
                "{} is a system group and cannot be renamed",
                current.name
            )));
        }
        row.name_key = Set(n.to_lowercase());
        detail.insert("name".into(), json!(n));
        row.name = Set(n);
    }
    if let Some(d) = &req.description {
        let d = convert::text("description", d, 4096)?;
        detail.insert("description".into(), json!(d));
        row.description = Set(d);
    }
    let mut guard = false;
    if let Some(p) = req.priority {
        let p = priority("priority", p)?;
        guard = sets_administrator.is_some() && p != current.priority;
        detail.insert("priority".into(), json!(p));
        row.priority = Set(p);
    }
    row.updated_at = Set(Utc::now());
    let change = Change::new(principal, "group.update", format!("group:{}", current.id))
        .detail(detail.into());
    let saved = core.repo.update_group(row, guard, change).await?;
    core.invalidate();
    let count = core.repo.member_count(&saved.id).await?;
    Ok(group_to_proto(&saved, count))
}

pub async fn delete(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteGroupRequest,
) -> ApiResult<pb::DeleteGroupResponse> {
    core.require(principal, permissions::GROUPS_DELETE).await?;
    let current = existing(core, "group_id", &req.group_id).await?;
    if current.is_system {
        return Err(ApiError::FailedPrecondition(format!(
            "{} is a system group and cannot be deleted",
            current.name
        )));
    }
    let sets_administrator = core.group_grant(&current.id).await?.sets_administrator;
    if sets_administrator.is_some() {
        core.require_administrator(principal, "deleting a group that sets administrator")
            .await?;
    }
    let change = Change::new(principal, "group.delete", format!("group:{}", current.id))
        .detail(json!({"name": current.name}));
    core.repo
        .delete_group(&current.id, sets_administrator.is_some(), change)
        .await?;
    core.invalidate();
    Ok(pb::DeleteGroupResponse {})
}

pub async fn list(
    core: &Core,
    principal: &Principal,
    req: pb::ListGroupsRequest,
) -> ApiResult<pb::ListGroupsResponse> {
    core.require(principal, permissions::GROUPS_VIEW).await?;
    let page = Page::from_request(req.page.as_ref())?;
    let after = match &page.after {
        None => None,
        Some(token) => {
            let parsed = token
                .split_once(':')
                .and_then(|(p, name_key)| Some((p.parse::<i32>().ok()?, name_key.to_owned())));
            Some(parsed.ok_or_else(|| {
                ApiError::invalid("page.page_token", "is not a token this service issued")
            })?)
        }
    };
    let needle = convert::text("name_contains", &req.name_contains, 128)?;
    let rows = core
        .repo
        .list_groups(&needle, after, page.fetch_limit())
        .await?;
    let (rows, page) = page.finish(rows, |g| format!("{}:{}", g.priority, g.name_key));
    let mut groups = Vec::with_capacity(rows.len());
    for row in &rows {
        groups.push(group_to_proto(row, core.repo.member_count(&row.id).await?));
    }
    Ok(pb::ListGroupsResponse {
        groups,
        page: Some(page),
    })
}

// ---- permissions ---------------------------------------------------------------------------

pub fn definitions() -> pb::ListPermissionDefinitionsResponse {
    let permissions = permissions::CATALOGUE
        .iter()
        .map(|(name, description)| pb::PermissionDefinition {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
            read_only: permissions::is_read_only(name),
        })
        .collect();
    pb::ListPermissionDefinitionsResponse { permissions }
}

fn permission_name(raw: &str) -> ApiResult<String> {
    let p = raw.trim();
    if permissions::is_known(p) {
        Ok(p.to_owned())
    } else {
        Err(ApiError::invalid(
            "permission",
            format!("unknown permission {p:?}; see ListPermissionDefinitions"),
        ))
    }
}

async fn group_permissions(core: &Core, group_id: &str) -> ApiResult<pb::GroupPermissions> {
    let rows = core.repo.permissions_of(&[group_id.to_owned()]).await?;
    Ok(pb::GroupPermissions {
        group_id: group_id.to_owned(),
        permissions: rows.into_iter().map(|p| p.permission).collect(),
    })
}

pub async fn grant(
    core: &Core,
    principal: &Principal,
    req: pb::GroupPermissionRequest,
) -> ApiResult<pb::GroupPermissions> {
    core.require(principal, permissions::GROUPS_MODIFY).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let permission = permission_name(&req.permission)?;
    core.require_holding(principal, &permission).await?;
    let change = Change::new(principal, "permission.grant", format!("group:{}", group.id))
        .detail(json!({"permission": permission}));
    core.repo.grant(&group.id, &permission, change).await?;
    core.invalidate();
    group_permissions(core, &group.id).await
}

pub async fn revoke(
    core: &Core,
    principal: &Principal,
    req: pb::GroupPermissionRequest,
) -> ApiResult<pb::GroupPermissions> {
    core.require(principal, permissions::GROUPS_MODIFY).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let permission = permission_name(&req.permission)?;
    let change = Change::new(
        principal,
        "permission.revoke",
        format!("group:{}", group.id),
    )
    .detail(json!({"permission": permission}));
    core.repo.revoke(&group.id, &permission, change).await?;
    core.invalidate();
    group_permissions(core, &group.id).await
}

pub async fn list_permissions(
    core: &Core,
    principal: &Principal,
    req: pb::ListGroupPermissionsRequest,
) -> ApiResult<pb::GroupPermissions> {
    core.require(principal, permissions::GROUPS_VIEW).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    group_permissions(core, &group.id).await
}

pub async fn effective_permissions(
    core: &Core,
    principal: &Principal,
    req: pb::GetEffectivePermissionsRequest,
) -> ApiResult<pb::EffectivePermissions> {
    let user_id = core
        .self_or(principal, &req.user_id, permissions::GROUPS_VIEW)
        .await?;
    let policy = core.user_policy(&user_id).await?;
    Ok(pb::EffectivePermissions {
        user_id,
        administrator: policy.administrator,
        permissions: policy.permissions.iter().cloned().collect(),
    })
}
