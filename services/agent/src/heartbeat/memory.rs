//! Heartbeats in this process's memory, for `atrium up` without Redis (the session-manager in
//! the same process reads them through the same store).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{HeartbeatError, HeartbeatStore};
use crate::core::AgentStatus;

#[derive(Default)]
pub struct MemoryHeartbeats {
    entries: Mutex<HashMap<String, (AgentStatus, Instant)>>,
}

impl MemoryHeartbeats {
    pub fn new() -> Self {
        Self::default()
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, (AgentStatus, Instant)>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        entries.retain(|_, (_, expires)| *expires > now);
        entries
    }
}

#[async_trait]
impl HeartbeatStore for MemoryHeartbeats {
    async fn put(&self, status: &AgentStatus, ttl: Duration) -> Result<(), HeartbeatError> {
        self.live().insert(
            status.agent_id.clone(),
            (status.clone(), Instant::now() + ttl),
        );
        Ok(())
    }

    async fn get(&self, agent_id: &str) -> Result<Option<AgentStatus>, HeartbeatError> {
        Ok(self.live().get(agent_id).map(|(s, _)| s.clone()))
    }

    async fn list(&self) -> Result<Vec<AgentStatus>, HeartbeatError> {
        let mut all: Vec<AgentStatus> = self.live().values().map(|(s, _)| s.clone()).collect();
        all.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        Ok(all)
    }

    async fn remove(&self, agent_id: &str) -> Result<(), HeartbeatError> {
        self.live().remove(agent_id);
        Ok(())
    }
}
