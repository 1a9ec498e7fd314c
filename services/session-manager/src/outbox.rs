//! Delivery of the lifecycle outbox (`session_events`) to billing-usage: a named task reads
//! undelivered events in id order (UUIDv7, so time order), hands them over with
//! `IngestEvents`, and only then marks exactly those delivered. A failure keeps them; the task
//! backs off (250 ms doubling to 30 s), logs once per outage, and tries again.
//!
//! Several replicas may deliver the same events at once: the ledger is idempotent by event id,
//! so a duplicate changes nothing.

use std::sync::Arc;
use std::time::Duration;

use atrium_service_kit::Shutdown;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::store::Store;
use crate::usage::{DeliveryError, UsageGate};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The outbox's figures.
#[derive(Clone, Default)]
pub struct OutboxMetrics {
    /// Events not yet delivered (as of the last look).
    pub pending: Gauge,
    /// Events delivered by this replica.
    pub delivered: Counter,
}

/// How the task delivers.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Events per IngestEvents call.
    pub batch: usize,
    /// The pause after a look that found less than a full batch.
    pub interval: Duration,
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Events handed to billing-usage and marked delivered.
    pub delivered: usize,
    /// A full batch was read: more may be waiting.
    pub full: bool,
}

/// The wait after `failures` failed rounds in a row (1 → 250 ms, doubling, at most 30 s).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// One round: the oldest undelivered events (up to `batch`), delivered, then marked.
pub async fn deliver_once(
    store: &Store,
    gate: &dyn UsageGate,
    batch: usize,
) -> anyhow::Result<Round> {
    let events = store
        .undelivered(batch)
        .await
        .map_err(|e| e.into_anyhow().context("read the outbox"))?;
    if events.is_empty() {
        return Ok(Round {
            delivered: 0,
            full: false,
        });
    }
    let full = events.len() >= batch;
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    match gate.deliver(events.clone()).await {
        Ok(()) => {}
        Err(DeliveryError::Unavailable(e)) => return Err(e.into()),
        Err(DeliveryError::Rejected { index, reason }) => {
            // Refused as invalid, the event would block every later one forever: it is set
            // aside (marked delivered, logged with its content) and the rest goes again.
            let Some(bad) = events.get(index) else {
                anyhow::bail!(
                    "billing-usage refused event {index} of {}: {reason}",
                    ids.len()
                );
            };
            tracing::error!(
                event_id = %bad.id,
                session_id = %bad.session_id,
                kind = %bad.kind,
                %reason,
                "billing-usage refused a usage event as invalid; it is set aside"
            );
            store
                .mark_delivered(std::slice::from_ref(&bad.id))
                .await
                .map_err(|e| e.into_anyhow().context("set a refused event aside"))?;
            return Ok(Round {
                delivered: 0,
                full: true,
            });
        }
    }
    store
        .mark_delivered(&ids)
        .await
        .map_err(|e| e.into_anyhow().context("mark events delivered"))?;
    Ok(Round {
        delivered: ids.len(),
        full,
    })
}

/// Delivers until `stop`: at once again while full batches come, every `interval` otherwise,
/// backing off while failing. A round under way when `stop` fires finishes; none follows.
pub async fn run(
    store: Store,
    gate: Arc<dyn UsageGate>,
    delivery: Delivery,
    metrics: OutboxMetrics,
    stop: Shutdown,
) -> anyhow::Result<()> {
    let mut failures: u32 = 0;
    loop {
        if stop.is_triggered() {
            return Ok(());
        }
        let pause = match deliver_once(&store, gate.as_ref(), delivery.batch).await {
            Ok(round) => {
                if failures > 0 {
                    tracing::info!(
                        failed_rounds = failures,
                        "usage events are delivered to billing-usage again"
                    );
                    failures = 0;
                }
                metrics
                    .delivered
                    .inc_by(u64::try_from(round.delivered).unwrap_or(0));
                if round.full {
                    continue;
                }
                delivery.interval
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "usage events cannot be delivered to billing-usage; they stay in the outbox and delivery is retried"
                    );
                } else {
                    tracing::debug!(
                        error = format!("{e:#}"),
                        failures,
                        "usage events still not delivered"
                    );
                }
                backoff(failures)
            }
        };
        match store.undelivered_events().await {
            Ok(n) => {
                metrics.pending.set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::debug!(error = %e, "outbox not counted"),
        }
        tokio::select! {
            _ = stop.wait() => return Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Every hour until `stop`, deletes events delivered more than `retain` ago.
pub async fn prune(store: Store, retain: Duration, stop: Shutdown) -> anyhow::Result<()> {
    let Ok(retain) = chrono::Duration::from_std(retain) else {
        return Ok(());
    };
    loop {
        match store.prune_delivered(chrono::Utc::now() - retain).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "delivered usage events pruned from the outbox"),
            Err(e) => tracing::warn!(error = %e, "the outbox could not be pruned; next hour again"),
        }
        tokio::select! {
            _ = stop.wait() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_250ms_to_30s() {
        let waits: Vec<u64> = (1..=10).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
