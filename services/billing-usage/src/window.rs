//! Calendar arithmetic for usage windows, as pure functions of instants (milliseconds since
//! the Unix epoch, UTC) and an IANA timezone: the local day of an instant, the first instant
//! of a local day, the daily/weekly/monthly window holding an instant, and a span cut at
//! local midnights. Days may be 23 or 25 hours long (or stranger) where clocks change, so
//! everything is computed from local dates and never by adding fixed lengths of time.
//!
//! A local day `D` is `[day_start_ms(D), day_start_ms(D + 1))`, and [`local_day`] answers the
//! day whose range holds an instant. That is the wall-clock date except where clocks go back
//! across midnight (the repeated minutes then belong to the day already begun), so that days,
//! windows and the pieces of [`split_by_day`] always tile time without gaps or overlaps.
//!
//! Instants beyond about ±250,000 years ([`MIN_MS`], [`MAX_MS`]) are clamped into that range
//! before any calendar lookup; nothing here panics.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime};
use chrono::{Offset, TimeZone};
pub use chrono_tz::Tz;

/// The earliest instant the calendar functions look at (inputs below are clamped to it).
pub const MIN_MS: i64 = -8_000_000_000_000_000;
/// The latest instant the calendar functions look at (inputs above are clamped to it).
pub const MAX_MS: i64 = 8_000_000_000_000_000;

const DAY_MS: i64 = 86_400_000;

/// A timezone by its IANA name ("UTC", "Europe/Berlin", …), matched exactly or else
/// ignoring ASCII case; surrounding whitespace is ignored.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    let trimmed = name.trim();
    if let Ok(tz) = trimmed.parse::<Tz>() {
        return Ok(tz);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .find(|tz| tz.name().eq_ignore_ascii_case(trimmed))
        .ok_or_else(|| {
            format!("unknown timezone {trimmed:?} (use an IANA name such as Europe/Berlin or UTC)")
        })
}

/// How often a usage allowance resets; `Total` never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    Daily,
    Weekly,
    Monthly,
    Total,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Daily => "daily",
            Interval::Weekly => "weekly",
            Interval::Monthly => "monthly",
            Interval::Total => "total",
        }
    }

    /// "daily", "weekly", "monthly" or "total", ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Interval::Daily,
            Interval::Weekly,
            Interval::Monthly,
            Interval::Total,
        ]
        .into_iter()
        .find(|i| i.as_str().eq_ignore_ascii_case(s))
    }
}

/// A half-open span of time, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The calendar window holding `now_ms` in `tz`: the local day, the local week from Monday,
/// or the local month. `None` for `Total` (it has no window).
pub fn window(interval: Interval, tz: Tz, now_ms: i64) -> Option<Window> {
    let day = local_day(tz, now_ms);
    let (first, next) = match interval {
        Interval::Daily => (day, day.succ_opt()?),
        Interval::Weekly => {
            let back = u64::from(day.weekday().num_days_from_monday());
            let monday = day.checked_sub_days(Days::new(back))?;
            (monday, monday.checked_add_days(Days::new(7))?)
        }
        Interval::Monthly => {
            let first = day.with_day(1)?;
            let next = if day.month() == 12 {
                NaiveDate::from_ymd_opt(day.year().checked_add(1)?, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)?
            };
            (first, next)
        }
        Interval::Total => return None,
    };
    Some(Window {
        start_ms: day_start_ms(tz, first),
        end_ms: day_start_ms(tz, next),
    })
}

/// The local calendar date of an instant: the day `D` with
/// `day_start_ms(D) <= at_ms < day_start_ms(D + 1)` (see the module documentation).
pub fn local_day(tz: Tz, at_ms: i64) -> NaiveDate {
    let at = clamp(at_ms);
    let mut day = wall_date(wall_ms(tz, at));
    // The wall-clock date is right unless clocks went back across midnight (or a table is
    // stranger still): step to the day whose range holds the instant, a few days at most.
    for _ in 0..3 {
        match day.succ_opt() {
            Some(next) if day_start_ms(tz, next) <= at => day = next,
            _ => break,
        }
    }
    for _ in 0..3 {
        if day_start_ms(tz, day) <= at {
            break;
        }
        match day.pred_opt() {
            Some(prev) => day = prev,
            None => break,
        }
    }
    day
}

