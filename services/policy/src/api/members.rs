//! Group membership, and the user lifecycle notifications from identity.

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::paging::Page;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;
use serde_json::json;

use crate::api::groups::existing;
use crate::convert::{self, group_to_proto, timestamp};
use crate::core::{ADMINISTRATORS_ID, ALL_USERS_ID, Core};
use crate::entity::membership;
use crate::repo::Change;

fn membership_to_proto(m: &membership::Model) -> pb::GroupMembership {
    pb::GroupMembership {
        group_id: m.group_id.clone(),
        user_id: m.user_id.clone(),
        added_at: Some(timestamp(m.added_at)),
        source: m.source.clone(),
    }
}

pub async fn add(
    core: &Core,
    principal: &Principal,
    req: pb::GroupMemberRequest,
) -> ApiResult<pb::GroupMembership> {
    core.require(principal, permissions::GROUPS_MODIFY).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let user_id = convert::uuid("user_id", &req.user_id)?;
    // Joining a group gives its rights: the caller must hold them already.
    let grant = core
        .may_change_membership(principal, &group.id, "changing the members of")
        .await?;
    let row = membership::Model {
        group_id: group.id.clone(),
        user_id: user_id.clone(),
        source: "manual".into(),
        added_at: Utc::now(),
    };
    let change = Change::new(principal, "member.add", format!("group:{}", group.id))
        .about(&user_id)
        .detail(json!({"group": group.name, "source": "manual"}));
    core.repo
        .add_member(row, grant.sets_administrator.is_some(), change)
        .await?;
    core.invalidate();
    let stored = core
        .repo
        .membership(&group.id, &user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("membership"))?;
    Ok(membership_to_proto(&stored))
}

pub async fn remove(
    core: &Core,
    principal: &Principal,
    req: pb::GroupMemberRequest,
) -> ApiResult<pb::RemoveGroupMemberResponse> {
    core.require(principal, permissions::GROUPS_MODIFY).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let user_id = convert::uuid("user_id", &req.user_id)?;
    if group.id == ALL_USERS_ID {
        return Err(ApiError::FailedPrecondition(
            "every user is a member of All Users".into(),
        ));
    }
    let sets_administrator = core.group_grant(&group.id).await?.sets_administrator;
    if sets_administrator.is_some() {
        core.require_administrator(
            principal,
            "changing the members of a group that sets administrator",
        )
        .await?;
    }
    let change = Change::new(principal, "member.remove", format!("group:{}", group.id))
        .about(&user_id)
        .detail(json!({"group": group.name}));
    let removed = core
        .repo
        .remove_member(&group.id, &user_id, sets_administrator.is_some(), change)
        .await?;
    core.invalidate();
    Ok(pb::RemoveGroupMemberResponse { removed })
}

pub async fn list_members(
    core: &Core,
    principal: &Principal,
    req: pb::ListGroupMembersRequest,
) -> ApiResult<pb::ListGroupMembersResponse> {
    core.require(principal, permissions::GROUPS_VIEW).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let page = Page::from_request(req.page.as_ref())?;
    let rows = core
        .repo
        .list_members(&group.id, page.after.as_deref(), page.fetch_limit())
        .await?;
    let (rows, page) = page.finish(rows, |m| m.user_id.clone());
    Ok(pb::ListGroupMembersResponse {
        members: rows.iter().map(membership_to_proto).collect(),
        page: Some(page),
    })
}

pub async fn list_user_groups(
    core: &Core,
    principal: &Principal,
    req: pb::ListUserGroupsRequest,
) -> ApiResult<pb::ListUserGroupsResponse> {
    let user_id = core
        .self_or(principal, &req.user_id, permissions::GROUPS_VIEW)
        .await?;
    let page = Page::from_request(req.page.as_ref())?;
    // Keyset `(priority, id)`: the order the groups are in, and still meaningful when the group
    // the previous page ended with has since been left.
    let after = match &page.after {
        None => None,
        Some(token) => Some(
            token
                .split_once(':')
                .and_then(|(p, id)| Some((p.parse::<i32>().ok()?, id.to_owned())))
                .ok_or_else(|| {
                    ApiError::invalid("page.page_token", "is not a token this service issued")
                })?,
        ),
    };
    let policy = core.user_policy(&user_id).await?;
    let rows: Vec<_> = policy
        .groups
        .iter()
        .filter(|g| {
            after
                .as_ref()
                .is_none_or(|(p, id)| (g.priority, &g.id) > (*p, id))
        })
        .take(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX))
        .cloned()
        .collect();
    let (rows, page) = page.finish(rows, |g| format!("{}:{}", g.priority, g.id));
    let mut groups = Vec::with_capacity(rows.len());
    for row in &rows {
        groups.push(group_to_proto(row, core.repo.member_count(&row.id).await?));
    }
    Ok(pb::ListUserGroupsResponse {
        groups,
        page: Some(page),
    })
}

fn service_only(principal: &Principal, what: &str) -> ApiResult<()> {
    if principal.is_service() {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(format!(
            "{what} is for Atrium's services"
        )))
    }
}

pub async fn user_created(
    core: &Core,
    principal: &Principal,
    req: pb::UserLifecycleRequest,
) -> ApiResult<pb::UserLifecycleResponse> {
    service_only(principal, "UserCreated")?;
    let user_id = convert::uuid("user_id", &req.user_id)?;
    let row = membership::Model {
        group_id: ALL_USERS_ID.into(),
        user_id: user_id.clone(),
        source: "system".into(),
        added_at: Utc::now(),
    };
    let joined = |group_id: &str| {
        Change::new(principal, "member.add", format!("group:{group_id}"))
            .about(&user_id)
            .detail(json!({"source": "system"}))
    };
    core.repo
        .add_member(row, false, joined(ALL_USERS_ID))
        .await?;
    if req.administrator {
        let row = membership::Model {
            group_id: ADMINISTRATORS_ID.into(),
            user_id: user_id.clone(),
            source: "system".into(),
            added_at: Utc::now(),
        };
        core.repo
            .add_member(row, false, joined(ADMINISTRATORS_ID))
            .await?;
    }
    core.invalidate();
    Ok(pb::UserLifecycleResponse {})
}

pub async fn user_deleted(
    core: &Core,
    principal: &Principal,
    req: pb::UserLifecycleRequest,
) -> ApiResult<pb::UserLifecycleResponse> {
    service_only(principal, "UserDeleted")?;
    let user_id = convert::uuid("user_id", &req.user_id)?;
    let change = Change::new(principal, "user.delete", format!("user:{user_id}")).about(&user_id);
    core.repo.remove_user(&user_id, change).await?;
    core.invalidate();
    Ok(pb::UserLifecycleResponse {})
}
