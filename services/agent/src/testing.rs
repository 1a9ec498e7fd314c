//! Starts a real agent server on an ephemeral port over a chosen runtime (the in-memory one, or
//! Docker) and heartbeat store, for this crate's tests and for other services' tests that need
//! an agent to talk to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atrium_heartbeat::{HeartbeatStore, MemoryHeartbeats};
use atrium_proto::agent::v1 as pb;
use atrium_proto::agent::v1::agent_service_client::AgentServiceClient;
use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::{Credential, ServiceId};
use atrium_service_kit::telemetry::OutgoingInterceptor;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::core::SharedCore;
use crate::runtime::ContainerRuntime;
use crate::runtime::memory::MemoryRuntime;
use crate::{Agent, AgentConfig};

pub type Client = AgentServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

/// A running agent. Shuts down when dropped.
pub struct TestAgent {
    pub addr: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    pub core: SharedCore,
    pub store: Arc<dyn HeartbeatStore>,
    shutdown: Shutdown,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A configuration for tests: a unique agent id, 1-second heartbeats, short stop grace.
pub fn test_config() -> AgentConfig {
    AgentConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        agent_id: Some(format!(
            "test-agent-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )),
        tls: atrium_service_kit::testing::tls_for(ServiceId::Agent),
        heartbeat_interval_secs: 1,
        stop_timeout_secs: 1,
        drain_deadline_secs: 30,
        shutdown_deadline_secs: 1,
        ..AgentConfig::default()
    }
}

impl TestAgent {
    pub async fn start(
        config: AgentConfig,
        runtime: Arc<dyn ContainerRuntime>,
        store: Arc<dyn HeartbeatStore>,
    ) -> anyhow::Result<Self> {
        let listener = atrium_service_kit::server::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let metrics =
            atrium_service_kit::server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let metrics_addr = metrics.local_addr()?;
        let agent = Agent::with_parts(config, runtime, store)?;
        let core = agent.core();
        let store = agent.heartbeats();
        let shutdown = Shutdown::new();
        let serving = shutdown.clone();
        let task = tokio::spawn(async move { agent.serve(listener, Some(metrics), serving).await });
        Ok(Self {
            addr,
            metrics_addr,
            core,
            store,
            shutdown,
            task: Some(task),
        })
    }

    /// An agent over a fresh in-memory runtime and in-process heartbeats.
    pub async fn in_memory(
        tweak: impl FnOnce(&mut AgentConfig),
    ) -> anyhow::Result<(Self, Arc<MemoryRuntime>)> {
        let mut config = test_config();
        tweak(&mut config);
        let runtime = Arc::new(MemoryRuntime::new());
        let agent = Self::start(config, runtime.clone(), Arc::new(MemoryHeartbeats::new())).await?;
        Ok((agent, runtime))
    }

    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn agent_id(&self) -> &str {
        &self.core.agent_id
    }

    /// A TLS connection without a client certificate (a user's program).
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        atrium_service_kit::testing::user_dialer()
            .connect(&self.endpoint())
            .await
    }

    /// A client that is `service`, proven by its certificate.
    pub async fn as_service(&self, service: ServiceId) -> anyhow::Result<Client> {
        let channel = atrium_service_kit::testing::dialer_as(service)
            .connect(&self.endpoint())
            .await?;
        Ok(AgentServiceClient::with_interceptor(
            channel,
            OutgoingInterceptor::new(None)?,
        ))
    }

    pub async fn client(&self, credential: Option<Credential>) -> anyhow::Result<Client> {
        Ok(AgentServiceClient::with_interceptor(
            self.channel().await?,
            OutgoingInterceptor::new(credential.as_ref())?,
        ))
    }

    /// The session-manager, the agent's one service caller.
    pub async fn service(&self) -> anyhow::Result<Client> {
        self.as_service(ServiceId::SessionManager).await
    }

    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Waits up to `timeout` for the server to exit on its own (after a drain); `None` if it is
    /// still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<anyhow::Result<()>> {
        let task = self.task.as_mut()?;
        match tokio::time::timeout(timeout, task).await {
            Ok(joined) => {
                self.task = None;
                Some(joined.unwrap_or_else(|e| Err(anyhow::anyhow!("agent task failed: {e}"))))
            }
            Err(_) => None,
        }
    }

    /// Shuts the server down and waits for it to finish (its heartbeat task included).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        match self.wait_exit(Duration::from_secs(10)).await {
            Some(result) => result,
            None => Err(anyhow::anyhow!("agent did not stop within 10s")),
        }
    }
}

/// A session spec with sensible defaults for `image`.
pub fn session_spec(session_id: &str, image: &str) -> pb::SessionSpec {
    pb::SessionSpec {
        session_id: session_id.into(),
        user_id: "00000000-0000-4000-8000-000000000001".into(),
        workspace_id: "00000000-0000-4000-8000-0000000000aa".into(),
        image: image.into(),
        cores: 0.5,
        memory_mib: 256,
        ..Default::default()
    }
}

/// A fresh, valid session id.
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
