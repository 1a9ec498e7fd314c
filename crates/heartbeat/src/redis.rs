//! Heartbeats in Redis: `SET atrium:agent:<id> <encoded AgentStatus> PX <ttl>`. The connection
//! is made on first use and re-made after failures, so an agent starts while Redis is down.
//! `list` is one SCAN walk plus MGETs in batches: a few round trips for a thousand agents.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::{AgentStatus, HeartbeatError, HeartbeatStore, checked, decode, well_formed};

const TIMEOUT: Duration = Duration::from_secs(3);
/// Keys asked for per SCAN step.
const SCAN_COUNT: usize = 1000;
/// Keys read per MGET.
const MGET_BATCH: usize = 500;

pub struct RedisHeartbeats {
    /// `<namespace>:agent:`: every key starts with it.
    prefix: String,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
}

fn unavailable(e: redis::RedisError) -> HeartbeatError {
    HeartbeatError::Unavailable(e.to_string())
}

impl RedisHeartbeats {
    /// Checks the URL; does not connect. Keys are `atrium:agent:<id>`.
    pub fn new(url: &str) -> Result<Self, HeartbeatError> {
        Self::with_namespace(url, crate::DEFAULT_NAMESPACE)
    }

    /// Keys under `<namespace>:agent:<id>`: deployments (and test sandboxes) sharing one Redis
    /// see only their own agents.
    pub fn with_namespace(url: &str, namespace: &str) -> Result<Self, HeartbeatError> {
        let client = redis::Client::open(url)
            .map_err(|e| HeartbeatError::Invalid(format!("redis_url: {e}")))?;
        Ok(Self {
            prefix: format!("{namespace}:agent:"),
            client,
            connection: OnceCell::new(),
        })
    }

    fn key(&self, agent_id: &str) -> String {
        format!("{}{agent_id}", self.prefix)
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

    /// How long the agent's heartbeat has left (`None`: no heartbeat, or no expiry).
    pub async fn time_to_live(&self, agent_id: &str) -> Result<Option<Duration>, HeartbeatError> {
        let mut conn = self.connection().await?;
        let millis: i64 = redis::cmd("PTTL")
            .arg(self.key(agent_id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(millis).ok().map(Duration::from_millis))
    }

    /// Stores `value` as it is under `agent_id`.
    pub(crate) async fn put_value(
        &self,
        agent_id: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), HeartbeatError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.connection().await?;
        redis::cmd("SET")
            .arg(self.key(agent_id))
            .arg(value)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl HeartbeatStore for RedisHeartbeats {
    async fn put(&self, status: &AgentStatus, ttl: Duration) -> Result<(), HeartbeatError> {
        let value = checked(status, ttl)?;
        self.put_value(&status.agent_id, &value, ttl).await
    }

    async fn get(&self, agent_id: &str) -> Result<Option<AgentStatus>, HeartbeatError> {
        let mut conn = self.connection().await?;
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(agent_id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        value.map(|v| decode(agent_id, &v)).transpose()
    }

    async fn list(&self) -> Result<Vec<AgentStatus>, HeartbeatError> {
        let mut conn = self.connection().await?;
        let pattern = format!("{}*", self.prefix);
        // Raw bytes: a key that is not UTF-8 is skipped below instead of failing the walk.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key more than once; sorted keys give statuses sorted by agent id.
        keys.sort();
        keys.dedup();
        let mut found: Vec<(String, Vec<u8>)> = Vec::with_capacity(keys.len());
        for batch in keys.chunks(MGET_BATCH) {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(batch)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            // A key that expired between SCAN and MGET is simply gone.
            for (k, v) in batch.iter().zip(values) {
                let Some(value) = v else { continue };
                match std::str::from_utf8(k) {
                    Ok(k) => {
                        let agent_id = k.strip_prefix(self.prefix.as_str()).unwrap_or(k);
                        found.push((agent_id.to_owned(), value));
                    }
                    Err(_) => tracing::warn!(
                        key = %String::from_utf8_lossy(k),
                        "skipping a heartbeat key that is not UTF-8"
                    ),
                }
            }
        }
        Ok(well_formed(found.iter().map(|(id, v)| (id.as_str(), v.as_slice()))).collect())
    }

    async fn remove(&self, agent_id: &str) -> Result<(), HeartbeatError> {
        let mut conn = self.connection().await?;
        redis::cmd("DEL")
            .arg(self.key(agent_id))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }
}
