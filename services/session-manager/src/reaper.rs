//! The reaper: claims expired deadlines (each exactly once across replicas) and applies the
//! owner's `keepalive_expiration_action` — delete, stop or pause — or delete when the
//! session_time_limit is what ran out. While the deadline store cannot be reached nothing is
//! reaped; when it returns having lost its data, deadlines are rebuilt from the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atrium_service_kit::{ApiResult, Shutdown};
use chrono::Utc;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::core::{Core, SharedCore};
use crate::deadlines::Due;
use crate::state::DesiredState;
use crate::store::{Row, audit};

/// A claim is held this long before another replica may take it over.
const CLAIM_LEASE: Duration = Duration::from_secs(60);
const BATCH: usize = 1000;

/// The reaper's figures.
#[derive(Clone)]
pub struct ReaperMetrics {
    /// Seconds from a deadline to the moment its action was recorded.
    pub lateness: Histogram,
    pub expired: Counter,
}

impl Default for ReaperMetrics {
    fn default() -> Self {
        Self {
            lateness: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
            expired: Counter::default(),
        }
    }
}

/// What an expiry does to a session.
pub fn expiry_action(
    row: &Row,
    action_setting: &str,
    now: chrono::DateTime<Utc>,
) -> (DesiredState, &'static str) {
    if row.hard_deadline().is_some_and(|hard| hard <= now) {
        return (DesiredState::Deleted, "session_time_limit");
    }
    (keepalive_action(action_setting), "keepalive_expiration")
}

/// The desired state `keepalive_expiration_action` names: stop, pause, else delete.
pub fn keepalive_action(setting: &str) -> DesiredState {
    match setting {
        "stop" => DesiredState::Stopped,
        "pause" => DesiredState::Paused,
        _ => DesiredState::Deleted,
    }
}

/// The action `keepalive_expiration_action` names, as a word: "delete", "stop" or "pause".
pub fn action_name(setting: &str) -> &'static str {
    match keepalive_action(setting) {
        DesiredState::Stopped => "stop",
        DesiredState::Paused => "pause",
        _ => "delete",
    }
}

/// What the action leaves the session: "deleted", "stopped" or "paused".
pub fn action_done(setting: &str) -> &'static str {
    match keepalive_action(setting) {
        DesiredState::Stopped => "stopped",
        DesiredState::Paused => "paused",
        _ => "deleted",
    }
}

pub async fn run(core: SharedCore, metrics: ReaperMetrics, stop: Shutdown) -> anyhow::Result<()> {
    let interval = Duration::from_millis(core.config.reap_interval_ms);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checked_intact_at: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stop.wait() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let must_check = checked_intact_at.is_none_or(|t| t.elapsed() > Duration::from_secs(2))
            || core.deadline_health().is_err();
        if must_check {
            match ensure_intact(&core).await {
                Ok(()) => {
                    core.deadlines_answered();
                    checked_intact_at = Some(std::time::Instant::now());
                }
                Err(e) => {
                    core.deadlines_failed(&e);
                    continue;
                }
            }
        }
        loop {
            let now = Utc::now();
            let due = match core
                .deadlines
                .claim_due(now.timestamp_millis(), BATCH, CLAIM_LEASE)
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    core.deadlines_failed(&e.to_string());
                    break;
                }
            };
            let full = due.len() == BATCH;
            if let Err(e) = expire_batch(&core, &due, &metrics).await {
                tracing::warn!(error = %e, count = due.len(), "expiries not applied; retried when their claims lapse");
            }
            if !full || stop.is_triggered() {
                break;
            }
        }
    }
}

/// Rebuilds deadlines if the store lost them.
async fn ensure_intact(core: &Arc<Core>) -> Result<(), String> {
    if core.deadlines.intact().await.map_err(|e| e.to_string())? {
        return Ok(());
    }
    let rows = core
        .store
        .with_deadlines()
        .await
        .map_err(|e| e.to_string())?;
    let now = Utc::now();
    let mut rebuilt = 0;
    for row in &rows {
        // A keepalive's worth from now: the deadline itself was lost with the store, so
        // the session gets the benefit of the doubt (never past its hard limit).
        let at = match row.desired() {
            DesiredState::Running => Some(core.deadline_for(row, row.keepalive_secs, now)),
            _ => row.hard_deadline(),
        };
        if let Some(at) = at {
            core.deadlines
                .set(&row.id, at.timestamp_millis())
                .await
                .map_err(|e| e.to_string())?;
            rebuilt += 1;
        }
    }
    core.deadlines
        .mark_intact()
        .await
        .map_err(|e| e.to_string())?;
    if rebuilt > 0 {
        tracing::warn!(
            rebuilt,
            "deadlines were missing from the store: rebuilt from the database"
        );
    }
    Ok(())
}

/// Applies a batch of claimed expiries: one read, one write per action, then the deadlines.
async fn expire_batch(core: &Core, due: &[Due], metrics: &ReaperMetrics) -> ApiResult<()> {
    if due.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = due.iter().map(|d| d.session_id.clone()).collect();
    let deadlines: HashMap<&str, i64> = due
        .iter()
        .map(|d| (d.session_id.as_str(), d.deadline_ms))
        .collect();
    let rows = core.store.get_many(&ids).await?;
    let now = Utc::now();
    let mut by_action: HashMap<DesiredState, Vec<String>> = HashMap::new();
    let mut rules: HashMap<String, &'static str> = HashMap::new();
    for row in &rows {
        if row.desired() == DesiredState::Deleted || row.observed().is_terminal() {
            continue;
        }
        let settings = core.owner_settings(row).await;
        let (desired, rule) = expiry_action(row, &settings.keepalive_expiration_action, now);
        if desired == row.desired() {
            // Already at rest by the same rule: only a hard limit still ends it.
            if let Some(hard) = row.hard_deadline() {
                core.set_deadline(&row.id, hard).await?;
            }
            continue;
        }
        rules.insert(row.id.clone(), rule);
        by_action.entry(desired).or_default().push(row.id.clone());
    }
    for (desired, ids) in by_action {
        let changed = core
            .store
            .set_desired_many(&ids, desired, |row| {
                let detail = serde_json::json!({
                    "rule": rules.get(&row.id).copied().unwrap_or("keepalive_expiration"),
                    "action": desired.as_str(),
                    "deadline_ms": deadlines.get(row.id.as_str()).copied().unwrap_or(0),
                });
                audit(
                    "session.expire",
                    Some(&row.user_id),
                    "service:session-manager",
                    &row.id,
                    detail,
                )
            })
            .await?;
        for row in &changed {
            core.after_desired(row, desired).await?;
            let deadline = deadlines.get(row.id.as_str()).copied().unwrap_or(0);
            if deadline > 0 {
                let late = (now.timestamp_millis() - deadline).max(0) as f64 / 1000.0;
                metrics.lateness.observe(late);
            }
            metrics.expired.inc();
        }
        tracing::info!(count = changed.len(), action = %desired, "sessions expired");
    }
    for id in &ids {
        if let Err(e) = core.deadlines.done(id).await {
            tracing::debug!(error = %e, "claim not released; it lapses");
        }
    }
    Ok(())
}
