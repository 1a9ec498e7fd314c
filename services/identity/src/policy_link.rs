//! Identity's link to the policy service: users' effective permissions (cached briefly), and
//! delivery of the user lifecycle outbox (UserCreated / UserDeleted).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_proto::policy::v1::{GetEffectivePermissionsRequest, UserLifecycleRequest};
use atrium_service_kit::auth::Credential;
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

pub struct PolicyLink {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Arc<Permissions>, Instant)>>,
    wake: Notify,
}

impl PolicyLink {
    pub fn new(endpoint: &str, service_token: &str, ttl: Duration) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(endpoint.to_owned())
            .map_err(|e| anyhow::anyhow!("policy_endpoint {endpoint}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let interceptor =
            OutgoingInterceptor::new(Some(&Credential::Service(service_token.to_owned())))?;
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
