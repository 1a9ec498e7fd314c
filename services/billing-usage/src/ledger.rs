//! One session's charge, folded from its lifecycle events: time is charged from the session's
//! creation to its deletion, paused and stopped time included, except while it is lost (its
//! agent gone); a session that failed before it ever ran (no running, resumed, paused or stopped
//! event) is not charged at all.
//!
//! The fold is a pure function of the set of events: they are deduplicated by id and walked
//! in order of time (then id), so replayed, duplicated or out-of-order deliveries give the
//! same [`Charge`]. Instants are milliseconds since the Unix epoch; arithmetic saturates, so
//! no input panics.

use serde::{Deserialize, Serialize};

use crate::window::overlap_ms;

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Created,
    Running,
    Paused,
    Resumed,
    Stopped,
    Deleted,
    Failed,
    Lost,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Created,
        Kind::Running,
        Kind::Paused,
        Kind::Resumed,
        Kind::Stopped,
        Kind::Deleted,
        Kind::Failed,
        Kind::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Running => "running",
            Kind::Paused => "paused",
            Kind::Resumed => "resumed",
            Kind::Stopped => "stopped",
            Kind::Deleted => "deleted",
            Kind::Failed => "failed",
            Kind::Lost => "lost",
        }
    }

    /// "created", "running", …, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// One lifecycle event of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// UUIDv7 text, unique per event.
    pub id: String,
    pub kind: Kind,
    pub at_ms: i64,
}

/// What a session is doing between two events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Running,
    Paused,
    Stopped,
    /// Its agent is gone: not charged.
    Lost,
}

impl Phase {
    /// Whether time in this phase is charged (all but `Lost`).
    pub fn charged(self) -> bool {
        self != Phase::Lost
    }
}

/// Milliseconds spent in each phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTotals {
    pub starting_ms: i64,
    pub running_ms: i64,
    pub paused_ms: i64,
    pub stopped_ms: i64,
    pub lost_ms: i64,
}

impl PhaseTotals {
    fn add(&mut self, phase: Phase, ms: i64) {
        let total = match phase {
            Phase::Starting => &mut self.starting_ms,
            Phase::Running => &mut self.running_ms,
            Phase::Paused => &mut self.paused_ms,
            Phase::Stopped => &mut self.stopped_ms,
            Phase::Lost => &mut self.lost_ms,
        };
        *total = total.saturating_add(ms);
    }
}

/// What one session is charged, as folded from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The earliest event's time (the creation, when it has arrived).
    pub start_ms: i64,
    /// When the charge ended for good (deleted or failed); `None` while open.
    pub end_ms: Option<i64>,
    /// `Deleted` or `Failed`, once ended.
    pub ended_by: Option<Kind>,
    /// Charged intervals `[start, end)`: sorted, disjoint, none empty; time lost is not
    /// charged. Only the last may be open (`None` end), and only while `end_ms` is `None` and
    /// the session is in a charged phase.
    pub intervals: Vec<(i64, Option<i64>)>,
    /// Time per phase from `start_ms` up to `last_at_ms` (the current phase's time since then
    /// is not included).
    pub phases: PhaseTotals,
    /// The current phase; `None` once ended.
    pub phase: Option<Phase>,
    /// The time of the last event that counted.
    pub last_at_ms: i64,
    /// A `Running` event was seen (before the end).
    pub ran: bool,
}

/// Folds a session's events into its charge; `None` for no events. Events are deduplicated
/// by id (of copies that differ, the earliest is kept), then walked in order of
/// `(at_ms, id)`; events after the end are ignored.
pub fn fold(events: &[Event]) -> Option<Charge> {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by(|a, b| (&a.id, a.at_ms, a.kind).cmp(&(&b.id, b.at_ms, b.kind)));
    events.dedup_by(|later, earlier| later.id == earlier.id);
    events.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
    let (first, rest) = events.split_first()?;
    let mut walk = Walk::new(first);
    for event in rest {
        if walk.charge.end_ms.is_some() {
            break;
        }
        walk.step(event);
    }
    Some(walk.finish())
}

/// Continues `charge` with `events` that all come strictly after its last event: the same as
/// folding every event again, without reading the old ones. `None` when some event is not
/// later (then fold them all).
pub fn extend(charge: &Charge, events: &[Event]) -> Option<Charge> {
    if events.iter().any(|e| e.at_ms <= charge.last_at_ms) {
        return None;
    }
    if charge.end_ms.is_some() {
        // Later events never change an ended charge.
        return Some(charge.clone());
    }
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by(|a, b| (&a.id, a.at_ms, a.kind).cmp(&(&b.id, b.at_ms, b.kind)));
    events.dedup_by(|later, earlier| later.id == earlier.id);
    events.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
    let mut walk = Walk::resume(charge.clone());
    for event in events {
        if walk.charge.end_ms.is_some() {
            break;
        }
        walk.step(event);
    }
    Some(walk.finish())
}

