//! The heartbeat loop: every interval the agent writes its status, as the contract of
//! [`atrium_heartbeat`] says (`atrium.agent.v1.AgentStatus` under `atrium:agent:<id>`, with a
//! TTL of three intervals), and keeps its gRPC health in step with the engine. The store itself
//! — Redis or in-process — lives in that crate, shared with the session-manager that reads it.

use std::sync::Arc;
use std::time::Duration;

use atrium_heartbeat::{HeartbeatStore, ttl};
use atrium_proto::agent::v1 as pb;
use atrium_service_kit::Shutdown;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::core::{AgentState, SharedCore};
use crate::metrics::AgentMetrics;

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
        // The heartbeat first, then health: SERVING means the session-manager can place here.
        match store
            .put(&pb::AgentStatus::from(status.clone()), ttl(interval))
            .await
        {
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
    }
}

/// Sets the agent service's and the server's overall health.
pub async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status(crate::SERVICE_NAME, status).await;
    health.set_service_status("", status).await;
}
