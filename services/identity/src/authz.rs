//! Delegation on identity's side, with the kit's one rule ([`Rights`]): a caller acts on another
//! user only if that user's effective rights are a subset of its own (administrators excepted),
//! confers only permissions it holds, and never takes away the last active administrator.
//!
//! Rights come from policy's effective permissions when `policy_endpoint` is set; identity alone
//! knows only its bootstrap administrator (`is_admin`).

use atrium_service_kit::auth::{Principal, Rights};
use atrium_service_kit::{ApiError, ApiResult};

use tokio::sync::{Mutex, MutexGuard};

use crate::core::{Actor, Core, full_scope};
use crate::entity::user;

/// Changes that could remove an administrator, one at a time.
static ADMIN_CHANGES: Mutex<()> = Mutex::const_new(());

/// How many candidate users are checked per page when looking for another administrator.
const ADMIN_SCAN_PAGE: u64 = 200;

impl Core {
    /// A user's effective rights. `fresh` skips the permission cache (for a target whose rights
    /// decide whether the caller may act on them).
    pub async fn user_rights(&self, user_id: &str, fresh: bool) -> ApiResult<Rights> {
        match &self.policy_link {
            Some(policy) => {
                if fresh {
                    policy.forget(user_id);
                }
                let perms = policy.permissions(user_id).await?;
                if perms.administrator {
                    return Ok(Rights::all());
                }
                Ok(Rights::new(false, perms.names.iter().cloned()))
            }
            None => {
                let row = self.repo.user(user_id).await?;
                Ok(if row.is_admin {
                    Rights::all()
                } else {
                    Rights::default()
                })
            }
        }
    }

    /// What the caller holds: a user's effective rights, an API key's (effective) permissions,
    /// or everything for Atrium's services (which the kit's call table confines).
    pub async fn caller_rights(&self, principal: &Principal) -> ApiResult<Rights> {
        match principal {
            Principal::Service(_) => Ok(Rights::all()),
            Principal::ApiKey(key) => Ok(Rights::new(false, key.permissions.iter().cloned())),
            Principal::User(u) => {
                let u = full_scope(u)?;
                self.active_user(&u.user_id).await?;
                self.user_rights(&u.user_id, false).await
            }
        }
    }

    /// The caller acting on user `target`: themselves, or with `permission` and only if the
    /// target's rights are a subset of the caller's.
    pub async fn act_on(
        &self,
        principal: &Principal,
        target: &str,
        permission: &str,
    ) -> ApiResult<Actor> {
        let actor = self.self_or(principal, target, permission).await?;
        if let Actor::Admin(caller) = &actor {
            self.may_act_on(caller, target).await?;
        }
        Ok(actor)
    }

    /// The delegation check alone (the caller already holds the RPC's permission).
    pub async fn may_act_on(&self, caller: &Principal, target: &str) -> ApiResult<()> {
        let rights = self.caller_rights(caller).await?;
        if rights.administrator {
            return Ok(());
        }
        rights.act_on(&self.user_rights(target, true).await?)
    }

    /// Refuses a change (`what`: "delete", "disable", "lock") that would leave no active (not
    /// locked, not disabled) administrator. The returned guard serialises such changes in this
    /// process: hold it until the change is committed, so two administrators locking each other
    /// at once cannot both succeed. (Replicas are not serialised with each other.)
    pub async fn guard_last_admin(
        &self,
        target: &user::Model,
        what: &str,
    ) -> ApiResult<Option<MutexGuard<'static, ()>>> {
        if !self.user_rights(&target.id, true).await?.administrator {
            return Ok(None);
        }
        let serial = ADMIN_CHANGES.lock().await;
        self.another_active_admin(target, what).await?;
        Ok(Some(serial))
    }

    async fn another_active_admin(&self, target: &user::Model, what: &str) -> ApiResult<()> {
        let refused = || {
            ApiError::FailedPrecondition(format!(
                "cannot {what} {}: they are the last active administrator; make someone else an \
                 administrator first",
                target.username
            ))
        };
        let Some(policy) = &self.policy_link else {
            let others = self
                .repo
                .active_admin_ids(&target.id, None, 1, true)
                .await?;
            return if others.is_empty() {
                Err(refused())
            } else {
                Ok(())
            };
        };
        // Policy knows who is an administrator; identity knows who is active. Bootstrap
        // administrators are the likeliest, so they are asked first.
        for admins_only in [true, false] {
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .repo
                    .active_admin_ids(&target.id, after.as_deref(), ADMIN_SCAN_PAGE, admins_only)
                    .await?;
                for id in &page {
                    if policy.permissions(id).await?.administrator {
                        return Ok(());
                    }
                }
                match page.last() {
                    Some(last) if page.len() as u64 == ADMIN_SCAN_PAGE => {
                        after = Some(last.clone())
                    }
                    _ => break,
                }
            }
        }
        Err(refused())
    }
}
