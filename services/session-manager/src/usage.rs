//! The usage peer: billing-usage's verdict on a user's usage_limit allowance (`CheckUsage`) and
//! the delivery of the lifecycle outbox (`IngestEvents`), behind [`UsageGate`] — over gRPC in
//! every deployment ([`GrpcUsage`]), in memory for tests (`memory`).
//!
//! [`Usage`] is what admission, keepalives and ExplainSession ask. It reuses a user's answer
//! for `usage.check_cache_ms`, but never reads an allowance as left past the moment the answer
//! said it runs out (`exhausted_at`): from then on the same answer reads as spent, without
//! asking again. Keepalives go further and take the last answer whatever its age (up to
//! [`KEEPALIVE_STALE_LIMIT`]) while a named task refreshes it, so a keepalive stays one Redis
//! round trip.

use std::time::Duration;

use async_trait::async_trait;
use atrium_proto::usage::v1 as usage_pb;
use chrono::{DateTime, Utc};

mod cache;
mod grpc;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;

pub use cache::{KEEPALIVE_STALE_LIMIT, Usage};
pub use grpc::GrpcUsage;

/// How long a CheckUsage may take before billing-usage counts as unavailable.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an IngestEvents (up to 5000 events) may take.
pub const DELIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// billing-usage could not answer (unreachable, timed out, or refused the call).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("billing-usage is unavailable: {0}")]
pub struct Unavailable(pub String);

/// Hours as billing-usage writes them: one decimal from 10 h, two from 0.1 h, four below.
fn hours_text(h: f64) -> String {
    if h >= 10.0 {
        format!("{h:.1}")
    } else if h >= 0.1 || h == 0.0 {
        format!("{h:.2}")
    } else {
        format!("{h:.4}")
    }
}

/// Why a batch was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// billing-usage could not take it now: keep it and try again.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// billing-usage refused one event of the batch as invalid (it would refuse it forever).
    #[error("billing-usage refused event {index} of the batch: {reason}")]
    Rejected { index: usize, reason: String },
}

/// Whose allowance it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Each member of the group has their own.
    PerUser,
    /// The members of the group share one.
    PerGroup,
}

/// The window the allowance renews over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Daily,
    Weekly,
    Monthly,
    /// Never renews.
    Total,
}

impl Interval {
    fn phrase(self) -> &'static str {
        match self {
            Interval::Daily => "today",
            Interval::Weekly => "this week",
            Interval::Monthly => "this month",
            Interval::Total => "in total",
        }
    }
}

/// The usage_limit that applies to a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub scope: Scope,
    /// `None` when billing-usage named no interval.
    pub interval: Option<Interval>,
    pub hours: f64,
}

/// billing-usage's answer for one user.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageVerdict {
    /// False when the allowance is spent.
    pub allowed: bool,
    /// `None`: no usage_limit applies to the user.
    pub limit: Option<Limit>,
    /// The group that supplied the limit.
    pub group_name: String,
    pub used_seconds: f64,
    pub remaining_seconds: f64,
    /// The end of the current window (`None` for `total`).
    pub window_end: Option<DateTime<Utc>>,
    /// When the allowance runs out at the current rate (`None` when nothing charges it).
    pub exhausted_at: Option<DateTime<Utc>>,
    /// When billing-usage answered, by its clock.
    pub checked_at: Option<DateTime<Utc>>,
    /// billing-usage's sentence ("1.20 of 2 hours used this week (group Students, shared)").
    pub summary: String,
}

fn time(ts: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let ts = ts?;
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
}

