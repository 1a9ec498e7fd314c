//! The agent's state: its runtime, identity, drain state and the last node figures it saw, and
//! the status (capacity, allocation, health) it reports — converted to and from
//! `atrium.agent.v1.AgentStatus`, the heartbeat's and GetStatus's wire form, at the bottom.
//! Session operations are in [`crate::sessions`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use atrium_proto::agent::v1 as pb;
use atrium_service_kit::ApiError;
use tokio::sync::watch;

use crate::config::AgentConfig;
use crate::runtime::{ContainerInfo, ContainerRuntime, ContainerState, NodeInfo, RuntimeResult};
use crate::spec::{self, LABEL_AGENT, LABEL_SESSION, SessionId};

pub type SharedCore = Arc<Core>;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Longest a status probe waits for the engine.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Cores, memory and GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    pub cores: f64,
    pub memory_mib: i64,
    pub gpus: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// The state `as_str` names.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Draining, Self::Unhealthy]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// What the agent reports about itself: the heartbeat's value and GetStatus's answer (both as
/// `pb::AgentStatus`).
#[derive(Debug, Clone, PartialEq)]
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
    /// Held from a create's capacity check until its container exists (see
    /// [`Core::admit`]).
    admission: tokio::sync::Mutex<()>,
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
            admission: tokio::sync::Mutex::new(()),
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

    /// Admits new containers one at a time, node-wide: whoever holds the guard checks capacity
    /// and creates its container before the next caller checks, so the next check counts that
    /// container and concurrent creates of different sessions never overcommit the node. Taken
    /// after [`Core::lock_session`], never before it.
    pub(crate) async fn admit(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.admission.lock().await
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

impl From<Resources> for pb::Capacity {
    fn from(r: Resources) -> Self {
        Self {
            cores: r.cores,
            memory_mib: r.memory_mib,
            gpus: r.gpus,
        }
    }
}

impl From<pb::Capacity> for Resources {
    fn from(c: pb::Capacity) -> Self {
        Self {
            cores: c.cores,
            memory_mib: c.memory_mib,
            gpus: c.gpus,
        }
    }
}

impl From<AgentStatus> for pb::AgentStatus {
    fn from(s: AgentStatus) -> Self {
        Self {
            agent_id: s.agent_id,
            zone: s.zone,
            state: s.state.as_str().to_owned(),
            reason: s.reason,
            capacity: Some(s.capacity.into()),
            allocated: Some(s.allocated.into()),
            session_count: s.session_count,
            images: s.images,
            version: s.version,
            address: s.address,
            updated_at: Some(prost_types::Timestamp {
                seconds: s.updated_at.timestamp(),
                nanos: i32::try_from(s.updated_at.timestamp_subsec_nanos()).unwrap_or(0),
            }),
        }
    }
}

/// Reads a status back (from a heartbeat, or another agent's GetStatus), checking the fields
/// the agent always sets.
impl TryFrom<pb::AgentStatus> for AgentStatus {
    type Error = ApiError;

    fn try_from(s: pb::AgentStatus) -> Result<Self, ApiError> {
        let state = AgentState::parse(&s.state).ok_or_else(|| {
            ApiError::invalid(
                "state",
                format!(
                    "{:?} is not one of \"active\", \"draining\", \"unhealthy\"",
                    s.state
                ),
            )
        })?;
        let capacity = s
            .capacity
            .ok_or_else(|| ApiError::invalid("capacity", "required"))?;
        let allocated = s
            .allocated
            .ok_or_else(|| ApiError::invalid("allocated", "required"))?;
        let updated_at = s
            .updated_at
            .ok_or_else(|| ApiError::invalid("updated_at", "required"))?;
        let updated_at = u32::try_from(updated_at.nanos)
            .ok()
            .and_then(|nanos| chrono::DateTime::from_timestamp(updated_at.seconds, nanos))
            .ok_or_else(|| ApiError::invalid("updated_at", "not a valid timestamp"))?;
        Ok(Self {
            agent_id: s.agent_id,
            zone: s.zone,
            state,
            reason: s.reason,
            capacity: capacity.into(),
            allocated: allocated.into(),
            session_count: s.session_count,
            images: s.images,
            version: s.version,
            address: s.address,
            updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn status() -> AgentStatus {
        AgentStatus {
            agent_id: "node-1".into(),
            zone: "zone-a".into(),
            state: AgentState::Draining,
            reason: "draining: taking no new sessions".into(),
            capacity: Resources {
                cores: 8.0,
                memory_mib: 16384,
                gpus: 1,
            },
            allocated: Resources {
                cores: 1.5,
                memory_mib: 2048,
                gpus: 0,
            },
            session_count: 2,
            images: vec!["img:1".into()],
            version: VERSION.into(),
            address: "10.0.0.5:7004".into(),
            updated_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap(),
        }
    }

    #[test]
    fn a_status_round_trips_through_the_wire_form() {
        let wire = pb::AgentStatus::from(status());
        assert_eq!(wire.state, "draining");
        assert_eq!(AgentStatus::try_from(wire).unwrap(), status());
    }

    #[test]
    fn a_wire_status_names_what_it_lacks() {
        let field = |wire: pb::AgentStatus| match AgentStatus::try_from(wire) {
            Err(ApiError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        let wire = pb::AgentStatus::from(status());
        assert_eq!(
            field(pb::AgentStatus {
                state: "asleep".into(),
                ..wire.clone()
            }),
            "state"
        );
        assert_eq!(
            field(pb::AgentStatus {
                capacity: None,
                ..wire.clone()
            }),
            "capacity"
        );
        assert_eq!(
            field(pb::AgentStatus {
                updated_at: None,
                ..wire
            }),
            "updated_at"
        );
    }
}
