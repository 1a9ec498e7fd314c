//! The revocation feed: every replica polls the `revocations` table (every 250 ms, and at once
//! after a local write), applies what it finds to the [`Revocations`] set its own auth layer
//! checks, and pushes it to `WatchRevocations` streams.
//!
//! Cursors are the table's increasing ids. A transaction that took its id earlier can commit
//! after a later one, so each poll also looks back over [`LOOK_BACK`] and skips rows it already
//! delivered: a late row is still delivered, once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use atrium_service_kit::auth::Revocations;
use atrium_service_kit::{ApiResult, Shutdown};
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast, watch};

use crate::entity::revocation;
use crate::repo::Repo;

/// How often other replicas' revocations are looked for.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How far back each poll looks for rows that committed late.
pub const LOOK_BACK: chrono::Duration = chrono::Duration::seconds(10);
/// Rows read per query.
const PAGE: u64 = 5_000;

/// New revocations, as one poll found them.
pub type Batch = Arc<Vec<revocation::Model>>;

pub struct RevocationFeed {
    set: Revocations,
    tx: broadcast::Sender<Batch>,
    wake: Arc<Notify>,
    stopped: watch::Sender<bool>,
}

impl RevocationFeed {
    /// A feed applying to `set`, woken by `wake` (the repository's signal after revoking).
    pub fn new(set: Revocations, wake: Arc<Notify>) -> Self {
        let (tx, _) = broadcast::channel(256);
        let (stopped, _) = watch::channel(false);
        Self {
            set,
            tx,
            wake,
            stopped,
        }
    }

    /// The live set (identity's authenticator refuses its sessions' tokens).
    pub fn set(&self) -> &Revocations {
        &self.set
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.tx.subscribe()
    }

    /// Flips to true when the feed stops (shutdown): streams end then.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    /// Polls until `shutdown`.
    pub async fn run(&self, repo: Repo, shutdown: Shutdown) {
        let mut seen: HashMap<i64, DateTime<Utc>> = HashMap::new();
        let mut last_prune = tokio::time::Instant::now();
        loop {
            if let Err(e) = self.poll(&repo, &mut seen).await {
                tracing::warn!(error = %e, "reading revocations failed; will retry");
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                self.set.prune(Utc::now().timestamp());
                last_prune = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = shutdown.wait() => break,
            }
        }
        self.stopped.send_replace(true);
    }

    /// One poll: applies and broadcasts rows not delivered before.
    pub async fn poll(&self, repo: &Repo, seen: &mut HashMap<i64, DateTime<Utc>>) -> ApiResult<()> {
        let now = Utc::now();
        let fresh = unseen(repo, self.set.cursor(), now, seen).await?;
        seen.retain(|_, at| *at >= now - LOOK_BACK * 2);
        if fresh.is_empty() {
            return Ok(());
        }
        for row in &fresh {
            self.set
                .revoke(&row.login_session_id, row.forget_after.timestamp());
            seen.insert(row.id, row.created_at);
        }
        let top = fresh.iter().map(|r| r.id).max().unwrap_or_default();
        self.set.advance(u64::try_from(top).unwrap_or_default());
        // Nobody listening is fine.
        let _ = self.tx.send(Arc::new(fresh));
        Ok(())
    }
}

/// Revocations after `cursor` that still matter, plus late rows of the look-back window, minus
/// those in `seen`; oldest first.
pub async fn unseen(
    repo: &Repo,
    cursor: u64,
    now: DateTime<Utc>,
    seen: &HashMap<i64, DateTime<Utc>>,
) -> ApiResult<Vec<revocation::Model>> {
    let mut rows: BTreeMap<i64, revocation::Model> = BTreeMap::new();
    let mut after = i64::try_from(cursor).unwrap_or(i64::MAX);
    loop {
        let page = repo.revocations_after(after, now, PAGE).await?;
        let full = page.len() as u64 == PAGE;
        for row in page {
            after = after.max(row.id);
            rows.insert(row.id, row);
        }
        if !full {
            break;
        }
    }
    for row in repo.revocations_since(now - LOOK_BACK).await? {
        rows.entry(row.id).or_insert(row);
    }
    Ok(rows
        .into_values()
        .filter(|r| !seen.contains_key(&r.id) && r.forget_after > now)
        .collect())
}
