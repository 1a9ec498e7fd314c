//! The identity service's shared state and the authorization and audit helpers every handler
//! uses.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use atrium_service_kit::auth::{ApiKeyPrincipal, ApiKeyResolver, Principal, Scope, UserPrincipal};
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;

use crate::config::IdentityConfig;
use crate::crypto::SecretBox;
use crate::entity::{audit_event, user};
use crate::password::PasswordPolicy;
use crate::repo::Repo;
use crate::tokens::TokenIssuer;

pub struct Core {
    pub repo: Repo,
    pub tokens: TokenIssuer,
    pub secrets: SecretBox,
    pub config: IdentityConfig,
    pub policy: PasswordPolicy,
    /// A real argon2id hash verified when the username is unknown, so that "no such user"
    /// takes as long as "wrong password".
    pub dummy_hash: String,
    /// The policy service, when configured.
    pub policy_link: Option<Arc<crate::policy_link::PolicyLink>>,
    /// Login attempts by result and reason, for `/metrics`.
    pub logins: Family<LoginLabels, Counter>,
    /// Revoked login sessions: the set identity's auth layer checks, and the feed behind
    /// `WatchRevocations`.
    pub revocations: crate::revocation_feed::RevocationFeed,
    /// Argon2 work under a concurrency limit, and the sign-in rate limits.
    pub guard: crate::limits::LoginGuard,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// `success` or `failure`.
    pub result: String,
    /// Why a login failed (the audit event's reason), empty on success.
    pub reason: String,
}

pub type SharedCore = Arc<Core>;

/// What the caller may act as, after authorization.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The caller acts on their own account.
    SelfUser(UserPrincipal),
    /// An administrator, API key holder or service.
    Admin(Principal),
}

impl Core {
    /// Allows Atrium's services (within the kit's call table), API keys holding `permission` (read-only keys: view
    /// permissions only) and administrators with a full-scope token.
    pub async fn require(&self, principal: &Principal, permission: &str) -> ApiResult<()> {
        match principal {
            Principal::Service(_) => Ok(()),
            Principal::ApiKey(key) => key.require(permission),
            Principal::User(u) => {
                let u = full_scope(u)?;
                let row = self.repo.user(&u.user_id).await.map_err(gone)?;
                if is_locked(&row) || row.disabled {
                    return Err(ApiError::Unauthenticated(
                        "account is locked or disabled".into(),
                    ));
                }
                let allowed = match &self.policy_link {
                    Some(policy) => {
                        let perms = policy.permissions(&u.user_id).await?;
                        perms.administrator || perms.names.contains(permission)
                    }
                    None => row.is_admin,
                };
                if allowed {
                    Ok(())
                } else {
                    Err(ApiError::PermissionDenied(format!(
                        "you lack permission {permission}"
                    )))
                }
            }
        }
    }

    /// The caller acting on `target` (a user id): themselves, or with `permission`.
    pub async fn self_or(
        &self,
        principal: &Principal,
        target: &str,
        permission: &str,
    ) -> ApiResult<Actor> {
        if let Principal::User(u) = principal
            && u.user_id == target
        {
            let u = full_scope(u)?;
            // Tokens outlive a lock by up to their lifetime; refuse them at once.
            self.active_user(&u.user_id).await?;
            return Ok(Actor::SelfUser(u.clone()));
        }
        self.require(principal, permission).await?;
        Ok(Actor::Admin(principal.clone()))
    }

    /// A user was created or deleted: let the outbox reach policy now.
    pub fn user_events_queued(&self) {
        if let Some(policy) = &self.policy_link {
            policy.nudge();
        }
    }

    /// Whether the principal is an administrator (without failing).
    pub async fn is_admin(&self, principal: &Principal) -> bool {
        if let (Some(policy), Principal::User(u)) = (&self.policy_link, principal) {
            return policy
                .permissions(&u.user_id)
                .await
                .is_ok_and(|p| p.administrator);
        }
        match principal {
            Principal::User(u) => self
                .repo
                .user(&u.user_id)
                .await
                .is_ok_and(|r| r.is_admin && !is_locked(&r) && !r.disabled),
            _ => false,
        }
    }

    /// The caller's own user id; errors for API keys and services.
    pub fn caller_user<'a>(&self, principal: &'a Principal) -> ApiResult<&'a UserPrincipal> {
        match principal {
            Principal::User(u) => Ok(u),
            _ => Err(ApiError::invalid(
                "user_id",
                "is required when the caller is not a user",
            )),
        }
    }

    /// A user row that must exist and may sign in.
    pub async fn active_user(&self, user_id: &str) -> ApiResult<user::Model> {
        let row = self.repo.user(user_id).await.map_err(gone)?;
        if is_locked(&row) {
            return Err(ApiError::Unauthenticated("account is locked".into()));
        }
        if row.disabled {
            return Err(ApiError::Unauthenticated("account is disabled".into()));
        }
        Ok(row)
    }
}

pub fn full_scope(u: &UserPrincipal) -> ApiResult<&UserPrincipal> {
    match u.scope {
        Scope::Full => Ok(u),
        Scope::PasswordChange => Err(ApiError::PermissionDenied(
            "a password change is required first".into(),
        )),
        Scope::TotpEnrollment => Err(ApiError::PermissionDenied(
            "two-factor enrolment is required first".into(),
        )),
    }
}

/// The account behind a token could not be read: it is gone (Unauthenticated), or the database
/// could not answer (Unavailable: the caller may retry; nothing is wrong with their account).
fn gone(error: ApiError) -> ApiError {
    match error {
        ApiError::NotFound(_) => {
            ApiError::Unauthenticated("the account behind this token no longer exists".into())
        }
        other => {
            tracing::warn!(error = %other, "reading an account for an authorization check failed");
            ApiError::Unavailable(
                "your account cannot be checked right now; try again shortly".into(),
            )
        }
    }
}

/// Whether the account is locked now: an admin's lock, or an automatic lockout that has not
/// run out yet.
pub fn is_locked(row: &user::Model) -> bool {
    row.locked && row.locked_until.is_none_or(|until| until > Utc::now())
}

/// An audit event about `user_id`, by `actor`.
pub fn event(
    kind: &str,
    user_id: Option<&str>,
    actor: &str,
    detail: serde_json::Value,
) -> audit_event::Model {
    audit_event::Model {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        at: Utc::now(),
        kind: kind.to_owned(),
        user_id: user_id.map(str::to_owned),
        actor: actor.to_owned(),
        detail: detail.to_string(),
    }
}

/// Records an event outside any other write; failures are logged, not returned, so that a
/// refused login stays refused for the right reason.
pub async fn record(core: &Core, event: audit_event::Model) {
    if let Some(result) = event.kind.strip_prefix("login.") {
        let reason = serde_json::from_str::<serde_json::Value>(&event.detail)
            .ok()
            .and_then(|d| d.get("reason")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        core.logins
            .get_or_create(&LoginLabels {
                result: result.to_owned(),
                reason,
            })
            .inc();
    }
    if let Err(e) = Repo::record(core.repo.db(), event).await {
        tracing::error!(error = %e, "audit write failed");
    }
}

/// API keys, as identity's own auth layer resolves them.
pub struct LocalApiKeys(pub SharedCore);

#[async_trait::async_trait]
impl ApiKeyResolver for LocalApiKeys {
    async fn resolve(&self, id: &str, secret: &str) -> Result<ApiKeyPrincipal, ApiError> {
        crate::api::api_keys::authenticate(&self.0, id, secret).await
    }
}
