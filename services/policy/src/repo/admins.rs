//! The last-administrator guard: a change that could take administrator away from someone
//! (leaving or deleting a group that sets `administrator`, setting it false or unsetting it,
//! changing such a group's priority) runs with the Administrators row locked, and is refused if
//! it would leave no administrator where there was one. "Administrator" is what resolution
//! says: the strongest member group that sets `administrator` sets it true. Identity guards
//! its own side (locking, disabling, deleting users).

use std::collections::{BTreeMap, BTreeSet};

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::core::{ADMINISTRATORS_ID, ALL_USERS_ID};
use crate::entity::{group, group_setting, membership};
use crate::settings::Value;

/// One group that sets `administrator`: `(priority, id)` orders groups as resolution does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSetting {
    pub group_id: String,
    pub priority: i32,
    pub value: bool,
}

/// Whether any user resolves to administrator, given every group that sets `administrator` and
/// the memberships of those groups (every user is implicitly in All Users).
pub fn any_administrator(settings: &[AdminSetting], memberships: &[(String, String)]) -> bool {
    let by_group: BTreeMap<&str, &AdminSetting> =
        settings.iter().map(|s| (s.group_id.as_str(), s)).collect();
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (group_id, user_id) in memberships {
        if by_group.contains_key(group_id.as_str()) {
            users.entry(user_id).or_default().insert(group_id);
        }
    }
    users.values().any(|groups| {
        let all_users = by_group.get(ALL_USERS_ID).copied();
        groups
            .iter()
            .filter_map(|g| by_group.get(g).copied())
            .chain(all_users)
            .min_by(|a, b| (a.priority, &a.group_id).cmp(&(b.priority, &b.group_id)))
            .is_some_and(|s| s.value)
    })
}

/// Whether anyone is an administrator right now, as seen by `conn`.
pub async fn administrators_exist<C: ConnectionTrait>(conn: &C) -> ApiResult<bool> {
    let rows = group_setting::Entity::find()
        .filter(group_setting::Column::Name.eq("administrator"))
        .all(conn)
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.group_id.clone()).collect();
    let groups = group::Entity::find()
        .filter(group::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(conn)
        .await?;
    let settings: Vec<AdminSetting> = rows
        .iter()
        .filter_map(|r| {
            let g = groups.iter().find(|g| g.id == r.group_id)?;
            Some(AdminSetting {
                group_id: g.id.clone(),
                priority: g.priority,
                value: matches!(Value::from_storage(&r.value), Ok(Value::Bool(true))),
            })
        })
        .collect();
    if !settings.iter().any(|s| s.value) {
        return Ok(false);
    }
    let memberships: Vec<(String, String)> = membership::Entity::find()
        .filter(membership::Column::GroupId.is_in(ids.iter().map(String::as_str)))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.group_id, m.user_id))
        .collect();
    Ok(any_administrator(&settings, &memberships))
}

/// Starts a guarded change: locks the Administrators row (so two such changes cannot each
/// remove "the other" last administrator) and says whether administrators exist before it.
pub async fn begin_guard<C: ConnectionTrait>(conn: &C) -> ApiResult<bool> {
    group::Entity::find_by_id(ADMINISTRATORS_ID)
        .lock_exclusive()
        .one(conn)
        .await?;
    administrators_exist(conn).await
}

/// Ends a guarded change: refuses it if administrators existed before and none do now.
pub async fn end_guard<C: ConnectionTrait>(conn: &C, existed: bool) -> ApiResult<()> {
    if existed && !administrators_exist(conn).await? {
        return Err(ApiError::FailedPrecondition(
            "this would leave no administrator; make someone else an administrator first".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(id: &str, priority: i32, value: bool) -> AdminSetting {
        AdminSetting {
            group_id: id.into(),
            priority,
            value,
        }
    }

    fn member(group: &str, user: &str) -> (String, String) {
        (group.into(), user.into())
    }

    #[test]
    fn the_strongest_group_that_sets_administrator_decides() {
        let admins = setting(ADMINISTRATORS_ID, 1, true);
        let alone = std::slice::from_ref(&admins);
        assert!(any_administrator(alone, &[member(ADMINISTRATORS_ID, "u")]));
        assert!(!any_administrator(alone, &[]));
        // A stronger group saying false takes it away; a weaker one does not.
        let deny = setting("g-deny", 0, false);
        let weak = setting("g-weak", 5, false);
        let m = [member(ADMINISTRATORS_ID, "u"), member("g-deny", "u")];
        assert!(!any_administrator(&[admins.clone(), deny], &m));
        let m = [member(ADMINISTRATORS_ID, "u"), member("g-weak", "u")];
        assert!(any_administrator(&[admins.clone(), weak], &m));
        // Equal priority: the lower id wins.
        let tie = setting("zzz", 1, false);
        let m = [member(ADMINISTRATORS_ID, "u"), member("zzz", "u")];
        assert!(any_administrator(&[admins, tie], &m));
    }

    #[test]
    fn all_users_counts_for_everyone() {
        let everyone = setting(ALL_USERS_ID, 1000, true);
        let deny = setting("g", 10, false);
        assert!(any_administrator(
            &[everyone.clone(), deny.clone()],
            &[member(ALL_USERS_ID, "a"), member("g", "b")]
        ));
        assert!(!any_administrator(&[everyone, deny], &[member("g", "b")]));
    }
}
