//! Use cases over the ledger: checking an allowance, a user's dashboard, and reports with costs.
//! Handlers convert and authorise; the arithmetic is here and in `window`/`ledger`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use atrium_service_kit::ApiResult;
use chrono::{Duration, NaiveDate};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::config::BillingUsageConfig;
use crate::ledger::Charge;
use crate::peers::{Limit, Peers, Scope};
use crate::store::{self, Ingested, LedgerSession, NewEvent, Store, SubjectUsage};
use crate::window::{self, Interval, Window};

pub type SharedCore = Arc<Core>;

pub struct Core {
    pub config: BillingUsageConfig,
    pub store: Store,
    pub peers: Peers,
    pub usage_cache: UsageCache,
    pub metrics: UsageMetrics,
}

/// Billing-usage's own figures on `/metrics`.
#[derive(Clone)]
pub struct UsageMetrics {
    /// Events new to the ledger.
    pub accepted: Counter,
    /// Events it already held (replays, a second replica's delivery).
    pub duplicates: Counter,
    /// Seconds per IngestEvents batch (the transaction).
    pub batch_seconds: Histogram,
}

impl Default for UsageMetrics {
    fn default() -> Self {
        Self {
            accepted: Counter::default(),
            duplicates: Counter::default(),
            batch_seconds: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        }
    }
}

/// A subject's usage parts, so that a check is arithmetic on the clock: the ended sessions'
/// total in the window and the open sessions' charges. Ingestion through this process drops
/// the subjects it touched at once; `ttl` bounds how long another replica's ingestion may go
/// unseen.
pub struct UsageCache {
    ttl: std::time::Duration,
    entries: Mutex<HashMap<(String, i64), Arc<CachedUsage>>>,
}

struct CachedUsage {
    closed_ms: i64,
    open: Vec<Charge>,
    at: Instant,
}

impl UsageCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &(String, i64)) -> Option<Arc<CachedUsage>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|c| c.at.elapsed() < self.ttl)
            .cloned()
    }

    fn put(&self, key: (String, i64), value: CachedUsage) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(key, Arc::new(value));
    }

    /// Forgets every window of these subjects.
    pub fn forget<'a>(&self, subjects: impl IntoIterator<Item = &'a String>) {
        let subjects: std::collections::BTreeSet<&String> = subjects.into_iter().collect();
        if subjects.is_empty() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(subject, _), _| !subjects.contains(subject));
    }
}

/// A user's allowance now.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub user_id: String,
    /// None: no usage_limit applies.
    pub limit: Option<Limit>,
    pub allowed: bool,
    pub used_ms: i64,
    pub remaining_ms: i64,
    pub window: Option<Window>,
    pub open_sessions: u32,
    pub exhausted_at_ms: Option<i64>,
    pub checked_at_ms: i64,
}

/// Hours for people: one decimal from 10 h, two from 0.1 h, four below (a small allowance must
/// not read as nothing).
fn hours(ms: i64) -> String {
    let h = ms as f64 / 3_600_000.0;
    if h >= 10.0 {
        format!("{h:.1}")
    } else if h >= 0.1 || h == 0.0 {
        format!("{h:.2}")
    } else {
        format!("{h:.4}")
    }
}

impl Check {
    /// One sentence for people.
    pub fn summary(&self) -> String {
        let Some(limit) = &self.limit else {
            return "no usage limit applies".into();
        };
        let period = match limit.interval {
            Interval::Daily => "today",
            Interval::Weekly => "this week",
            Interval::Monthly => "this month",
            Interval::Total => "in total",
        };
        let whose = match limit.scope {
            Scope::PerUser => format!("group {}", limit.group_name),
            Scope::PerGroup => format!("group {}, shared by its members", limit.group_name),
        };
        format!(
            "{} of {} hours used {period} ({whose})",
            hours(self.used_ms),
            limit.hours
        )
    }
}

/// One row of a report, before pricing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub label: String,
    pub ms: i64,
    pub sessions: u32,
    /// Milliseconds per workspace (for costs).
    pub by_workspace: BTreeMap<String, i64>,
}

/// Which dimension a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    User,
    Group,
    Workspace,
    Zone,
}

