//! Identity's link to the policy service: users' effective permissions (cached briefly), the
//! settings identity enforces at login (two-factor), and delivery of the user lifecycle outbox
//! (UserCreated / UserDeleted).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_proto::policy::v1::setting_value::Kind;
use atrium_proto::policy::v1::{
    GetEffectivePermissionsRequest, ResolveEffectivePolicyRequest, UserLifecycleRequest,
};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_service_kit::{ApiError, ApiResult, Shutdown};
use tokio::sync::Notify;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::repo::Repo;

type Client = PolicyServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

/// A user's effective permissions, as policy resolved them.
#[derive(Debug)]
pub struct Permissions {
    pub administrator: bool,
    pub names: HashSet<String>,
}

/// The effective settings identity enforces at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwoFactorPolicy {
    /// `require_2fa`: the user must enrol at their next login.
    pub required: bool,
    /// `allow_2fa_self_enrollment`: the user may enrol from their profile.
    pub self_enrollment: bool,
    /// `allow_totp_2fa`: TOTP is an allowed second factor.
    pub totp_allowed: bool,
}

impl TwoFactorPolicy {
    /// Identity alone (no policy service): enrolment is voluntary and TOTP allowed.
    pub const STANDALONE: TwoFactorPolicy = TwoFactorPolicy {
        required: false,
        self_enrollment: true,
        totp_allowed: true,
    };
}

pub struct PolicyLink {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Arc<Permissions>, Instant)>>,
    wake: Notify,
}

impl PolicyLink {
    pub fn new(endpoint: &str, dialer: &Dialer, ttl: Duration) -> anyhow::Result<Self> {
        let channel = dialer
            .lazy(endpoint)
            .map_err(|e| anyhow::anyhow!("policy_endpoint: {e:#}"))?;
        let interceptor = OutgoingInterceptor::new(None)?;
        Ok(Self {
            client: PolicyServiceClient::with_interceptor(channel, interceptor),
            ttl,
            cache: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        })
    }

    /// The user's effective permissions, from cache for up to the TTL.
    pub async fn permissions(&self, user_id: &str) -> ApiResult<Arc<Permissions>> {
        if let Some((perms, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            && at.elapsed() < self.ttl
        {
            return Ok(perms.clone());
        }
        let request = GetEffectivePermissionsRequest {
            user_id: user_id.to_owned(),
        };
        let response = self
            .client
            .clone()
            .get_effective_permissions(request)
            .await
            .map_err(|status| {
                tracing::warn!(error = %status, "policy could not answer a permission check");
                ApiError::Unavailable(
                    "permissions cannot be checked right now (policy service unavailable)".into(),
                )
            })?;
        let response = response.into_inner();
        let perms = Arc::new(Permissions {
            administrator: response.administrator,
            names: response.permissions.into_iter().collect(),
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(user_id.to_owned(), (perms.clone(), Instant::now()));
        Ok(perms)
    }

    /// The user's two-factor settings (`require_2fa`, `allow_2fa_self_enrollment`,
    /// `allow_totp_2fa`), resolved by policy now (no cache: a login is rare and must see a
    /// just-changed requirement).
    pub async fn two_factor(&self, user_id: &str) -> ApiResult<TwoFactorPolicy> {
        let request = ResolveEffectivePolicyRequest {
            user_id: user_id.to_owned(),
        };
        let policy = self
            .client
            .clone()
            .resolve_effective_policy(request)
            .await
            .map_err(|status| {
                tracing::warn!(error = %status, "policy could not resolve a user's settings");
                ApiError::Unavailable(
                    "sign-in cannot be completed right now (policy service unavailable)".into(),
                )
            })?
            .into_inner();
        let flag = |name: &str, default: bool| {
            policy
                .settings
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.value.as_ref()?.kind.as_ref())
                .map_or(default, |kind| matches!(kind, Kind::BoolValue(true)))
        };
        Ok(TwoFactorPolicy {
            required: flag("require_2fa", false),
            self_enrollment: flag("allow_2fa_self_enrollment", false),
            totp_allowed: flag("allow_totp_2fa", true),
        })
    }

    /// Forgets a user's cached permissions (their rights just mattered for a decision that
    /// must not lag, or they were deleted).
    pub fn forget(&self, user_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user_id);
    }

    /// Asks the delivery loop to run now (a user was created or deleted).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Delivers queued events in order; stops at the first failure (to keep the order).
    pub async fn deliver(&self, repo: &Repo) -> ApiResult<usize> {
        let mut delivered = 0;
        for event in repo.pending_outbox(100).await? {
            let request = UserLifecycleRequest {
                user_id: event.user_id.clone(),
                username: event.username.clone(),
                administrator: event.administrator,
            };
            let mut client = self.client.clone();
            let sent = match event.kind.as_str() {
                "deleted" => client.user_deleted(request).await.map(|_| ()),
                _ => client.user_created(request).await.map(|_| ()),
            };
            match sent {
                Ok(()) => {
                    repo.outbox_delivered(&event.id).await?;
                    delivered += 1;
                }
                Err(status) => {
                    repo.outbox_failed(&event.id).await?;
                    tracing::warn!(user_id = %event.user_id, kind = %event.kind, error = %status, "delivering a user event to policy failed; will retry");
                    break;
                }
            }
        }
        Ok(delivered)
    }

    /// Delivers the outbox whenever nudged, and every few seconds for retries.
    pub async fn run(&self, repo: Repo, shutdown: Shutdown) {
        loop {
            if let Err(e) = self.deliver(&repo).await {
                tracing::warn!(error = %e, "reading the policy outbox failed");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(3)) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}
