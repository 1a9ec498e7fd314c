//! Heartbeats: the agent's [`AgentStatus`] written every interval under `atrium:agent:<id>`
//! with a TTL of three intervals, so an agent that stops writing disappears on its own.
//!
//! [`HeartbeatStore`] has a Redis implementation (every real deployment) and an in-process one
//! (`atrium up` without Redis); one conformance suite (`tests/agent/heartbeat.rs`) runs against
//! both.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use atrium_service_kit::Shutdown;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::core::{AgentState, AgentStatus, SharedCore};
use crate::metrics::AgentMetrics;

pub use self::memory::MemoryHeartbeats;
pub use self::redis::RedisHeartbeats;

/// The key an agent's heartbeat lives under.
pub fn key(agent_id: &str) -> String {
    format!("atrium:agent:{agent_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("heartbeat store unavailable: {0}")]
    Unavailable(String),
    #[error("heartbeat of agent {agent_id} is unreadable: {error}")]
    Corrupt { agent_id: String, error: String },
}

/// Where heartbeats live. Entries expire `ttl` after their last `put`.
#[async_trait]
pub trait HeartbeatStore: Send + Sync + 'static {
    async fn put(&self, status: &AgentStatus, ttl: Duration) -> Result<(), HeartbeatError>;
    /// The live heartbeat of one agent.
    async fn get(&self, agent_id: &str) -> Result<Option<AgentStatus>, HeartbeatError>;
    /// Every live heartbeat, by agent id.
    async fn list(&self) -> Result<Vec<AgentStatus>, HeartbeatError>;
    async fn remove(&self, agent_id: &str) -> Result<(), HeartbeatError>;
}

/// The TTL heartbeats are written with: three intervals.
pub fn ttl(interval: Duration) -> Duration {
    interval * 3
}

/// Writes heartbeats until `shutdown`, and keeps gRPC health in step with the engine:
/// SERVING while it answers, NOT_SERVING (with the reason in the heartbeat) when it does not.
pub async fn run(
    core: SharedCore,
    store: Arc<dyn HeartbeatStore>,
    health: HealthReporter,
    metrics: AgentMetrics,
    shutdown: Shutdown,
) {
    let interval = Duration::from_secs(core.config.heartbeat_interval_secs);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_healthy: Option<bool> = None;
    let mut store_failing = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        let status = core.status().await;
        metrics.observe(&status);
        let healthy = status.state != AgentState::Unhealthy;
        if was_healthy != Some(healthy) {
            let serving = if healthy {
                tracing::info!(agent_id = %status.agent_id, "container engine reachable");
                ServingStatus::Serving
            } else {
                tracing::warn!(agent_id = %status.agent_id, reason = %status.reason, "agent unhealthy");
                ServingStatus::NotServing
            };
            set_health(&health, serving).await;
            was_healthy = Some(healthy);
        }
        match store.put(&status, ttl(interval)).await {
            Ok(()) if store_failing => {
                tracing::info!("heartbeats are being written again");
                store_failing = false;
            }
            Ok(()) => {}
            Err(e) if !store_failing => {
                metrics.heartbeat_failed();
                tracing::warn!(error = %e, "heartbeat write failed");
                store_failing = true;
            }
            Err(_) => metrics.heartbeat_failed(),
        }
    }
}

/// Sets the agent service's and the server's overall health.
pub async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status(crate::SERVICE_NAME, status).await;
    health.set_service_status("", status).await;
}
