//! Who may call the agent: the session-manager (by its certificate, within the kit's service
//! table), and — when identity and policy are configured — users and API keys holding
//! `agents.view` for the read-only status calls or `agents.modify` to drain. Users' permissions
//! come from policy and are reused for a few seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atrium_proto::policy::v1::GetEffectivePermissionsRequest;
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_service_kit::auth::{Principal, Scope};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_service_kit::{ApiError, ApiResult};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type PolicyClient = PolicyServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

/// How long a user's permissions from policy are reused.
const TTL: Duration = Duration::from_secs(3);

/// Users' rights on this agent, from policy.
pub struct UserAccess {
    policy: PolicyClient,
    cache: Mutex<HashMap<String, Cached>>,
}

/// A user's administrator flag and permissions, and when policy said so.
type Cached = (bool, Vec<String>, Instant);

impl UserAccess {
    pub fn new(policy_endpoint: &str, dialer: &Dialer) -> anyhow::Result<Self> {
        let channel = dialer
            .lazy(policy_endpoint)
            .map_err(|e| anyhow::anyhow!("policy_endpoint: {e:#}"))?;
        Ok(Self {
            policy: PolicyServiceClient::with_interceptor(channel, OutgoingInterceptor::new(None)?),
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn holds(&self, user_id: &str, permission: &str) -> ApiResult<bool> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            .filter(|(_, _, at)| at.elapsed() < TTL)
            .map(|(admin, perms, _)| *admin || perms.iter().any(|p| p == permission));
        if let Some(answer) = cached {
            return Ok(answer);
        }
        let request = GetEffectivePermissionsRequest {
            user_id: user_id.to_owned(),
        };
        let perms = self
            .policy
            .clone()
            .get_effective_permissions(request)
            .await
            .map_err(|status| {
                tracing::warn!(error = %status, "policy could not answer a permission check");
                ApiError::Unavailable("cannot check permissions right now".into())
            })?
            .into_inner();
        let answer = perms.administrator || perms.permissions.iter().any(|p| p == permission);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            user_id.to_owned(),
            (perms.administrator, perms.permissions, Instant::now()),
        );
        Ok(answer)
    }
}

/// Services pass (the auth layer has held them to their table); users and keys need
/// `permission`, and only when `users` is configured.
pub async fn require(
    principal: &Principal,
    users: Option<&UserAccess>,
    permission: &str,
) -> ApiResult<()> {
    match (principal, users) {
        (Principal::Service(_), _) => Ok(()),
        (_, None) => Err(ApiError::PermissionDenied(
            "only Atrium's services may call this agent".into(),
        )),
        (Principal::ApiKey(key), Some(_)) => key.require(permission),
        (Principal::User(user), Some(access)) => {
            if user.scope != Scope::Full {
                return Err(ApiError::PermissionDenied("finish signing in first".into()));
            }
            if access.holds(&user.user_id, permission).await? {
                Ok(())
            } else {
                Err(ApiError::PermissionDenied(format!(
                    "you lack permission {permission}"
                )))
            }
        }
    }
}