/// Groups sessions' charged time within `[from, to)` by `by`.
pub fn tally(
    sessions: &[LedgerSession],
    by: By,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> BTreeMap<String, Tally> {
    let mut rows: BTreeMap<String, Tally> = BTreeMap::new();
    for s in sessions {
        let ms = s.charge.charged_ms(from_ms, to_ms, now_ms);
        if ms <= 0 {
            continue;
        }
        let keys: Vec<&str> = match by {
            By::User => vec![s.user_id.as_str()],
            By::Group => s.group_ids.iter().map(String::as_str).collect(),
            By::Workspace => vec![s.workspace_id.as_str()],
            By::Zone => vec![s.zone_id.as_str()],
        };
        for key in keys {
            let row = rows.entry(key.to_owned()).or_default();
            if by == By::User && row.label.is_empty() {
                row.label = s.username.clone();
            }
            row.ms += ms;
            row.sessions += 1;
            *row.by_workspace.entry(s.workspace_id.clone()).or_default() += ms;
        }
    }
    rows
}

impl Core {
    pub fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// The user's allowance at `now_ms`.
    pub async fn check(&self, user_id: &str, now_ms: i64) -> ApiResult<Check> {
        let Some(limit) = self.peers.limit(user_id).await? else {
            return Ok(Check {
                user_id: user_id.to_owned(),
                limit: None,
                allowed: true,
                used_ms: 0,
                remaining_ms: 0,
                window: None,
                open_sessions: 0,
                exhausted_at_ms: None,
                checked_at_ms: now_ms,
            });
        };
        let subject = match limit.scope {
            Scope::PerUser => store::user_subject(user_id),
            Scope::PerGroup => store::group_subject(&limit.group_id),
        };
        let window = window::window(limit.interval, self.store.timezone(), now_ms);
        let usage = self.subject_usage(subject, window, now_ms).await?;
        let allowance = limit.allowance_ms();
        let remaining = (allowance - usage.used_ms).max(0);
        let exhausted_at_ms = (usage.accruing > 0 && remaining > 0).then(|| {
            now_ms + (remaining + i64::from(usage.accruing) - 1) / i64::from(usage.accruing)
        });
        Ok(Check {
            user_id: user_id.to_owned(),
            allowed: usage.used_ms < allowance,
            used_ms: usage.used_ms,
            remaining_ms: remaining,
            window,
            open_sessions: usage.accruing,
            exhausted_at_ms,
            checked_at_ms: now_ms,
            limit: Some(limit),
        })
    }

    /// Records events, and forgets the cached usage of every subject they touched.
    pub async fn ingest(&self, events: Vec<NewEvent>) -> ApiResult<Ingested> {
        let started = Instant::now();
        let outcome = self.store.ingest(events).await?;
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.accepted.inc_by(u64::from(outcome.accepted));
        self.metrics
            .duplicates
            .inc_by(u64::from(outcome.duplicates));
        self.usage_cache.forget(&outcome.subjects);
        Ok(outcome)
    }

    /// A subject's usage in a window, from the cache when it is fresh.
    async fn subject_usage(
        &self,
        subject: String,
        window: Option<Window>,
        now_ms: i64,
    ) -> ApiResult<SubjectUsage> {
        let key = (subject, window.map_or(i64::MIN, |w| w.start_ms));
        if let Some(hit) = self.usage_cache.get(&key) {
            return Ok(SubjectUsage::of(hit.closed_ms, &hit.open, window, now_ms));
        }
        let at = Instant::now();
        let closed_ms = self.store.closed_ms(&key.0, window).await?;
        let open = self.store.open_charges(&key.0).await?;
        let usage = SubjectUsage::of(closed_ms, &open, window, now_ms);
        self.usage_cache.put(
            key,
            CachedUsage {
                closed_ms,
                open,
                at,
            },
        );
        Ok(usage)
    }

    /// The user's own charged time per local day over the last `days` days (today included),
    /// every day present.
    pub async fn history(
        &self,
        user_id: &str,
        days: u32,
        now_ms: i64,
    ) -> ApiResult<Vec<(NaiveDate, i64)>> {
        let tz = self.store.timezone();
        let today = window::local_day(tz, now_ms);
        let first = today - Duration::days(i64::from(days.saturating_sub(1)));
        let found = self
            .store
            .by_day(
                &store::user_subject(user_id),
                window::day_key(first),
                window::day_key(today),
                now_ms,
            )
            .await?;
        Ok(first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|d| (d, found.get(&window::day_key(d)).copied().unwrap_or(0)))
            .collect())
    }

    /// Usage by `by` within `[from, to)`.
    pub async fn report(
        &self,
        by: By,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> ApiResult<BTreeMap<String, Tally>> {
        let sessions = self.store.sessions_overlapping(from_ms, to_ms).await?;
        Ok(tally(&sessions, by, from_ms, to_ms, now_ms))
    }
}
