//! Authorization, built on the kit's one delegation rule ([`Rights`]): what a caller holds,
//! whether it may use a permission, confer a group's rights, act on a user, or touch the host.
//!
//! - Services hold everything (the auth layer has already limited them to their call table).
//! - An API key holds its own permissions (read-only keys only the `.view` ones), never
//!   administrator.
//! - A user with a full-scope token holds their effective rights; anyone else nothing.

use atrium_service_kit::auth::{Principal, Rights, Scope, permissions};
use atrium_service_kit::{ApiError, ApiResult};

use super::Core;
use crate::settings::Value;

/// What joining a group confers: its permission grants, and its `administrator` setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupGrant {
    pub permissions: Vec<String>,
    /// `Some(value)` when the group sets `administrator` (either way: a `false` on a strong
    /// group takes administrator away, so changing such a group is an administrator's call).
    pub sets_administrator: Option<bool>,
}

impl Core {
    /// What `principal` holds.
    pub async fn rights(&self, principal: &Principal) -> ApiResult<Rights> {
        Ok(match principal {
            Principal::Service(_) => Rights::all(),
            Principal::ApiKey(key) => Rights::new(
                false,
                key.permissions
                    .iter()
                    .filter(|p| !key.read_only || permissions::is_read_only(p))
                    .cloned(),
            ),
            Principal::User(u) if u.scope == Scope::Full => {
                let policy = self.user_policy(&u.user_id).await?;
                Rights::new(policy.administrator, policy.permissions.iter().cloned())
            }
            Principal::User(_) => Rights::default(),
        })
    }

    /// Allows callers holding `permission`.
    pub async fn require(&self, principal: &Principal, permission: &str) -> ApiResult<()> {
        match principal {
            Principal::ApiKey(key) => key.require(permission),
            Principal::User(u) if u.scope != Scope::Full => {
                Err(ApiError::PermissionDenied("finish signing in first".into()))
            }
            _ => {
                if self.rights(principal).await?.holds(permission) {
                    Ok(())
                } else {
                    Err(ApiError::PermissionDenied(format!(
                        "you lack permission {permission}"
                    )))
                }
            }
        }
    }

    /// Changes that could give someone more rights than the caller holds, or touch the host,
    /// need an administrator (or a service), whatever else the caller may modify.
    pub async fn require_administrator(&self, principal: &Principal, what: &str) -> ApiResult<()> {
        if self.rights(principal).await?.administrator {
            return Ok(());
        }
        Err(match principal {
            Principal::ApiKey(key) => ApiError::PermissionDenied(format!(
                "{what} needs an administrator; API key {} cannot do it",
                key.key_id
            )),
            _ => ApiError::PermissionDenied(format!("{what} needs an administrator")),
        })
    }

    /// A caller may grant only permissions they hold themselves.
    pub async fn require_holding(&self, principal: &Principal, permission: &str) -> ApiResult<()> {
        self.rights(principal).await?.confer([permission], false)
    }

    /// What a group confers on its members.
    pub async fn group_grant(&self, group_id: &str) -> ApiResult<GroupGrant> {
        let ids = [group_id.to_owned()];
        let settings = self.repo.settings_of(&ids).await?;
        let sets_administrator = settings
            .iter()
            .find(|r| r.name == "administrator")
            .map(|r| matches!(Value::from_storage(&r.value), Ok(Value::Bool(true))));
        let permissions = self
            .repo
            .permissions_of(&ids)
            .await?
            .into_iter()
            .map(|p| p.permission)
            .collect();
        Ok(GroupGrant {
            permissions,
            sets_administrator,
        })
    }

    /// Putting users into (or taking them out of) a group, directly or by an SSO mapping: the
    /// caller must hold every permission the group grants, and be an administrator if the group
    /// sets `administrator` at all. `what` says what is being done, for the error.
    pub async fn may_change_membership(
        &self,
        principal: &Principal,
        group_id: &str,
        what: &str,
    ) -> ApiResult<GroupGrant> {
        let grant = self.group_grant(group_id).await?;
        if grant.sets_administrator.is_some() {
            self.require_administrator(
                principal,
                &format!("{what} a group that sets administrator"),
            )
            .await?;
        }
        self.rights(principal)
            .await?
            .confer(grant.permissions.iter().map(String::as_str), false)?;
        Ok(grant)
    }

    /// Whether a group sets `administrator=true` (its members would be administrators).
    pub async fn grants_administrator(&self, group_id: &str) -> ApiResult<bool> {
        Ok(self.group_grant(group_id).await?.sets_administrator == Some(true))
    }

    /// The caller may act on `user_id` (e.g. write files into their sessions) only if that
    /// user's rights are a subset of its own. Acting on oneself is always allowed.
    pub async fn may_act_on(&self, principal: &Principal, user_id: &str) -> ApiResult<()> {
        if let Principal::User(u) = principal
            && u.user_id == user_id
        {
            return Ok(());
        }
        let target = self.user_policy(user_id).await?;
        let target = Rights::new(target.administrator, target.permissions.iter().cloned());
        self.rights(principal).await?.act_on(&target)
    }

    /// Whether the caller sees what touches the host (run_config, exec hooks, host paths,
    /// environment): administrators and services do, nobody else.
    pub async fn sees_host_access(&self, principal: &Principal) -> ApiResult<bool> {
        Ok(self.rights(principal).await?.administrator)
    }
}