impl Charge {
    /// Not ended yet (neither deleted nor failed).
    pub fn is_open(&self) -> bool {
        self.end_ms.is_none()
    }

    /// Charging right now: the last interval is open.
    pub fn accruing(&self) -> bool {
        matches!(self.intervals.last(), Some((_, None)))
    }

    /// Charged time within `[from_ms, to_ms)`, an open interval running up to `now_ms` (and no
    /// further than `to_ms`). Never negative.
    pub fn charged_ms(&self, from_ms: i64, to_ms: i64, now_ms: i64) -> i64 {
        self.intervals.iter().fold(0, |sum: i64, &(start, end)| {
            sum.saturating_add(overlap_ms(start, end.unwrap_or(now_ms), from_ms, to_ms))
        })
    }

    /// Charged time in all, an open interval running up to `now_ms`.
    pub fn total_ms(&self, now_ms: i64) -> i64 {
        self.intervals.iter().fold(0, |sum: i64, &(start, end)| {
            sum.saturating_add(end.unwrap_or(now_ms).saturating_sub(start).max(0))
        })
    }

    /// The closed charged intervals and, if accruing, the open one ended at `now_ms` (left
    /// out when `now_ms` is not after its start): what to split by day.
    pub fn intervals_until(&self, now_ms: i64) -> Vec<(i64, i64)> {
        self.intervals
            .iter()
            .filter_map(|&(start, end)| match end {
                Some(end) => Some((start, end)),
                None if now_ms > start => Some((start, now_ms)),
                None => None,
            })
            .collect()
    }
}

/// The fold's state: the charge so far and the start of the interval being charged.
struct Walk {
    charge: Charge,
    open: Option<i64>,
}

impl Walk {
    fn new(first: &Event) -> Self {
        let t = first.at_ms;
        let mut walk = Walk {
            charge: Charge {
                start_ms: t,
                end_ms: None,
                ended_by: None,
                intervals: Vec::new(),
                phases: PhaseTotals::default(),
                phase: None,
                last_at_ms: t,
                ran: false,
            },
            open: None,
        };
        match first.kind {
            Kind::Created => walk.enter(Phase::Starting, t),
            kind => walk.apply(kind, t),
        }
        walk
    }

    /// The walk's state after the events `charge` was folded from (an open charge).
    fn resume(mut charge: Charge) -> Self {
        let open = match charge.intervals.last() {
            Some(&(start, None)) => {
                charge.intervals.pop();
                Some(start)
            }
            _ => None,
        };
        Walk { charge, open }
    }

    fn step(&mut self, event: &Event) {
        let t = event.at_ms;
        if let Some(phase) = self.charge.phase {
            let spent = t.saturating_sub(self.charge.last_at_ms);
            self.charge.phases.add(phase, spent);
        }
        self.charge.last_at_ms = t;
        self.apply(event.kind, t);
    }

    fn apply(&mut self, kind: Kind, t: i64) {
        match kind {
            // A creation after the first event changes nothing.
            Kind::Created => {}
            Kind::Running => {
                self.charge.ran = true;
                self.enter(Phase::Running, t);
            }
            // Only a session that ran can be resumed, paused or stopped (its `running` event may
            // simply not have arrived yet).
            Kind::Resumed => {
                self.charge.ran = true;
                self.enter(Phase::Running, t);
            }
            Kind::Paused => {
                self.charge.ran = true;
                self.enter(Phase::Paused, t);
            }
            Kind::Stopped => {
                self.charge.ran = true;
                self.enter(Phase::Stopped, t);
            }
            Kind::Lost => {
                self.close(t);
                self.charge.phase = Some(Phase::Lost);
            }
            Kind::Deleted | Kind::Failed => {
                self.close(t);
                self.charge.end_ms = Some(t);
                self.charge.ended_by = Some(kind);
                self.charge.phase = None;
            }
        }
    }

    /// Enters a charged phase, opening an interval unless one is open already (one that
    /// closed at this very instant is reopened rather than a new one started).
    fn enter(&mut self, phase: Phase, t: i64) {
        if self.open.is_none() {
            self.open = match self.charge.intervals.last() {
                Some(&(start, Some(end))) if end == t => {
                    self.charge.intervals.pop();
                    Some(start)
                }
                _ => Some(t),
            };
        }
        self.charge.phase = Some(phase);
    }

    fn close(&mut self, t: i64) {
        if let Some(start) = self.open.take()
            && t > start
        {
            self.charge.intervals.push((start, Some(t)));
        }
    }

    fn finish(mut self) -> Charge {
        if let Some(start) = self.open {
            self.charge.intervals.push((start, None));
        }
        if self.charge.ended_by == Some(Kind::Failed) && !self.charge.ran {
            self.charge.intervals.clear();
        }
        self.charge
    }
}

#[cfg(test)]
mod tests;
