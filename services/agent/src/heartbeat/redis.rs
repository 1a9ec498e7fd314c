//! Heartbeats in Redis: `SET atrium:agent:<id> <json> EX <ttl>`. The connection is made on
//! first use and re-made after failures, so an agent starts while Redis is down.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{HeartbeatError, HeartbeatStore, key};
use crate::core::AgentStatus;

const TIMEOUT: Duration = Duration::from_secs(3);

pub struct RedisHeartbeats {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
}

fn unavailable(e: redis::RedisError) -> HeartbeatError {
    HeartbeatError::Unavailable(e.to_string())
}

impl RedisHeartbeats {
    /// Checks the URL; does not connect.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
        Ok(Self {
            client,
            connection: OnceCell::new(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, HeartbeatError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2);
        self.connection
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(unavailable)
    }

    /// Seconds the agent's heartbeat has left (`None`: no heartbeat, or no expiry).
    pub async fn ttl_secs(&self, agent_id: &str) -> Result<Option<i64>, HeartbeatError> {
        let mut conn = self.connection().await?;
        let ttl: i64 = redis::cmd("TTL")
            .arg(key(agent_id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok((ttl >= 0).then_some(ttl))
    }
}

fn decode(agent_id: &str, raw: &str) -> Result<AgentStatus, HeartbeatError> {
    serde_json::from_str(raw).map_err(|e| HeartbeatError::Corrupt {
        agent_id: agent_id.to_owned(),
        error: e.to_string(),
    })
}

#[async_trait]
impl HeartbeatStore for RedisHeartbeats {
    async fn put(&self, status: &AgentStatus, ttl: Duration) -> Result<(), HeartbeatError> {
        let value = serde_json::to_string(status).map_err(|e| HeartbeatError::Corrupt {
            agent_id: status.agent_id.clone(),
            error: e.to_string(),
        })?;
        let secs = ttl.as_secs_f64().ceil().max(1.0) as u64;
        let mut conn = self.connection().await?;
        redis::cmd("SET")
            .arg(key(&status.agent_id))
            .arg(value)
            .arg("EX")
            .arg(secs)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn get(&self, agent_id: &str) -> Result<Option<AgentStatus>, HeartbeatError> {
        let mut conn = self.connection().await?;
        let raw: Option<String> = redis::cmd("GET")
            .arg(key(agent_id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        raw.map(|r| decode(agent_id, &r)).transpose()
    }

    async fn list(&self) -> Result<Vec<AgentStatus>, HeartbeatError> {
        let mut conn = self.connection().await?;
        let pattern = key("*");
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(200)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut all = Vec::new();
        for (k, v) in keys.iter().zip(values) {
            // A key that expired between SCAN and MGET is simply gone.
            if let Some(raw) = v {
                let agent_id = k.trim_start_matches(&key(""));
                match decode(agent_id, &raw) {
                    Ok(status) => all.push(status),
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable heartbeat"),
                }
            }
        }
        Ok(all)
    }

    async fn remove(&self, agent_id: &str) -> Result<(), HeartbeatError> {
        let mut conn = self.connection().await?;
        redis::cmd("DEL")
            .arg(key(agent_id))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }
}