impl From<usage_pb::UsageCheck> for UsageVerdict {
    fn from(c: usage_pb::UsageCheck) -> Self {
        let limit = c.limit.filter(|_| c.limited).map(|l| Limit {
            scope: match usage_pb::UsageScope::try_from(l.scope) {
                Ok(usage_pb::UsageScope::PerGroup) => Scope::PerGroup,
                _ => Scope::PerUser,
            },
            interval: match usage_pb::UsageInterval::try_from(l.interval) {
                Ok(usage_pb::UsageInterval::Daily) => Some(Interval::Daily),
                Ok(usage_pb::UsageInterval::Weekly) => Some(Interval::Weekly),
                Ok(usage_pb::UsageInterval::Monthly) => Some(Interval::Monthly),
                Ok(usage_pb::UsageInterval::Total) => Some(Interval::Total),
                _ => None,
            },
            hours: l.hours,
        });
        Self {
            allowed: c.allowed,
            limit,
            group_name: c.group_name,
            used_seconds: c.used_seconds.max(0.0),
            remaining_seconds: c.remaining_seconds.max(0.0),
            window_end: time(c.window_end),
            exhausted_at: time(c.exhausted_at),
            checked_at: time(c.checked_at),
            summary: c.summary.trim().to_owned(),
        }
    }
}

impl UsageVerdict {
    /// No usage_limit applies.
    pub fn unlimited() -> Self {
        Self {
            allowed: true,
            limit: None,
            group_name: String::new(),
            used_seconds: 0.0,
            remaining_seconds: 0.0,
            window_end: None,
            exhausted_at: None,
            checked_at: None,
            summary: String::new(),
        }
    }

    /// The allowance as it stands: billing-usage's sentence, or one made from the figures.
    pub fn describe(&self) -> String {
        if !self.summary.is_empty() {
            return self.summary.clone();
        }
        let Some(limit) = &self.limit else {
            return "no usage limit applies".into();
        };
        let group = match (limit.scope, self.group_name.is_empty()) {
            (Scope::PerGroup, false) => {
                format!(" (group {}, shared by its members)", self.group_name)
            }
            (Scope::PerGroup, true) => " (shared by the group's members)".into(),
            (Scope::PerUser, false) => format!(" (set by group {})", self.group_name),
            (Scope::PerUser, true) => String::new(),
        };
        format!(
            "{} of {} hours used {}{group}",
            hours_text(self.used_seconds / 3600.0),
            limit.hours,
            limit.interval.map_or("in this window", Interval::phrase),
        )
    }

    /// When a spent allowance is whole again.
    pub fn renewal(&self) -> String {
        match (
            self.limit.as_ref().and_then(|l| l.interval),
            self.window_end,
        ) {
            (Some(Interval::Total), _) => "it does not renew".into(),
            (_, Some(end)) => format!("it renews at {}", end.format("%Y-%m-%d %H:%M UTC")),
            (_, None) => "it renews when its window ends".into(),
        }
    }

    /// Why a spent allowance refuses: "usage limit spent: …; it renews at …".
    pub fn spent_reason(&self) -> String {
        format!("usage limit spent: {}; {}", self.describe(), self.renewal())
    }

    /// The same answer once its allowance has run out at the rate it reported.
    fn run_out(&self) -> Self {
        Self {
            allowed: false,
            used_seconds: self.used_seconds + self.remaining_seconds,
            remaining_seconds: 0.0,
            // billing-usage's sentence gave the figures of its moment; say the new ones.
            summary: String::new(),
            ..self.clone()
        }
    }
}

/// billing-usage as the session-manager uses it.
#[async_trait]
pub trait UsageGate: Send + Sync + 'static {
    /// The user's allowance now.
    async fn check(&self, user_id: &str) -> Result<UsageVerdict, Unavailable>;
    /// Hands events to the ledger; applied whole or not at all, idempotent by event id.
    async fn deliver(&self, events: Vec<usage_pb::SessionEvent>) -> Result<(), DeliveryError>;
}

/// What is known of a user's allowance.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageStatus {
    /// No usage service is configured (`usage.endpoint` unset): nobody's allowance is spent.
    NotConfigured,
    Checked(UsageVerdict),
    Unavailable(Unavailable),
}

impl UsageStatus {
    /// The reason a spent allowance refuses (admission, keepalive); `None` when it does not.
    pub fn spent(&self) -> Option<String> {
        match self {
            UsageStatus::Checked(v) if !v.allowed => Some(v.spent_reason()),
            _ => None,
        }
    }

