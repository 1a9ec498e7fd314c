//! The agent: one per node, the only part of Atrium that touches containers. It runs session
//! containers on the node's Docker engine (hardened, labelled, with Kasm's conventions), reports
//! what it holds — Docker is its only truth, it stores nothing — heartbeats its capacity, and
//! drains on SIGTERM.
//!
//! Sessions, placement and users' rights belong to the session-manager, which drives the agent
//! (proving who it is with its client certificate); administrators may read its status and
//! drain it with their own login when identity and policy are configured.

mod access;
pub mod api;
pub mod config;
pub mod core;
mod drain;
pub mod error;
pub mod heartbeat;
pub mod metrics;
pub mod runtime;
pub mod sessions;
pub mod spec;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use atrium_heartbeat::{HeartbeatStore, MemoryHeartbeats, RedisHeartbeats};
use atrium_proto::agent::v1::agent_service_server::AgentServiceServer;
use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::remote::{
    API_KEY_TTL, IdentityClient, RemoteApiKeys, RemoteKeys, follow_revocations, identity_client,
};
use atrium_service_kit::auth::{AuthLayer, Authenticator, KeySet};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::server::{GrpcServer, ServeOptions};
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use crate::access::UserAccess;
pub use crate::config::AgentConfig;
use crate::core::{Core, SharedCore};
use crate::runtime::ContainerRuntime;
use crate::runtime::docker::DockerRuntime;

pub const SERVICE_NAME: &str = "atrium.agent.v1.AgentService";

/// A ready agent: runtime and heartbeat store chosen, nothing dialled yet.
pub struct Agent {
    core: SharedCore,
    store: Arc<dyn HeartbeatStore>,
    authenticator: Authenticator,
    /// Users' rights, when identity and policy are configured.
    users: Option<Arc<UserAccess>>,
    identity: Option<(IdentityClient, Arc<RemoteKeys>)>,
}

impl Agent {
    /// The Docker engine at `docker_host`; heartbeats in Redis when `redis_url` is set, else
    /// in this process.
    pub fn new(config: AgentConfig) -> anyhow::Result<Self> {
        let exec_timeout = Duration::from_secs(config.exec_timeout_secs);
        let runtime = Arc::new(DockerRuntime::connect(
            &config.docker_host,
            config.docker_tls.as_ref(),
            exec_timeout,
        )?);
        let store: Arc<dyn HeartbeatStore> = match &config.redis_url {
            Some(url) => Arc::new(RedisHeartbeats::with_namespace(
                url.expose(),
                &config.redis_namespace,
            )?),
            None => Arc::new(MemoryHeartbeats::new()),
        };
        Self::with_parts(config, runtime, store)
    }

    /// With a given runtime and store (tests; `atrium up` sharing an in-process store).
    pub fn with_parts(
        config: AgentConfig,
        runtime: Arc<dyn ContainerRuntime>,
        store: Arc<dyn HeartbeatStore>,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let mut authenticator = Authenticator::new(KeySet::default(), "atrium");
        let mut users = None;
        let mut identity = None;
        if let (Some(identity_endpoint), Some(policy_endpoint)) =
            (&config.identity_endpoint, &config.policy_endpoint)
        {
            let dialer = Dialer::for_service(&config.tls)?;
            let client = identity_client(identity_endpoint, &dialer)?;
            let keys = Arc::new(RemoteKeys::new(
                client.clone(),
                authenticator.keys().clone(),
            ));
            authenticator = authenticator
                .with_remote_keys(keys.clone())
                .with_api_keys(Arc::new(RemoteApiKeys::new(client.clone(), API_KEY_TTL)));
            users = Some(Arc::new(UserAccess::new(policy_endpoint, &dialer)?));
            identity = Some((client, keys));
        }
        Ok(Self {
            core: Arc::new(Core::new(config, runtime)),
            store,
            authenticator,
            users,
            identity,
        })
    }

    pub fn core(&self) -> SharedCore {
        self.core.clone()
    }

    pub fn heartbeats(&self) -> Arc<dyn HeartbeatStore> {
        self.store.clone()
    }

    /// Serves until `shutdown` fires or a drain ends (which fires it). Heartbeats run alongside;
    /// after a drain the heartbeat is deleted, after a plain shutdown it is left to expire (a
    /// quick restart then looks like nothing happened).
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let bound = listener.local_addr().context("read the bound address")?;
        self.core
            .set_address(self.core.config.advertised_address(bound));
        let mut server = GrpcServer::new(&[SERVICE_NAME])?;
        server
            .routes_mut()
            .add_service(AgentServiceServer::new(api::AgentApi::new(
                self.core.clone(),
                self.users.clone(),
            )));
        let followers = self.identity.clone().map(|(client, keys)| {
            let (stop, stop2) = (shutdown.clone(), shutdown.clone());
            let revocations = self.authenticator.revocations().clone();
            (
                tokio::spawn(follow_revocations(client, revocations, stop)),
                tokio::spawn(async move { keys.run(Duration::from_secs(60), stop2).await }),
            )
        });
        let health = server.health();
        heartbeat::set_health(&health, ServingStatus::NotServing).await;
        let metrics_of_agent = metrics::AgentMetrics::default();
        metrics_of_agent.register(server.metrics_mut().registry_mut());
        let heartbeats = tokio::spawn(heartbeat::run(
            self.core.clone(),
            self.store.clone(),
            health,
            metrics_of_agent,
            shutdown.clone(),
        ));
        let drain = tokio::spawn(drain::watch(self.core.clone(), shutdown.clone()));
        tracing::info!(agent_id = %self.core.agent_id, address = %self.core.address(), "agent serving");
        let auth = AuthLayer::new(self.authenticator, Vec::new());
        let options = ServeOptions::new(
            self.core.config.tls.server("agent")?,
            Duration::from_secs(self.core.config.shutdown_deadline_secs),
        );
        let served = server
            .serve(listener, metrics, auth, options, shutdown.clone())
            .await;
        shutdown.trigger();
        if let Some((revocations, keys)) = followers {
            let _ = revocations.await;
            let _ = keys.await;
        }
        if let Err(e) = heartbeats.await {
            tracing::warn!(error = %e, "heartbeat task ended abnormally");
        }
        let drained = drain.await.unwrap_or(false);
        if drained && let Err(e) = self.store.remove(&self.core.agent_id).await {
            tracing::warn!(error = %e, "could not delete the heartbeat after draining");
        }
        served
    }
}
