//! Keepalive deadlines: a sorted set of session ids scored by the instant (Unix ms) each session
//! ends unless kept alive. A keepalive is one round trip; the reaper claims due entries
//! atomically, moving each into an in-flight set with a lease, so with several replicas every
//! expiry is acted on by exactly one of them — and a replica that dies holding a claim has it
//! taken over when the lease runs out.
//!
//! Redis in every real deployment; in-process for `atrium up` without Redis. One conformance
//! suite (`tests/deadlines.rs`) runs against both.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
pub enum DeadlineError {
    #[error("deadline store unavailable: {0}")]
    Unavailable(String),
}

/// A due entry: the session and the deadline it had (0 when reclaimed from a dead replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub session_id: String,
    pub deadline_ms: i64,
}

#[async_trait]
pub trait Deadlines: Send + Sync + 'static {
    /// Sets or replaces the session's deadline.
    async fn set(&self, session_id: &str, at_ms: i64) -> Result<(), DeadlineError>;
    /// Moves an existing deadline (one round trip); `false` when the session has none.
    async fn extend(&self, session_id: &str, at_ms: i64) -> Result<bool, DeadlineError>;
    async fn get(&self, session_id: &str) -> Result<Option<i64>, DeadlineError>;
    /// The deadlines of several sessions in one round trip, in order.
    async fn get_many(&self, session_ids: &[String]) -> Result<Vec<Option<i64>>, DeadlineError>;
    /// Forgets the session (deadline and any claim).
    async fn remove(&self, session_id: &str) -> Result<(), DeadlineError>;
    /// Claims up to `limit` entries due at `now_ms`, and claims whose lease ran out; each is
    /// held for `lease` until [`Deadlines::done`].
    async fn claim_due(
        &self,
        now_ms: i64,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Due>, DeadlineError>;
    /// The claim was acted on.
    async fn done(&self, session_id: &str) -> Result<(), DeadlineError>;
    /// False when the store lost what was written (a Redis restarted without persistence):
    /// the owner then rebuilds the deadlines from its database and calls `mark_intact`.
    async fn intact(&self) -> Result<bool, DeadlineError>;
    async fn mark_intact(&self) -> Result<(), DeadlineError>;
}

/// The keys under a namespace (`atrium` by default; one per deployment sharing a Redis).
#[derive(Debug, Clone)]
struct Keys {
    deadlines: String,
    reaping: String,
    marker: String,
}