    /// ExplainSession's sentence on a running session's allowance; `ends` is its keepalive
    /// deadline and `action` what happens then (delete, stop, pause).
    pub fn explain(&self, ends: Option<DateTime<Utc>>, action: &str) -> String {
        match self {
            UsageStatus::NotConfigured => {
                "No usage limit applies (no usage service is configured).".into()
            }
            UsageStatus::Checked(v) if v.limit.is_none() => "No usage limit applies.".into(),
            UsageStatus::Checked(v) if v.allowed => {
                format!("Usage: {}; keepalives extend.", v.describe())
            }
            UsageStatus::Checked(v) => format!(
                "Usage allowance spent ({}; {}): keepalives no longer extend; the session ends at its keepalive deadline{} (action: {action}).",
                v.describe(),
                v.renewal(),
                ends.map(|t| format!(" {}", t.to_rfc3339()))
                    .unwrap_or_default(),
            ),
            UsageStatus::Unavailable(e) => format!(
                "billing-usage unavailable ({}): keepalives extend as if no limit applied until it answers.",
                e.0
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::weekly;
    use super::*;

    fn window_end() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_spent_allowance_says_what_and_until_when() {
        let spent = weekly("Students", 2.0, 2.0, window_end());
        assert!(!spent.allowed);
        assert_eq!(
            spent.spent_reason(),
            "usage limit spent: 2.00 of 2 hours used this week (group Students, shared by its members); it renews at 2026-11-30 00:00 UTC"
        );
        let total = UsageVerdict {
            limit: Some(Limit {
                scope: Scope::PerUser,
                interval: Some(Interval::Total),
                hours: 10.0,
            }),
            window_end: None,
            ..spent.clone()
        };
        assert!(
            total.spent_reason().ends_with("; it does not renew"),
            "{}",
            total.spent_reason()
        );
        // billing-usage's own sentence is used when it gives one.
        let worded = UsageVerdict {
            summary: "2.00 of 2 hours used this week (group Students, shared)".into(),
            ..spent
        };
        assert!(
            worded
                .spent_reason()
                .starts_with("usage limit spent: 2.00 of 2 hours used this week (group Students, shared); it renews at")
        );
    }

    #[test]
    fn the_proto_answer_converts() {
        let check = usage_pb::UsageCheck {
            user_id: "u".into(),
            allowed: true,
            limited: true,
            limit: Some(usage_pb::UsageLimit {
                scope: usage_pb::UsageScope::PerGroup.into(),
                interval: usage_pb::UsageInterval::Daily.into(),
                hours: 1.5,
            }),
            group_name: "Students".into(),
            used_seconds: 1800.0,
            remaining_seconds: 3600.0,
            ..Default::default()
        };
        let v = UsageVerdict::from(check);
        assert_eq!(
            v.describe(),
            "0.50 of 1.5 hours used today (group Students, shared by its members)"
        );
        let unlimited = UsageVerdict::from(usage_pb::UsageCheck {
            allowed: true,
            ..Default::default()
        });
        assert_eq!(unlimited.limit, None);
        assert!(unlimited.allowed);
    }

    #[test]
    fn explain_says_what_the_allowance_does_to_keepalives() {
        let ends = Some(window_end());
        assert_eq!(
            UsageStatus::NotConfigured.explain(ends, "stop"),
            "No usage limit applies (no usage service is configured)."
        );
        assert_eq!(
            UsageStatus::Checked(UsageVerdict::unlimited()).explain(ends, "stop"),
            "No usage limit applies."
        );
        assert_eq!(
            UsageStatus::Checked(weekly("X", 2.0, 1.2, window_end())).explain(ends, "stop"),
            "Usage: 1.20 of 2 hours used this week (group X, shared by its members); keepalives extend."
        );
        assert_eq!(
            UsageStatus::Checked(weekly("X", 2.0, 2.0, window_end())).explain(ends, "stop"),
            "Usage allowance spent (2.00 of 2 hours used this week (group X, shared by its members); it renews at 2026-11-30 00:00 UTC): keepalives no longer extend; the session ends at its keepalive deadline 2026-11-30T00:00:00+00:00 (action: stop)."
        );
        assert!(
            UsageStatus::Unavailable(Unavailable("CheckUsage: no answer in time".into()))
                .explain(ends, "stop")
                .starts_with(
                    "billing-usage unavailable (CheckUsage: no answer in time): keepalives extend"
                )
        );
    }
}
