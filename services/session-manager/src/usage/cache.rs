//! [`Usage`]: billing-usage's answers per user, reused for `usage.check_cache_ms` and read as
//! spent from the moment they said the allowance runs out; the outage memory (one attempt per
//! `check_cache_ms`, logged once); and the refresher that keeps keepalives' answers fresh.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrium_service_kit::Shutdown;
use atrium_service_kit::client::Dialer;
use chrono::Utc;
use futures::StreamExt as _;
use tokio::sync::mpsc;

use super::{GrpcUsage, Unavailable, UsageGate, UsageStatus, UsageVerdict};
use crate::config::{UnavailablePolicy, UsageConfig};

/// The oldest answer a keepalive still acts on (while a fresher one is being fetched).
pub const KEEPALIVE_STALE_LIMIT: Duration = Duration::from_secs(300);
/// Users whose answer is being refreshed at once, at most.
const REFRESH_CONCURRENCY: usize = 16;

struct Cached {
    verdict: UsageVerdict,
    at: Instant,
    /// When the answer said the allowance runs out, on this process's clock.
    runs_out: Option<Instant>,
}

impl Cached {
    fn new(verdict: UsageVerdict) -> Self {
        let at = Instant::now();
        // billing-usage's own clock says how long is left: no skew between the two machines.
        let runs_out = verdict.exhausted_at.filter(|_| verdict.allowed).map(|end| {
            let left = end - verdict.checked_at.unwrap_or_else(Utc::now);
            at + left.to_std().unwrap_or(Duration::ZERO)
        });
        Self {
            verdict,
            at,
            runs_out,
        }
    }

    /// The answer as it reads now.
    fn read(&self) -> UsageVerdict {
        match self.runs_out {
            Some(t) if Instant::now() >= t => self.verdict.run_out(),
            _ => self.verdict.clone(),
        }
    }
}

/// Admission's, keepalives' and ExplainSession's view of billing-usage: the gate, its answers
/// reused per user, and whether it is failing (remembered as long as an answer is, so an
/// outage costs one attempt per `check_cache_ms`, logged once).
pub struct Usage {
    gate: Option<Arc<dyn UsageGate>>,
    when_unavailable: UnavailablePolicy,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    failing: Mutex<Option<(Instant, Unavailable)>>,
    refresh_tx: mpsc::Sender<String>,
    refresh_rx: Mutex<Option<mpsc::Receiver<String>>>,
    refreshing: Mutex<HashSet<String>>,
}

impl Usage {
    /// No usage service: nobody's allowance is ever spent.
    pub fn disabled() -> Self {
        Self::build(None, &UsageConfig::default())
    }

    pub fn new(gate: Arc<dyn UsageGate>, config: &UsageConfig) -> Self {
        Self::build(Some(gate), config)
    }

    /// The gRPC gate when `usage.endpoint` is set, else [`Usage::disabled`].
    pub fn from_config(config: &UsageConfig, dialer: &Dialer) -> anyhow::Result<Self> {
        match &config.endpoint {
            Some(endpoint) => Ok(Self::new(
                Arc::new(GrpcUsage::new(endpoint, dialer)?),
                config,
            )),
            None => Ok(Self::disabled()),
        }
    }

    fn build(gate: Option<Arc<dyn UsageGate>>, config: &UsageConfig) -> Self {
        let (refresh_tx, refresh_rx) = mpsc::channel(4096);
        Self {
            gate,
            when_unavailable: config.when_unavailable,
            ttl: Duration::from_millis(config.check_cache_ms),
            cache: Mutex::new(HashMap::new()),
            failing: Mutex::new(None),
            refresh_tx,
            refresh_rx: Mutex::new(Some(refresh_rx)),
            refreshing: Mutex::new(HashSet::new()),
        }
    }

    /// The gate, when a usage service is configured (the outbox delivers through it).
    pub fn gate(&self) -> Option<Arc<dyn UsageGate>> {
        self.gate.clone()
    }

    pub fn when_unavailable(&self) -> UnavailablePolicy {
        self.when_unavailable
    }

    /// The user's allowance, from an answer at most `check_cache_ms` old (else asked now).
    pub async fn check(&self, user_id: &str) -> UsageStatus {
        let Some(gate) = &self.gate else {
            return UsageStatus::NotConfigured;
        };
        if let Some(v) = self.cached(user_id, self.ttl) {
            return UsageStatus::Checked(v);
        }
        self.ask(gate.as_ref(), user_id).await
    }

