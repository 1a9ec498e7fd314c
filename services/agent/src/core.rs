//! The agent's state: its runtime, identity, drain state and the last node figures it saw, and
//! the status (capacity, allocation, health) it reports. Session operations are in
//! [`crate::sessions`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::AgentConfig;
use crate::runtime::{ContainerInfo, ContainerRuntime, ContainerState, NodeInfo, RuntimeResult};
use crate::spec::{self, LABEL_AGENT, LABEL_SESSION, SessionId};

pub type SharedCore = Arc<Core>;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Longest a status probe waits for the engine.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Cores, memory and GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cores: f64,
    pub memory_mib: i64,
    pub gpus: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Active,
    Draining,
    Unhealthy,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// What the agent reports about itself: the heartbeat's value and GetStatus's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub agent_id: String,
    pub zone: String,
    pub state: AgentState,
    /// Why the agent is unhealthy or draining; empty when active.
    pub reason: String,
    pub capacity: Resources,
    /// The sum over every session container the agent holds, whatever its state: each can be
    /// (re)started here without a new placement.
    pub allocated: Resources,
    pub session_count: u32,
    /// Tags of the images on the node.
    pub images: Vec<String>,
    pub version: String,
    /// `host:port` of the agent's gRPC API.
    pub address: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

pub struct Core {
    pub config: AgentConfig,
    pub agent_id: String,
    pub(crate) runtime: Arc<dyn ContainerRuntime>,
    address: OnceLock<String>,
    last_node: Mutex<Option<NodeInfo>>,
    drain: watch::Sender<Option<Instant>>,
    locks: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Core {
    pub fn new(config: AgentConfig, runtime: Arc<dyn ContainerRuntime>) -> Self {
        let agent_id = config.resolved_agent_id();
        Self {
            config,
            agent_id,
            runtime,
            address: OnceLock::new(),
            last_node: Mutex::new(None),
            drain: watch::Sender::new(None),
            locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn runtime(&self) -> &Arc<dyn ContainerRuntime> {
        &self.runtime
    }

    /// Records where the gRPC API listens (once, at serve time).
    pub fn set_address(&self, address: String) {
        let _ = self.address.set(address);
    }

    pub fn address(&self) -> String {
        self.address
            .get()
            .cloned()
            .unwrap_or_else(|| self.config.advertised_address(self.config.listen))
    }

    /// Serialises operations on one session's container.
    pub(crate) async fn lock_session(&self, id: &SessionId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(id.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Starts draining (or keeps the earlier deadline of a drain under way). Returns the
    /// deadline.
    pub fn start_drain(&self, deadline: Option<Duration>) -> Instant {
        let wanted = Instant::now()
            + deadline.unwrap_or(Duration::from_secs(self.config.drain_deadline_secs));
        let mut result = wanted;
        self.drain.send_modify(|current| {
            result = match *current {
                Some(earlier) if earlier <= wanted => earlier,
                _ => wanted,
            };
            *current = Some(result);
        });
        tracing::info!(deadline_in = ?result.saturating_duration_since(Instant::now()), "draining");
        result
    }

    pub fn drain_deadline(&self) -> Option<Instant> {
        *self.drain.borrow()
    }

    pub fn is_draining(&self) -> bool {
        self.drain_deadline().is_some()
    }

    /// Resolves once a drain has started.
    pub async fn drain_started(&self) -> Instant {
        let mut rx = self.drain.subscribe();
        loop {
            if let Some(deadline) = *rx.borrow_and_update() {
                return deadline;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`; unreachable while `self` does.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The session containers this agent holds (by its label), in any state.
    pub async fn session_containers(&self) -> RuntimeResult<Vec<ContainerInfo>> {
        let found = self.runtime.list(&[(LABEL_AGENT, &self.agent_id)]).await?;
        Ok(found
            .into_iter()
            .filter(|c| c.labels.contains_key(LABEL_SESSION))
            .collect())
    }

    /// The node's capacity: configured overrides, else what the engine reports (or last
    /// reported), GPUs counted from `/dev/nvidia<N>`.
    pub fn capacity(&self) -> Resources {
        let node = self
            .last_node
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let overrides = &self.config.capacity;
        Resources {
            cores: overrides
                .cores
                .unwrap_or_else(|| node.as_ref().map_or(0.0, |n| n.cpus)),
            memory_mib: overrides
                .memory_mib
                .unwrap_or_else(|| node.as_ref().map_or(0, |n| n.memory_bytes >> 20)),
            gpus: overrides.gpus.unwrap_or_else(count_gpus),
        }
    }

    /// The capacity, asking the engine first if it has not answered yet.
    pub async fn current_capacity(&self) -> Result<Resources, String> {
        let known = self
            .last_node
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if !known {
            self.probe().await?;
        }
        Ok(self.capacity())
    }

    /// Asks the engine for the node's figures; `Err(reason)` when it cannot be reached.
    pub async fn probe(&self) -> Result<NodeInfo, String> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.runtime.node_info()).await {
            Ok(Ok(node)) => {
                *self.last_node.lock().unwrap_or_else(|p| p.into_inner()) = Some(node.clone());
                Ok(node)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the container engine did not answer within {PROBE_TIMEOUT:?}"
            )),
        }
    }

    /// The agent's status, as heartbeats carry it.
    pub async fn status(&self) -> AgentStatus {
        let mut reason = String::new();
        let mut allocated = Resources::default();
        let mut session_count = 0;
        let mut images = Vec::new();
        let healthy = match self.probe().await {
            Ok(_) => match self.held().await {
                Ok((held_allocated, count, held_images)) => {
                    allocated = held_allocated;
                    session_count = count;
                    images = held_images;
                    true
                }
                Err(e) => {
                    reason = e.to_string();
                    false
                }
            },
            Err(e) => {
                reason = e;
                false
            }
        };
        let state = if !healthy {
            AgentState::Unhealthy
        } else if self.is_draining() {
            reason = "draining: taking no new sessions".into();
            AgentState::Draining
        } else {
            AgentState::Active
        };
        AgentStatus {
            agent_id: self.agent_id.clone(),
            zone: self.config.zone.clone(),
            state,
            reason,
            capacity: self.capacity(),
            allocated,
            session_count,
            images,
            version: VERSION.to_owned(),
            address: self.address(),
            updated_at: chrono::Utc::now(),
        }
    }

    /// What the agent's containers hold, how many there are, and the images on the node.
    async fn held(&self) -> RuntimeResult<(Resources, u32, Vec<String>)> {
        let containers = self.session_containers().await?;
        let allocated = allocated(&containers);
        let mut images: Vec<String> = self
            .runtime
            .list_images()
            .await?
            .into_iter()
            .flat_map(|i| {
                if i.tags.is_empty() {
                    vec![i.id]
                } else {
                    i.tags
                }
            })
            .collect();
        images.sort();
        images.dedup();
        Ok((allocated, containers.len() as u32, images))
    }
}

/// The resources of the containers that count towards allocation (all but those being
/// removed or dead).
pub fn allocated(containers: &[ContainerInfo]) -> Resources {
    containers
        .iter()
        .filter(|c| !matches!(c.state, ContainerState::Removing | ContainerState::Dead))
        .map(|c| spec::resources_from_labels(&c.labels))
        .fold(Resources::default(), |acc, (cores, memory_mib, gpus)| {
            Resources {
                cores: acc.cores + cores,
                memory_mib: acc.memory_mib + memory_mib,
                gpus: acc.gpus + gpus,
            }
        })
}

/// NVIDIA GPUs visible to this process (`/dev/nvidia0`, `/dev/nvidia1`, …).
fn count_gpus() -> u32 {
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("nvidia"))
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .count() as u32
}
