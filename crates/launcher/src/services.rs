//! Builds each role's service from the launch configuration, wired to the others' endpoints,
//! with its own TLS identity; what comes out is the role's serve future, not started yet.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use atrium_agent::runtime::docker::DockerRuntime;
use atrium_agent::{Agent, AgentConfig};
use atrium_heartbeat::HeartbeatStore;
use atrium_identity::{BootstrapAdmin, Identity, IdentityConfig};
use atrium_policy::{Policy, PolicyConfig};
use atrium_service_kit::auth::KeySet;
use atrium_service_kit::{Secret, Shutdown};
use tokio::net::TcpListener;

use crate::config::LaunchConfig;
use crate::role::Role;
use crate::secrets::LocalSecrets;
use crate::storage;

/// A role's serve future, ready to be spawned.
pub(crate) type Serving = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A role's listeners: gRPC and, optionally, `/metrics`.
pub(crate) struct Listeners {
    pub grpc: TcpListener,
    pub metrics: Option<TcpListener>,
}

/// What every role is built from.
pub(crate) struct Wiring<'a> {
    pub config: &'a LaunchConfig,
    pub data_dir: &'a Path,
    pub ca_dir: &'a Path,
    pub secrets: &'a LocalSecrets,
    /// Every role's endpoint: those started here and the external ones.
    pub endpoints: &'a BTreeMap<Role, String>,
    pub heartbeats: Option<Arc<dyn HeartbeatStore>>,
    pub shutdown: &'a Shutdown,
}

impl Wiring<'_> {
    pub(crate) fn endpoint(&self, role: Role) -> Option<String> {
        self.endpoints.get(&role).cloned()
    }

    pub(crate) fn require(&self, role: Role, by: Role) -> anyhow::Result<String> {
        self.endpoint(role).with_context(|| {
            format!("{by} needs {role}: start the {role} role too, or give its endpoint")
        })
    }

    pub(crate) fn tls(&self, role: Role) -> atrium_service_kit::tls::TlsConfig {
        atrium_service_kit::tls::TlsConfig::in_dir(self.ca_dir, role.service_id())
    }

    pub(crate) fn deadline_secs(&self) -> u64 {
        self.config.shutdown_deadline.as_secs().max(1)
    }

    pub(crate) fn database_url(&self, role: Role) -> anyhow::Result<String> {
        storage::url(&self.config.storage, self.data_dir, role)
    }

    pub(crate) fn heartbeats(&self) -> anyhow::Result<Arc<dyn HeartbeatStore>> {
        self.heartbeats
            .clone()
            .context("no heartbeat store was made for this launch")
    }
}

/// Identity: its serve future, its bootstrap administrator and its key set (for policy in the
/// same process).
pub(crate) async fn identity(
    wiring: &Wiring<'_>,
    listeners: Listeners,
) -> anyhow::Result<(Serving, Option<BootstrapAdmin>, KeySet)> {
    let mut config = IdentityConfig {
        listen: listeners.grpc.local_addr()?,
        database_url: wiring.database_url(Role::Identity)?,
        log_format: wiring.config.log_format,
        secrets_key: Some(Secret::new(wiring.secrets.secrets_key.clone())),
        tls: wiring.tls(Role::Identity),
        policy_endpoint: wiring.endpoint(Role::Policy),
        bootstrap_admin_password: wiring.config.admin_password.clone(),
        shutdown_deadline_secs: wiring.deadline_secs(),
        ..IdentityConfig::default()
    };
    if let Some(tune) = &wiring.config.tuning.identity {
        tune(&mut config);
    }
    let identity = Identity::new(config).await.context("start identity")?;
    let admin = identity.bootstrap_admin().cloned();
    let keys = identity.authenticator().keys().clone();
    let shutdown = wiring.shutdown.clone();
    let serving = Box::pin(identity.serve(listeners.grpc, listeners.metrics, shutdown));
    Ok((serving, admin, keys))
}

/// Policy; with `keys`, it verifies tokens with identity's key set from this process.
pub(crate) async fn policy(
    wiring: &Wiring<'_>,
    listeners: Listeners,
    keys: Option<KeySet>,
) -> anyhow::Result<Serving> {
    let mut config = PolicyConfig {
        listen: listeners.grpc.local_addr()?,
        database_url: wiring.database_url(Role::Policy)?,
        log_format: wiring.config.log_format,
        identity_endpoint: wiring.require(Role::Identity, Role::Policy)?,
        tls: wiring.tls(Role::Policy),
        shutdown_deadline_secs: wiring.deadline_secs(),
        ..PolicyConfig::default()
    };
    if let Some(tune) = &wiring.config.tuning.policy {
        tune(&mut config);
    }
    let policy = match keys {
        Some(keys) => Policy::with_keys(config, keys).await,
        None => Policy::new(config).await,
    }
    .context("start policy")?;
    let shutdown = wiring.shutdown.clone();
    Ok(Box::pin(policy.serve(
        listeners.grpc,
        listeners.metrics,
        shutdown,
    )))
}

/// The agent on this machine: the configured Docker engine, heartbeats in the launch's store
/// (shared with a session-manager in this process). Users' calls are checked against identity
/// and policy when both are reachable.
pub(crate) fn agent(wiring: &Wiring<'_>, listeners: Listeners) -> anyhow::Result<Serving> {
    let (identity_endpoint, policy_endpoint) = match (
        wiring.endpoint(Role::Identity),
        wiring.endpoint(Role::Policy),
    ) {
        (Some(identity), Some(policy)) => (Some(identity), Some(policy)),
        _ => (None, None),
    };
    let mut config = AgentConfig {
        listen: listeners.grpc.local_addr()?,
        log_format: wiring.config.log_format,
        advertise_host: crate::launch::dial_host(wiring.config.host).to_string(),
        tls: wiring.tls(Role::Agent),
        identity_endpoint,
        policy_endpoint,
        docker_host: wiring.config.docker_host.clone(),
        redis_url: wiring.config.redis_url.clone(),
        redis_namespace: wiring.config.redis_namespace.clone(),
        shutdown_deadline_secs: wiring.deadline_secs(),
        ..AgentConfig::default()
    };
    if let Some(tune) = &wiring.config.tuning.agent {
        tune(&mut config);
    }
    let runtime = Arc::new(
        DockerRuntime::connect(
            &config.docker_host,
            config.docker_tls.as_ref(),
            Duration::from_secs(config.exec_timeout_secs),
        )
        .context("start the agent")?,
    );
    let agent =
        Agent::with_parts(config, runtime, wiring.heartbeats()?).context("start the agent")?;
    // Its own signal: a drained agent stops itself, and the roles beside it go on.
    let shutdown = wiring.shutdown.child();
    Ok(Box::pin(agent.serve(
        listeners.grpc,
        listeners.metrics,
        shutdown,
    )))
}