    /// For keepalives: a fresh answer (within `check_cache_ms`); else an older "spent" one (up
    /// to [`KEEPALIVE_STALE_LIMIT`]) with a refresh queued behind it; else billing-usage is
    /// asked now. A burst of keepalives so costs billing-usage one call per user per
    /// `check_cache_ms`, and an out-of-date "allowed" never extends a session.
    pub async fn check_for_keepalive(&self, user_id: &str) -> UsageStatus {
        let Some(gate) = &self.gate else {
            return UsageStatus::NotConfigured;
        };
        if let Some(v) = self.cached(user_id, self.ttl) {
            return UsageStatus::Checked(v);
        }
        // An older answer serves only when it says spent (a spent allowance stays spent until
        // its window ends; a fresh one is fetched behind it): an "allowed" answer may be out
        // of date by as long as it is old, and would extend a session past its allowance.
        if let Some(v) = self.cached(user_id, KEEPALIVE_STALE_LIMIT)
            && !v.allowed
        {
            self.queue_refresh(user_id);
            return UsageStatus::Checked(v);
        }
        self.ask(gate.as_ref(), user_id).await
    }

    fn cached(&self, user_id: &str, max_age: Duration) -> Option<UsageVerdict> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            .filter(|c| c.at.elapsed() < max_age)
            .map(Cached::read)
    }

    fn queue_refresh(&self, user_id: &str) {
        let new = self
            .refreshing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user_id.to_owned());
        if new && self.refresh_tx.try_send(user_id.to_owned()).is_err() {
            // Queue full: the next keepalive asks again.
            self.refreshing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(user_id);
        }
    }

    /// Asks billing-usage (unless it failed less than `check_cache_ms` ago) and remembers.
    async fn ask(&self, gate: &dyn UsageGate, user_id: &str) -> UsageStatus {
        if let Some((at, e)) = self
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < self.ttl
        {
            return UsageStatus::Unavailable(e.clone());
        }
        match gate.check(user_id).await {
            Ok(verdict) => {
                let was_failing = self
                    .failing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .is_some();
                if was_failing {
                    tracing::info!("billing-usage answers usage checks again");
                }
                let cached = Cached::new(verdict);
                let read = cached.read();
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() > 100_000 {
                    cache.clear();
                }
                cache.insert(user_id.to_owned(), cached);
                UsageStatus::Checked(read)
            }
            Err(e) => {
                let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
                if failing.is_none() {
                    tracing::warn!(error = %e, when_unavailable = self.when_unavailable.as_str(), "usage cannot be checked: admission follows usage.when_unavailable, keepalives extend");
                }
                *failing = Some((Instant::now(), e.clone()));
                UsageStatus::Unavailable(e)
            }
        }
    }

    /// The named task that refreshes answers keepalives found old. Returns on `stop`.
    pub async fn run_refresher(&self, stop: Shutdown) -> anyhow::Result<()> {
        let Some(gate) = self.gate.clone() else {
            return Ok(());
        };
        let Some(rx) = self
            .refresh_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            anyhow::bail!("the usage refresher runs once");
        };
        let users = tokio_stream::wrappers::ReceiverStream::new(rx).take_until(stop.wait());
        users
            .for_each_concurrent(REFRESH_CONCURRENCY, |user_id| {
                let gate = gate.clone();
                async move {
                    self.ask(gate.as_ref(), &user_id).await;
                    self.refreshing
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&user_id);
                }
            })
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::usage::memory::{MemoryUsage, weekly};

    fn config(ttl_ms: u64) -> UsageConfig {
        UsageConfig {
            endpoint: Some("http://billing.invalid:1".into()),
            check_cache_ms: ttl_ms,
            ..UsageConfig::default()
        }
    }

    fn window_end() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn answers_are_reused_for_check_cache_ms() {
        let gate = Arc::new(MemoryUsage::new());
        let usage = Usage::new(gate.clone(), &config(60_000));
        gate.set("u1", weekly("G", 2.0, 2.0, window_end()));
        assert!(usage.check("u1").await.spent().is_some());
        assert!(usage.check("u1").await.spent().is_some());
        assert_eq!(
            gate.checks(),
            1,
            "the second check is answered from the cache"
        );
        // Another user is asked for.
        assert_eq!(usage.check("u2").await.spent(), None);
        assert_eq!(gate.checks(), 2);
        // With no cache, every check asks.
        let fresh = Usage::new(gate.clone(), &config(0));
        fresh.check("u1").await;
        fresh.check("u1").await;
        assert_eq!(gate.checks(), 4);
    }

    #[tokio::test]
    async fn a_cached_answer_reads_spent_from_its_exhausted_at() {
        let gate = Arc::new(MemoryUsage::new());
        let usage = Usage::new(gate.clone(), &config(60_000));
        let now = Utc::now();
        gate.set(
            "u1",
            UsageVerdict {
                exhausted_at: Some(now + chrono::Duration::milliseconds(300)),
                checked_at: Some(now),
                ..weekly("G", 2.0, 1.9, window_end())
            },
        );
        let first = usage.check("u1").await;
        assert_eq!(first.spent(), None, "{first:?}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let later = usage.check("u1").await;
        let reason = later.spent().expect("spent at exhausted_at");
        assert!(
            reason.starts_with("usage limit spent: 2.00 of 2 hours used this week"),
            "{reason}"
        );
        assert_eq!(gate.checks(), 1, "it turned spent without asking again");
    }

    #[tokio::test]
    async fn exhausted_at_is_read_on_billings_clock() {
        // billing-usage's clock runs an hour ahead: 300 ms left by its clock is 300 ms here.
        let gate = Arc::new(MemoryUsage::new());
        let usage = Usage::new(gate.clone(), &config(60_000));
        let theirs = Utc::now() + chrono::Duration::hours(1);
        gate.set(
            "u1",
            UsageVerdict {
                exhausted_at: Some(theirs + chrono::Duration::milliseconds(300)),
                checked_at: Some(theirs),
                ..weekly("G", 2.0, 1.9, window_end())
            },
        );
        assert_eq!(usage.check("u1").await.spent(), None);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(usage.check("u1").await.spent().is_some());
    }

    #[tokio::test]
    async fn an_outage_is_remembered_and_keepalives_use_the_last_answer() {
        let gate = Arc::new(MemoryUsage::new());
        let usage = Arc::new(Usage::new(gate.clone(), &config(50)));
        gate.set("u1", weekly("G", 2.0, 2.0, window_end()));
        assert!(usage.check("u1").await.spent().is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        gate.set_down(true);
        // Admission asks again and finds billing-usage away; a second check within
        // check_cache_ms does not knock again.
        assert!(matches!(
            usage.check("u1").await,
            UsageStatus::Unavailable(_)
        ));
        assert!(matches!(
            usage.check("u1").await,
            UsageStatus::Unavailable(_)
        ));
        assert_eq!(gate.checks(), 2);
        // A keepalive acts on the last answer it has and queues a refresh.
        assert!(usage.check_for_keepalive("u1").await.spent().is_some());
        // A user with no answer at all: unavailable (keepalives then extend).
        assert!(matches!(
            usage.check_for_keepalive("u2").await,
            UsageStatus::Unavailable(_)
        ));
        // The refresher brings the new answer once billing-usage is back.
        gate.set_down(false);
        gate.set("u1", weekly("G", 4.0, 2.0, window_end()));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let stop = Shutdown::new();
        let refresher = {
            let usage = usage.clone();
            let stop = stop.clone();
            tokio::spawn(async move { usage.run_refresher(stop).await })
        };
        assert!(usage.check_for_keepalive("u1").await.spent().is_some());
        let deadline = Instant::now() + Duration::from_secs(5);
        while usage
            .cached("u1", Duration::from_secs(60))
            .is_some_and(|v| !v.allowed)
        {
            assert!(Instant::now() < deadline, "the refresh never landed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(usage.check_for_keepalive("u1").await.spent(), None);
        stop.trigger();
        refresher.await.expect("join").expect("refresher");
    }

    #[tokio::test]
    async fn an_old_allowed_answer_is_asked_again_before_a_keepalive_extends() {
        let gate = Arc::new(MemoryUsage::new());
        let usage = Usage::new(gate.clone(), &config(50));
        gate.set("u1", weekly("G", 2.0, 1.0, window_end()));
        assert_eq!(usage.check_for_keepalive("u1").await.spent(), None);
        gate.set("u1", weekly("G", 2.0, 2.0, window_end()));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(usage.check_for_keepalive("u1").await.spent().is_some());
        assert_eq!(gate.checks(), 2);
    }

    #[tokio::test]
    async fn without_an_endpoint_nothing_is_limited() {
        let usage = Usage::disabled();
        assert_eq!(usage.check("u1").await, UsageStatus::NotConfigured);
        assert_eq!(
            usage.check_for_keepalive("u1").await,
            UsageStatus::NotConfigured
        );
        assert!(usage.gate().is_none());
        usage
            .run_refresher(Shutdown::new())
            .await
            .expect("returns at once");
    }
}