/// The first instant of a local day: local midnight; where midnight is repeated (clocks go
/// back across it), the earlier one; where midnight does not exist (clocks jump forward over
/// it), the first instant after the jump.
pub fn day_start_ms(tz: Tz, day: NaiveDate) -> i64 {
    let local = day.and_time(NaiveTime::MIN);
    let midnight = local.and_utc().timestamp_millis();
    match tz.offset_from_local_datetime(&local) {
        LocalResult::Single(offset) => midnight.saturating_sub(offset_ms(offset)),
        LocalResult::Ambiguous(a, b) => midnight
            .saturating_sub(offset_ms(a))
            .min(midnight.saturating_sub(offset_ms(b))),
        LocalResult::None => first_reaching(tz, midnight),
    }
}

/// A date as an integer key for the database: days since 0001-01-01 (that day is 1).
pub fn day_key(day: NaiveDate) -> i32 {
    day.num_days_from_ce()
}

/// The date of a [`day_key`]; `None` beyond the calendar's range.
pub fn day_from_key(key: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(key)
}

/// `[from_ms, to_ms)` cut at the starts of local days: each local day it touches with the
/// milliseconds of the span in that day, in order. The pieces are contiguous, none is empty,
/// and their lengths sum to `to_ms - from_ms`; empty when `to_ms <= from_ms`. One entry per
/// day, so a span of years is a few hundred entries per year.
pub fn split_by_day(tz: Tz, from_ms: i64, to_ms: i64) -> Vec<(NaiveDate, i64)> {
    let (from, to) = (clamp(from_ms), clamp(to_ms));
    let mut pieces = Vec::new();
    if to <= from {
        return pieces;
    }
    let mut day = local_day(tz, from);
    let mut at = from;
    while at < to {
        let Some(next_day) = day.succ_opt() else {
            pieces.push((day, to - at));
            break;
        };
        let end = day_start_ms(tz, next_day).min(to);
        // A day may be empty (Pacific/Apia skipped 2011-12-30): nothing to record then.
        if end > at {
            pieces.push((day, end - at));
            at = end;
        }
        day = next_day;
    }
    pieces
}

/// The length of the intersection of `[a0, a1)` and `[b0, b1)`; 0 when they do not meet.
pub fn overlap_ms(a0: i64, a1: i64, b0: i64, b1: i64) -> i64 {
    let start = a0.max(b0);
    let end = a1.min(b1);
    if end > start {
        end.saturating_sub(start)
    } else {
        0
    }
}

fn clamp(ms: i64) -> i64 {
    ms.clamp(MIN_MS, MAX_MS)
}

fn offset_ms(offset: impl Offset) -> i64 {
    i64::from(offset.fix().local_minus_utc()) * 1000
}

/// The wall-clock reading of an instant, as milliseconds on a clock with no timezone.
fn wall_ms(tz: Tz, at_ms: i64) -> i64 {
    let at = clamp(at_ms);
    let utc = DateTime::from_timestamp_millis(at)
        .map(|t| t.naive_utc())
        .unwrap_or_default();
    at + offset_ms(tz.offset_from_utc_datetime(&utc))
}

fn wall_date(wall_ms: i64) -> NaiveDate {
    match DateTime::from_timestamp_millis(wall_ms) {
        Some(t) => t.date_naive(),
        None if wall_ms < 0 => NaiveDate::MIN,
        None => NaiveDate::MAX,
    }
}

/// The first instant whose wall clock reads `wall` or later, for a `wall` inside a gap:
/// the moment clocks jumped over it. Offsets stay well within a day, so it lies within a
/// day of `wall` read as UTC.
fn first_reaching(tz: Tz, wall: i64) -> i64 {
    let mut below = wall.saturating_sub(DAY_MS);
    let mut reached = wall.saturating_add(DAY_MS);
    while reached - below > 1 {
        let mid = below + (reached - below) / 2;
        if wall_ms(tz, mid) >= wall {
            reached = mid;
        } else {
            below = mid;
        }
    }
    reached
}

#[cfg(test)]
mod tests;
