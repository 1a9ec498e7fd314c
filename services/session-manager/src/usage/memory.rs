//! A gate in memory, for tests: verdicts per user (unlimited unless set), an outage switch,
//! deliveries that fail a given number of times, and what it received.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use atrium_proto::usage::v1 as usage_pb;
use chrono::{DateTime, Utc};

use super::{DeliveryError, Interval, Limit, Scope, Unavailable, UsageGate, UsageVerdict};

#[derive(Default)]
struct Inner {
    verdicts: HashMap<String, UsageVerdict>,
    down: bool,
    failing_deliveries: usize,
    checks: usize,
    batches: Vec<Vec<usage_pb::SessionEvent>>,
}

#[derive(Default)]
pub struct MemoryUsage {
    inner: Mutex<Inner>,
}

impl MemoryUsage {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, user_id: &str, verdict: UsageVerdict) {
        self.lock().verdicts.insert(user_id.to_owned(), verdict);
    }

    /// While down, every call fails.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The next `n` deliveries fail.
    pub fn fail_deliveries(&self, n: usize) {
        self.lock().failing_deliveries = n;
    }

    /// CheckUsage calls answered or refused so far.
    pub fn checks(&self) -> usize {
        self.lock().checks
    }

    /// Every batch delivered, in order.
    pub fn batches(&self) -> Vec<Vec<usage_pb::SessionEvent>> {
        self.lock().batches.clone()
    }

    /// The ids of every event delivered, in order of delivery.
    pub fn delivered_ids(&self) -> Vec<String> {
        self.lock()
            .batches
            .iter()
            .flatten()
            .map(|e| e.id.clone())
            .collect()
    }
}

#[async_trait]
impl UsageGate for MemoryUsage {
    async fn check(&self, user_id: &str) -> Result<UsageVerdict, Unavailable> {
        let mut inner = self.lock();
        inner.checks += 1;
        if inner.down {
            return Err(Unavailable("connection refused (test)".into()));
        }
        Ok(inner
            .verdicts
            .get(user_id)
            .cloned()
            .unwrap_or_else(UsageVerdict::unlimited))
    }

    async fn deliver(&self, events: Vec<usage_pb::SessionEvent>) -> Result<(), DeliveryError> {
        let mut inner = self.lock();
        if inner.down {
            return Err(Unavailable("connection refused (test)".into()).into());
        }
        if inner.failing_deliveries > 0 {
            inner.failing_deliveries -= 1;
            return Err(Unavailable("deadline exceeded (test)".into()).into());
        }
        if let Some(index) = events.iter().position(|e| e.kind == "poison") {
            return Err(DeliveryError::Rejected {
                index,
                reason: format!("events[{index}].kind: unknown kind (test)"),
            });
        }
        inner.batches.push(events);
        Ok(())
    }
}

/// A limited verdict: `used` of `hours` hours in a weekly window ending at `window_end`,
/// shared by group `group` (per_group).
pub fn weekly(group: &str, hours: f64, used_hours: f64, window_end: DateTime<Utc>) -> UsageVerdict {
    let remaining = (hours - used_hours).max(0.0) * 3600.0;
    UsageVerdict {
        allowed: remaining > 0.0,
        limit: Some(Limit {
            scope: Scope::PerGroup,
            interval: Some(Interval::Weekly),
            hours,
        }),
        group_name: group.to_owned(),
        used_seconds: used_hours * 3600.0,
        remaining_seconds: remaining,
        window_end: Some(window_end),
        exhausted_at: None,
        checked_at: Some(Utc::now()),
        summary: String::new(),
    }
}
