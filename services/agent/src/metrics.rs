//! The agent's own metrics, refreshed with every heartbeat (gRPC call metrics come from the kit).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::core::{AgentState, AgentStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Default)]
pub struct AgentMetrics {
    sessions: Gauge,
    state: Family<StateLabels, Gauge>,
    cores_capacity: Gauge<f64, AtomicU64>,
    cores_allocated: Gauge<f64, AtomicU64>,
    memory_capacity_bytes: Gauge,
    memory_allocated_bytes: Gauge,
    heartbeat_failures: Counter,
}

impl AgentMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let agent = registry.sub_registry_with_prefix("agent");
        agent.register(
            "sessions",
            "Session containers on this node, in any state",
            self.sessions.clone(),
        );
        agent.register(
            "state",
            "1 for the agent's current state (active, draining, unhealthy), else 0",
            self.state.clone(),
        );
        agent.register(
            "cores_capacity",
            "CPU cores this node offers to sessions",
            self.cores_capacity.clone(),
        );
        agent.register(
            "cores_allocated",
            "CPU cores the node's session containers are sized for",
            self.cores_allocated.clone(),
        );
        agent.register(
            "memory_capacity_bytes",
            "Memory this node offers to sessions",
            self.memory_capacity_bytes.clone(),
        );
        agent.register(
            "memory_allocated_bytes",
            "Memory the node's session containers are sized for",
            self.memory_allocated_bytes.clone(),
        );
        agent.register(
            "heartbeat_write_failures",
            "Heartbeats that could not be written to the store",
            self.heartbeat_failures.clone(),
        );
    }

    /// Takes the figures of a freshly computed status.
    pub fn observe(&self, status: &AgentStatus) {
        self.sessions.set(i64::from(status.session_count));
        for state in [
            AgentState::Active,
            AgentState::Draining,
            AgentState::Unhealthy,
        ] {
            self.state
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(i64::from(status.state == state));
        }
        self.cores_capacity.set(status.capacity.cores);
        self.cores_allocated.set(status.allocated.cores);
        self.memory_capacity_bytes
            .set(status.capacity.memory_mib.saturating_mul(1 << 20));
        self.memory_allocated_bytes
            .set(status.allocated.memory_mib.saturating_mul(1 << 20));
    }

    pub fn heartbeat_failed(&self) {
        self.heartbeat_failures.inc();
    }
}
