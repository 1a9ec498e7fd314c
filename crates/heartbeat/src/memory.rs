//! Heartbeats in this process's memory, for `atrium up` without Redis: the agent and the
//! session-manager in the same process share one store. Values are kept encoded, exactly as
//! Redis holds them, so both implementations read and write the same bytes.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{AgentStatus, HeartbeatError, HeartbeatStore, checked, decode, well_formed};

/// Agent id → (encoded status, expiry).
type Entries = BTreeMap<String, (Vec<u8>, Instant)>;

#[derive(Default)]
pub struct MemoryHeartbeats {
    entries: Mutex<Entries>,
}

impl MemoryHeartbeats {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries that have not expired (expired ones are dropped on the way).
    fn live(&self) -> MutexGuard<'_, Entries> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        entries.retain(|_, (_, expires)| *expires > now);
        entries
    }

    /// Stores `value` as it is under `agent_id`.
    pub(crate) fn put_value(&self, agent_id: &str, value: Vec<u8>, ttl: Duration) {
        self.live()
            .insert(agent_id.to_owned(), (value, Instant::now() + ttl));
    }
}

#[async_trait]
impl HeartbeatStore for MemoryHeartbeats {
    async fn put(&self, status: &AgentStatus, ttl: Duration) -> Result<(), HeartbeatError> {
        let value = checked(status, ttl)?;
        self.put_value(&status.agent_id, value, ttl);
        Ok(())
    }

    async fn get(&self, agent_id: &str) -> Result<Option<AgentStatus>, HeartbeatError> {
        let value = self.live().get(agent_id).map(|(v, _)| v.clone());
        value.map(|v| decode(agent_id, &v)).transpose()
    }

    async fn list(&self) -> Result<Vec<AgentStatus>, HeartbeatError> {
        let entries = self.live();
        // A BTreeMap iterates by agent id: the answer is sorted.
        Ok(well_formed(
            entries
                .iter()
                .map(|(id, (v, _))| (id.as_str(), v.as_slice())),
        )
        .collect())
    }

    async fn remove(&self, agent_id: &str) -> Result<(), HeartbeatError> {
        self.live().remove(agent_id);
        Ok(())
    }
}
