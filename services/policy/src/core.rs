//! Shared state: the repository, the resolved-policy cache, and authorization ([`authz`]).

mod authz;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use atrium_service_kit::auth::{Principal, Scope, permissions};

use atrium_service_kit::{ApiError, ApiResult};
pub use authz::GroupGrant;

use crate::cache::Cache;
use crate::config::PolicyConfig;
use crate::entity::group;
use crate::repo::Repo;
use crate::settings::{self, GroupRef, GroupSettings, Resolved, Value};

/// The system groups have fixed ids (they sort before every generated UUIDv7).
pub const ADMINISTRATORS_ID: &str = "00000000-0000-7000-8000-000000000001";
pub const ALL_USERS_ID: &str = "00000000-0000-7000-8000-000000000002";

/// Everything policy decides for one user, resolved once and cached.
#[derive(Debug)]
pub struct UserPolicy {
    pub user_id: String,
    /// The user's groups, strongest first (priority, then id).
    pub groups: Vec<group::Model>,
    pub resolved: Vec<Resolved>,
    pub administrator: bool,
    pub permissions: BTreeSet<String>,
}

impl UserPolicy {
    pub fn group_ids(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.id.clone()).collect()
    }

    pub fn value(&self, name: &str) -> Option<&Value> {
        self.resolved
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.value.as_ref())
    }
}

pub struct Core {
    pub repo: Repo,
    pub config: PolicyConfig,
    pub cache: Cache<UserPolicy>,
}

pub type SharedCore = Arc<Core>;

impl Core {
    pub fn new(repo: Repo, config: PolicyConfig) -> Self {
        let cache = Cache::new(Duration::from_millis(config.cache_ttl_ms));
        Self {
            repo,
            config,
            cache,
        }
    }

    /// Forget every cached resolution: call after any write that can change one.
    pub fn invalidate(&self) {
        self.cache.invalidate();
    }

    /// The user's resolved policy, from cache when fresh.
    pub async fn user_policy(&self, user_id: &str) -> ApiResult<Arc<UserPolicy>> {
        self.cache
            .get(user_id, || self.resolve_uncached(user_id))
            .await
    }

    /// Resolves from the database: the user's groups (All Users always), their settings and
    /// permission grants.
    pub async fn resolve_uncached(&self, user_id: &str) -> ApiResult<UserPolicy> {
        let mut ids: Vec<String> = self
            .repo
            .user_memberships(user_id)
            .await?
            .into_iter()
            .map(|m| m.group_id)
            .collect();
        if !ids.iter().any(|id| id == ALL_USERS_ID) {
            ids.push(ALL_USERS_ID.to_owned());
        }
        let groups = self.repo.groups_by_ids(&ids).await?;
        let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
        let rows = self.repo.settings_of(&ids).await?;
        let mut inputs: Vec<GroupSettings> = groups
            .iter()
            .map(|g| GroupSettings {
                group: GroupRef {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    priority: g.priority,
                },
                values: Default::default(),
            })
            .collect();
        for row in rows {
            let Some(target) = inputs.iter_mut().find(|g| g.group.id == row.group_id) else {
                continue;
            };
            match Value::from_storage(&row.value) {
                Ok(value) => {
                    target.values.insert(row.name, value);
                }
                Err(e) => {
                    tracing::error!(group_id = %row.group_id, setting = %row.name, error = %e, "stored setting is unreadable; ignored")
                }
            }
        }
        let resolved = settings::resolve(&inputs);
        let administrator = resolved
            .iter()
            .find(|r| r.name == "administrator")
            .is_some_and(|r| matches!(r.value, Some(Value::Bool(true))));
        let permissions: BTreeSet<String> = if administrator {
            permissions::all().map(str::to_owned).collect()
        } else {
            self.repo
                .permissions_of(&ids)
                .await?
                .into_iter()
                .map(|p| p.permission)
                .collect()
        };
        Ok(UserPolicy {
            user_id: user_id.to_owned(),
            groups,
            resolved,
            administrator,
            permissions,
        })
    }

    /// The target user: `user_id`, or the calling user when empty. A user may act on
    /// themselves; anyone else needs `permission`.
    pub async fn self_or(
        &self,
        principal: &Principal,
        user_id: &str,
        permission: &str,
    ) -> ApiResult<String> {
        let target = if user_id.trim().is_empty() {
            match principal {
                Principal::User(u) => u.user_id.clone(),
                _ => {
                    return Err(ApiError::invalid(
                        "user_id",
                        "is required when the caller is not a user",
                    ));
                }
            }
        } else {
            crate::convert::uuid("user_id", user_id)?
        };
        if let Principal::User(u) = principal
            && u.user_id == target
            && u.scope == Scope::Full
        {
            return Ok(target);
        }
        self.require(principal, permission).await?;
        Ok(target)
    }
}