impl Keys {
    fn new(namespace: &str) -> Self {
        Self {
            deadlines: format!("{namespace}:sessions:deadlines"),
            reaping: format!("{namespace}:sessions:reaping"),
            marker: format!("{namespace}:sessions:intact"),
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(2);

const EXTEND: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0";

const CLAIM: &str = r"
local out = {}
local limit = tonumber(ARGV[2])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit)
for _, id in ipairs(stale) do
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  table.insert(out, id)
  table.insert(out, '0')
end
local left = limit - #stale
if left > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, left)
  for i = 1, #due, 2 do
    redis.call('ZREM', KEYS[1], due[i])
    redis.call('ZADD', KEYS[2], ARGV[3], due[i])
    table.insert(out, due[i])
    table.insert(out, due[i + 1])
  end
end
return out";

pub struct RedisDeadlines {
    keys: Keys,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    extend: redis::Script,
    claim: redis::Script,
}

fn unavailable(e: redis::RedisError) -> DeadlineError {
    DeadlineError::Unavailable(e.to_string())
}

impl RedisDeadlines {
    /// Checks the URL; connects on first use (so the service starts while Redis is down).
    /// Keys live under `namespace` (`<namespace>:sessions:*`).
    pub fn new(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
        Ok(Self {
            keys: Keys::new(namespace),
            client,
            connection: OnceCell::new(),
            extend: redis::Script::new(EXTEND),
            claim: redis::Script::new(CLAIM),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, DeadlineError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(unavailable)
    }
}

#[async_trait]
impl Deadlines for RedisDeadlines {
    async fn set(&self, session_id: &str, at_ms: i64) -> Result<(), DeadlineError> {
        let mut c = self.conn().await?;
        redis::cmd("ZADD")
            .arg(&self.keys.deadlines)
            .arg(at_ms)
            .arg(session_id)
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn extend(&self, session_id: &str, at_ms: i64) -> Result<bool, DeadlineError> {
        let mut c = self.conn().await?;
        let moved: i64 = self
            .extend
            .key(&self.keys.deadlines)
            .arg(at_ms)
            .arg(session_id)
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(moved == 1)
    }

    async fn get(&self, session_id: &str) -> Result<Option<i64>, DeadlineError> {
        let mut c = self.conn().await?;
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(&self.keys.deadlines)
            .arg(session_id)
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(score.map(|s| s as i64))
    }

    async fn get_many(&self, session_ids: &[String]) -> Result<Vec<Option<i64>>, DeadlineError> {
        if session_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
            .arg(&self.keys.deadlines)
            .arg(session_ids)
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(scores.into_iter().map(|s| s.map(|s| s as i64)).collect())
    }

    async fn remove(&self, session_id: &str) -> Result<(), DeadlineError> {
        let mut c = self.conn().await?;
        redis::pipe()
            .cmd("ZREM")
            .arg(&self.keys.deadlines)
            .arg(session_id)
            .ignore()
            .cmd("ZREM")
            .arg(&self.keys.reaping)
            .arg(session_id)
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Due>, DeadlineError> {
        let mut c = self.conn().await?;
        let lease_until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let flat: Vec<String> = self
            .claim
            .key(&self.keys.deadlines)
            .key(&self.keys.reaping)
            .arg(now_ms)
            .arg(limit)
            .arg(lease_until)
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(flat
            .chunks(2)
            .filter_map(|pair| match pair {
                [id, score] => Some(Due {
                    session_id: id.clone(),
                    deadline_ms: score.parse::<f64>().map(|s| s as i64).unwrap_or(0),
                }),
                _ => None,
            })
            .collect())
    }

    async fn done(&self, session_id: &str) -> Result<(), DeadlineError> {
        let mut c = self.conn().await?;
        redis::cmd("ZREM")
            .arg(&self.keys.reaping)
            .arg(session_id)
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn intact(&self) -> Result<bool, DeadlineError> {
        let mut c = self.conn().await?;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&self.keys.marker)
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(exists == 1)
    }

    async fn mark_intact(&self) -> Result<(), DeadlineError> {
        let mut c = self.conn().await?;
        redis::cmd("SET")
            .arg(&self.keys.marker)
            .arg(chrono::Utc::now().to_rfc3339())
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }
}

/// In-process deadlines, for `atrium up` without Redis (one replica).
#[derive(Default)]
pub struct MemoryDeadlines {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    by_time: BTreeSet<(i64, String)>,
    by_id: HashMap<String, i64>,
    reaping: HashMap<String, i64>,
    intact: bool,
}

impl MemoryInner {
    fn put(&mut self, id: &str, at: i64) {
        if let Some(old) = self.by_id.insert(id.to_owned(), at) {
            self.by_time.remove(&(old, id.to_owned()));
        }
        self.by_time.insert((at, id.to_owned()));
    }
}

impl MemoryDeadlines {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Deadlines for MemoryDeadlines {
    async fn set(&self, session_id: &str, at_ms: i64) -> Result<(), DeadlineError> {
        self.lock().put(session_id, at_ms);
        Ok(())
    }

    async fn extend(&self, session_id: &str, at_ms: i64) -> Result<bool, DeadlineError> {
        let mut inner = self.lock();
        if inner.by_id.contains_key(session_id) {
            inner.put(session_id, at_ms);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn get(&self, session_id: &str) -> Result<Option<i64>, DeadlineError> {
        Ok(self.lock().by_id.get(session_id).copied())
    }

    async fn get_many(&self, session_ids: &[String]) -> Result<Vec<Option<i64>>, DeadlineError> {
        let inner = self.lock();
        Ok(session_ids
            .iter()
            .map(|id| inner.by_id.get(id).copied())
            .collect())
    }

    async fn remove(&self, session_id: &str) -> Result<(), DeadlineError> {
        let mut inner = self.lock();
        if let Some(at) = inner.by_id.remove(session_id) {
            inner.by_time.remove(&(at, session_id.to_owned()));
        }
        inner.reaping.remove(session_id);
        Ok(())
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Due>, DeadlineError> {
        let lease_until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut inner = self.lock();
        let mut out = Vec::new();
        let mut stale: Vec<String> = inner
            .reaping
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        stale.sort();
        stale.truncate(limit);
        for id in stale {
            inner.reaping.insert(id.clone(), lease_until);
            out.push(Due {
                session_id: id,
                deadline_ms: 0,
            });
        }
        while out.len() < limit {
            let Some((at, id)) = inner.by_time.first().cloned() else {
                break;
            };
            if at > now_ms {
                break;
            }
            inner.by_time.remove(&(at, id.clone()));
            inner.by_id.remove(&id);
            inner.reaping.insert(id.clone(), lease_until);
            out.push(Due {
                session_id: id,
                deadline_ms: at,
            });
        }
        Ok(out)
    }

    async fn done(&self, session_id: &str) -> Result<(), DeadlineError> {
        self.lock().reaping.remove(session_id);
        Ok(())
    }

    async fn intact(&self) -> Result<bool, DeadlineError> {
        Ok(self.lock().intact)
    }

    async fn mark_intact(&self) -> Result<(), DeadlineError> {
        self.lock().intact = true;
        Ok(())
    }
}

/// The conformance suite every implementation passes (run from `tests/deadlines.rs`). Each
/// check uses ids under `prefix`, so runs against one Redis do not collide — except the
/// claim checks, which assume nothing else is due: run it on a fresh store or a fresh Redis
/// database.
#[cfg(any(test, feature = "test-util"))]
pub mod conformance {
    use super::*;

    pub async fn run(store: &dyn Deadlines, prefix: &str) {
        let id = |n: &str| format!("{prefix}-{n}");
        let now = 1_000_000_i64;

        // set / get / extend / remove
        assert_eq!(store.get(&id("a")).await.expect("get"), None);
        assert!(
            !store.extend(&id("a"), now).await.expect("extend"),
            "extend of nothing"
        );
        store.set(&id("a"), now + 500).await.expect("set");
        assert_eq!(store.get(&id("a")).await.expect("get"), Some(now + 500));
        assert!(store.extend(&id("a"), now + 900).await.expect("extend"));
        assert_eq!(store.get(&id("a")).await.expect("get"), Some(now + 900));
        assert_eq!(
            store
                .get_many(&[id("a"), id("none")])
                .await
                .expect("get many"),
            vec![Some(now + 900), None]
        );
        store.remove(&id("a")).await.expect("remove");
        assert_eq!(store.get(&id("a")).await.expect("get"), None);

        // claims take only what is due, each once, oldest first
        store.set(&id("late"), now + 10_000).await.expect("set");
        store.set(&id("due1"), now - 20).await.expect("set");
        store.set(&id("due2"), now - 10).await.expect("set");
        let lease = Duration::from_secs(60);
        let first = store.claim_due(now, 1, lease).await.expect("claim");
        assert_eq!(
            first,
            vec![Due {
                session_id: id("due1"),
                deadline_ms: now - 20
            }]
        );
        let second = store.claim_due(now, 10, lease).await.expect("claim");
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].session_id, id("due2"));
        assert!(
            store
                .claim_due(now, 10, lease)
                .await
                .expect("claim")
                .is_empty()
        );
        // A claimed entry is no longer extendable: it is being acted on.
        assert!(!store.extend(&id("due1"), now + 5000).await.expect("extend"));
        // Done claims are gone; an abandoned one comes back after its lease.
        store.done(&id("due1")).await.expect("done");
        let later = now + 61_000;
        let retaken = store.claim_due(later, 10, lease).await.expect("claim");
        let ids: Vec<&str> = retaken.iter().map(|d| d.session_id.as_str()).collect();
        assert!(ids.contains(&id("due2").as_str()), "{ids:?}");
        assert!(!ids.contains(&id("due1").as_str()), "{ids:?}");
        assert!(ids.contains(&id("late").as_str()), "{ids:?}");
        for d in &retaken {
            store.done(&d.session_id).await.expect("done");
        }
        assert!(
            store
                .claim_due(later + 100_000, 10, lease)
                .await
                .expect("claim")
                .is_empty()
        );

        // the intact marker
        store.mark_intact().await.expect("mark");
        assert!(store.intact().await.expect("intact"));
    }
}
