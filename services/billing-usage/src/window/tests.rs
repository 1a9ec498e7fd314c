//! Tests of the calendar arithmetic: concrete windows in zones with and without DST, odd
//! offsets and odd DST amounts, month and year ends, leap years, week boundaries; and
//! properties over random instants from 1970 to 2200 in a set of awkward zones.

use super::*;
use chrono::{SecondsFormat, TimeZone, Weekday};
use proptest::prelude::*;

use Interval::{Daily, Monthly, Total, Weekly};

const HOUR_MS: i64 = 3_600_000;

fn tz(name: &str) -> Tz {
    parse_timezone(name).unwrap()
}

fn at(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn show(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The window as readable UTC times.
fn win(interval: Interval, zone: &str, now: &str) -> (String, String) {
    let w = window(interval, tz(zone), at(now)).unwrap();
    (show(w.start_ms), show(w.end_ms))
}

fn span(start: &str, end: &str) -> (String, String) {
    (start.to_owned(), end.to_owned())
}

/// The first instant of a local day, as readable UTC time.
fn starts(zone: &str, y: i32, m: u32, d: u32) -> String {
    show(day_start_ms(tz(zone), date(y, m, d)))
}

/// The local day of a readable UTC time.
fn day_of(zone: &str, now: &str) -> NaiveDate {
    local_day(tz(zone), at(now))
}

fn len(interval: Interval, zone: &str, now: &str) -> i64 {
    let w = window(interval, tz(zone), at(now)).unwrap();
    w.end_ms - w.start_ms
}

#[test]
fn utc_windows() {
    let now = "2026-03-04T12:34:56Z";
    let daily = span("2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z");
    assert_eq!(win(Daily, "UTC", now), daily);
    let weekly = span("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z");
    assert_eq!(win(Weekly, "UTC", now), weekly);
    let monthly = span("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
    assert_eq!(win(Monthly, "UTC", now), monthly);
    assert_eq!(window(Total, tz("UTC"), at(now)), None);
}

#[test]
fn berlin_spring_forward_day_has_23_hours() {
    let now = "2026-03-29T10:00:00Z";
    let daily = span("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z");
    assert_eq!(win(Daily, "Europe/Berlin", now), daily);
    let weekly = span("2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z");
    assert_eq!(win(Weekly, "Europe/Berlin", now), weekly);
    let monthly = span("2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z");
    assert_eq!(win(Monthly, "Europe/Berlin", now), monthly);
    let pieces = split_by_day(
        tz("Europe/Berlin"),
        at("2026-03-28T12:00:00Z"),
        at("2026-03-30T12:00:00Z"),
    );
    let expected = vec![
        (date(2026, 3, 28), 11 * HOUR_MS),
        (date(2026, 3, 29), 23 * HOUR_MS),
        (date(2026, 3, 30), 14 * HOUR_MS),
    ];
    assert_eq!(pieces, expected);
}

#[test]
fn berlin_fall_back_day_has_25_hours() {
    let now = "2026-10-25T12:00:00Z";
    let daily = span("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z");
    assert_eq!(win(Daily, "Europe/Berlin", now), daily);
    let weekly = span("2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z");
    assert_eq!(win(Weekly, "Europe/Berlin", now), weekly);
    let monthly = span("2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z");
    assert_eq!(win(Monthly, "Europe/Berlin", now), monthly);
    // 02:30 happens twice that night; both belong to the 25th.
    let ber = "Europe/Berlin";
    assert_eq!(day_of(ber, "2026-10-25T00:30:00Z"), date(2026, 10, 25));
    assert_eq!(day_of(ber, "2026-10-25T01:30:00Z"), date(2026, 10, 25));
}

#[test]
fn new_york_new_year_and_spring_forward() {
    // 22:00 on Wednesday 2025-12-31 in New York.
    let now = "2026-01-01T03:00:00Z";
    let daily = span("2025-12-31T05:00:00Z", "2026-01-01T05:00:00Z");
    assert_eq!(win(Daily, "America/New_York", now), daily);
    let weekly = span("2025-12-29T05:00:00Z", "2026-01-05T05:00:00Z");
    assert_eq!(win(Weekly, "America/New_York", now), weekly);
    let monthly = span("2025-12-01T05:00:00Z", "2026-01-01T05:00:00Z");
    assert_eq!(win(Monthly, "America/New_York", now), monthly);
    let spring = span("2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z");
    let now = "2026-03-08T12:00:00Z";
    assert_eq!(win(Daily, "America/New_York", now), spring);
}

#[test]
fn half_and_quarter_hour_offsets() {
    // 01:30 on 1 February in Kolkata (+5:30).
    let now = "2026-01-31T20:00:00Z";
    let daily = span("2026-01-31T18:30:00Z", "2026-02-01T18:30:00Z");
    assert_eq!(win(Daily, "Asia/Kolkata", now), daily);
    let monthly = span("2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z");
    assert_eq!(win(Monthly, "Asia/Kolkata", now), monthly);
    let january = span("2025-12-31T18:30:00Z", "2026-01-31T18:30:00Z");
    let before = "2026-01-31T18:29:59.999Z";
    assert_eq!(win(Monthly, "Asia/Kolkata", before), january);
    // Kathmandu (+5:45): Sunday 23:59:59.999 and Monday 00:00 local.
    let kathmandu = tz("Asia/Kathmandu");
    let sunday = "2026-03-01T18:14:59.999Z";
    let monday = "2026-03-01T18:15:00Z";
    assert_eq!(local_day(kathmandu, at(sunday)).weekday(), Weekday::Sun);
    assert_eq!(local_day(kathmandu, at(monday)), date(2026, 3, 2));
    let last_week = span("2026-02-22T18:15:00Z", "2026-03-01T18:15:00Z");
    assert_eq!(win(Weekly, "Asia/Kathmandu", sunday), last_week);
    let this_week = span("2026-03-01T18:15:00Z", "2026-03-08T18:15:00Z");
    assert_eq!(win(Weekly, "Asia/Kathmandu", monday), this_week);
}

#[test]
fn week_boundary_in_utc() {
    let sunday = "2026-03-01T23:59:59.999Z";
    let last_week = span("2026-02-23T00:00:00Z", "2026-03-02T00:00:00Z");
    assert_eq!(win(Weekly, "UTC", sunday), last_week);
    let monday = "2026-03-02T00:00:00Z";
    let this_week = span("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z");
    assert_eq!(win(Weekly, "UTC", monday), this_week);
}

#[test]
fn month_ends() {
    let january = span("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
    assert_eq!(win(Monthly, "UTC", "2026-01-31T23:59:59.999Z"), january);
    let february = span("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z");
    assert_eq!(win(Monthly, "UTC", "2026-02-01T00:00:00Z"), february);
    let december = span("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z");
    assert_eq!(win(Monthly, "UTC", "2026-12-31T23:59:59.999Z"), december);
    let next_january = span("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z");
    assert_eq!(win(Monthly, "UTC", "2027-01-01T00:00:00Z"), next_january);
    // 00:30 on 1 January 2027 in Berlin.
    let berlin_january = span("2026-12-31T23:00:00Z", "2027-01-31T23:00:00Z");
    let now = "2026-12-31T23:30:00Z";
    assert_eq!(win(Monthly, "Europe/Berlin", now), berlin_january);
}

#[test]
fn leap_years() {
    let leap_day = span("2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z");
    assert_eq!(win(Daily, "UTC", "2028-02-29T12:00:00Z"), leap_day);
    assert_eq!(len(Monthly, "UTC", "2028-02-10T00:00:00Z"), 29 * DAY_MS);
    // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
    assert_eq!(NaiveDate::from_ymd_opt(2100, 2, 29), None);
    let end_of_february = span("2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z");
    assert_eq!(win(Daily, "UTC", "2100-02-28T12:00:00Z"), end_of_february);
    assert_eq!(len(Monthly, "UTC", "2100-02-10T00:00:00Z"), 28 * DAY_MS);
    assert_eq!(len(Monthly, "UTC", "2000-02-10T00:00:00Z"), 29 * DAY_MS);
}

#[test]
fn day_keys() {
    assert_eq!(day_key(date(1, 1, 1)), 1);
    assert_eq!(day_key(date(1970, 1, 1)), 719_163);
    let leap_day = date(2028, 2, 29);
    assert_eq!(day_from_key(day_key(leap_day)), Some(leap_day));
    assert_eq!(day_from_key(day_key(date(2028, 3, 1)) - 1), Some(leap_day));
    assert_eq!(day_from_key(i32::MAX), None);
}

#[test]
fn midnight_gaps_and_repeats() {
    // Santiago jumps from Saturday 24:00 to Sunday 01:00: Sunday starts at the jump.
    let scl = "America/Santiago";
    assert_eq!(starts(scl, 2026, 9, 5), "2026-09-05T04:00:00Z");
    assert_eq!(starts(scl, 2026, 9, 6), "2026-09-06T04:00:00Z");
    assert_eq!(starts(scl, 2026, 9, 7), "2026-09-07T03:00:00Z");
    assert_eq!(day_of(scl, "2026-09-06T03:59:59.999Z"), date(2026, 9, 5));
    assert_eq!(day_of(scl, "2026-09-06T04:00:00Z"), date(2026, 9, 6));
    // …and goes back from Sunday 00:00 to Saturday 23:00: a 25-hour Saturday.
    assert_eq!(len(Daily, scl, "2026-04-04T12:00:00Z"), 25 * HOUR_MS);
    // Beirut jumps from 00:00 to 01:00 on the last Sunday of March.
    let bey = "Asia/Beirut";
    assert_eq!(starts(bey, 2026, 3, 29), "2026-03-28T22:00:00Z");
    assert_eq!(len(Daily, bey, "2026-03-29T12:00:00Z"), 23 * HOUR_MS);
    // Havana goes back from 01:00 to 00:00: midnight happens twice, the day starts at the
    // first one; in March it jumps from 00:00 to 01:00.
    let hav = "America/Havana";
    assert_eq!(starts(hav, 2026, 11, 1), "2026-11-01T04:00:00Z");
    assert_eq!(starts(hav, 2026, 11, 2), "2026-11-02T05:00:00Z");
    assert_eq!(day_of(hav, "2026-11-01T05:30:00Z"), date(2026, 11, 1));
    assert_eq!(starts(hav, 2026, 3, 8), "2026-03-08T05:00:00Z");
}

#[test]
fn clocks_back_across_midnight() {
    // St. John's (1987–2010) went back from 00:01 NDT to 23:01 NST the day before: the
    // wall clock reads 6 November again for an hour after 7 November began. That hour
    // belongs to the 7th, so that days tile time; the 7th is 25 hours long.
    let st_johns = tz("America/St_Johns");
    let seventh = day_start_ms(st_johns, date(2010, 11, 7));
    assert_eq!(show(seventh), "2010-11-07T02:30:00Z");
    let repeated = at("2010-11-07T03:00:00Z");
    let wall = st_johns
        .timestamp_millis_opt(repeated)
        .unwrap()
        .date_naive();
    assert_eq!(wall, date(2010, 11, 6));
    assert_eq!(local_day(st_johns, repeated), date(2010, 11, 7));
    let day = span("2010-11-07T02:30:00Z", "2010-11-08T03:30:00Z");
    assert_eq!(win(Daily, "America/St_Johns", "2010-11-07T03:00:00Z"), day);
    let pieces = split_by_day(st_johns, seventh - HOUR_MS, seventh + HOUR_MS);
    let expected = vec![(date(2010, 11, 6), HOUR_MS), (date(2010, 11, 7), HOUR_MS)];
    assert_eq!(pieces, expected);
}

#[test]
fn odd_dst_amounts() {
    // Lord Howe Island moves its clocks by 30 minutes, the Chatham Islands (+12:45) by 60.
    let lord_howe = len(Daily, "Australia/Lord_Howe", "2026-10-04T06:00:00Z");
    assert_eq!(lord_howe, 23 * HOUR_MS + HOUR_MS / 2);
    let lord_howe = len(Daily, "Australia/Lord_Howe", "2026-04-05T06:00:00Z");
    assert_eq!(lord_howe, 24 * HOUR_MS + HOUR_MS / 2);
    let chatham = len(Daily, "Pacific/Chatham", "2026-09-27T06:00:00Z");
    assert_eq!(chatham, 23 * HOUR_MS);
}

#[test]
fn apia_skipped_a_day() {
    // Samoa went from Thursday 2011-12-29 23:59:59 straight to Saturday 2011-12-31 00:00.
    let apia = tz("Pacific/Apia");
    let skipped = day_start_ms(apia, date(2011, 12, 30));
    assert_eq!(skipped, day_start_ms(apia, date(2011, 12, 31)));
    assert_eq!(local_day(apia, skipped), date(2011, 12, 31));
    let days: Vec<NaiveDate> = split_by_day(apia, skipped - HOUR_MS, skipped + HOUR_MS)
        .into_iter()
        .map(|(day, _)| day)
        .collect();
    assert_eq!(days, vec![date(2011, 12, 29), date(2011, 12, 31)]);
    let week = window(Weekly, apia, skipped).unwrap();
    assert_eq!(week.end_ms - week.start_ms, 6 * DAY_MS);
}

#[test]
fn split_by_day_over_years_and_empty_spans() {
    let utc = tz("UTC");
    let (from, to) = (at("2020-01-01T00:00:00Z"), at("2030-01-01T00:00:00Z"));
    let pieces = split_by_day(utc, from, to);
    assert_eq!(pieces.len(), 3653);
    assert!(pieces.iter().all(|&(_, ms)| ms == DAY_MS));
    assert_eq!(pieces.last().map(|p| p.0), Some(date(2029, 12, 31)));
    assert_eq!(split_by_day(utc, to, from), vec![]);
    assert_eq!(split_by_day(utc, from, from), vec![]);
    let short = split_by_day(utc, from + 5, from + 7);
    assert_eq!(short, vec![(date(2020, 1, 1), 2)]);
}

#[test]
fn extreme_instants_do_not_panic() {
    for zone in [
        "UTC",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "Europe/Berlin",
    ] {
        let zone = tz(zone);
        for ms in [
            i64::MIN,
            MIN_MS - 1,
            MIN_MS,
            0,
            MAX_MS,
            MAX_MS + 1,
            i64::MAX,
        ] {
            for interval in [Daily, Weekly, Monthly] {
                let w = window(interval, zone, ms).unwrap();
                assert!(w.start_ms <= ms.clamp(MIN_MS, MAX_MS) && w.start_ms < w.end_ms);
            }
            let day = local_day(zone, ms);
            assert_eq!(day_from_key(day_key(day)), Some(day));
            assert!(split_by_day(zone, ms, ms.saturating_add(3 * DAY_MS)).len() <= 4);
        }
        day_start_ms(zone, NaiveDate::MIN);
        day_start_ms(zone, NaiveDate::MAX);
        assert_eq!(split_by_day(zone, i64::MAX - 10, i64::MAX), vec![]);
    }
    assert_eq!(overlap_ms(i64::MIN, i64::MAX, i64::MIN, i64::MAX), i64::MAX);
}

#[test]
fn overlaps() {
    assert_eq!(overlap_ms(0, 10, 5, 20), 5);
    assert_eq!(overlap_ms(5, 20, 0, 10), 5);
    assert_eq!(overlap_ms(0, 10, 10, 20), 0);
    assert_eq!(overlap_ms(0, 10, 2, 3), 1);
    assert_eq!(overlap_ms(10, 0, 0, 10), 0);
}

#[test]
fn timezone_names() {
    assert_eq!(parse_timezone("UTC"), Ok(Tz::UTC));
    assert_eq!(parse_timezone("utc"), Ok(Tz::UTC));
    assert_eq!(
        parse_timezone("Europe/Berlin"),
        Ok(chrono_tz::Europe::Berlin)
    );
    assert_eq!(
        parse_timezone("europe/BERLIN"),
        Ok(chrono_tz::Europe::Berlin)
    );
    assert_eq!(
        parse_timezone(" Asia/Kolkata "),
        Ok(chrono_tz::Asia::Kolkata)
    );
    let message = "unknown timezone \"Mars/Base\" (use an IANA name such as Europe/Berlin or UTC)";
    assert_eq!(parse_timezone("Mars/Base"), Err(message.to_owned()));
    assert!(parse_timezone("").is_err());
    assert!(parse_timezone("+02:00").is_err());
}

#[test]
fn interval_names() {
    for interval in [Daily, Weekly, Monthly, Total] {
        assert_eq!(Interval::parse(interval.as_str()), Some(interval));
    }
    assert_eq!(Interval::parse("Weekly"), Some(Weekly));
    assert_eq!(Interval::parse("hourly"), None);
    assert_eq!(Interval::parse(""), None);
}

const ZONES: [&str; 12] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Beirut",
    "America/Havana",
    "Australia/Adelaide",
    "America/St_Johns",
];

fn zone() -> impl Strategy<Value = Tz> {
    proptest::sample::select(ZONES.to_vec()).prop_map(tz)
}

/// 1970-01-01 up to 2201-01-01.
fn instant() -> impl Strategy<Value = i64> {
    0..at("2201-01-01T00:00:00Z")
}

/// A zone and an instant in it: anywhere, or (half the time) within three hours of a local
/// midnight, where the clocks of the awkward zones tend to change.
fn zoned_instant() -> impl Strategy<Value = (Tz, i64)> {
    let near = -3 * HOUR_MS..3 * HOUR_MS;
    (zone(), instant(), proptest::option::of(near)).prop_map(|(zone, at, near)| match near {
        Some(by) => (zone, day_start_ms(zone, local_day(zone, at)) + by),
        None => (zone, at),
    })
}

proptest! {
    #[test]
    fn windows_hold_their_instant((zone, now) in zoned_instant()) {
        let today = local_day(zone, now);
        for interval in [Daily, Weekly, Monthly] {
            let w = window(interval, zone, now).unwrap();
            prop_assert!(w.start_ms <= now && now < w.end_ms, "{interval:?} {w:?}");
            prop_assert_eq!(window(interval, zone, w.start_ms), Some(w));
            prop_assert_eq!(window(interval, zone, w.end_ms).map(|n| n.start_ms), Some(w.end_ms));
            let first = local_day(zone, w.start_ms);
            prop_assert_eq!(day_start_ms(zone, first), w.start_ms);
            let length = w.end_ms - w.start_ms;
            match interval {
                Daily => {
                    prop_assert_eq!(first, today);
                    prop_assert!((22 * HOUR_MS..=26 * HOUR_MS).contains(&length));
                }
                Weekly => {
                    prop_assert_eq!(first.weekday(), Weekday::Mon);
                    prop_assert!((0..7).contains(&(today - first).num_days()));
                    let (low, high) = (7 * DAY_MS - DAY_MS / 10, 7 * DAY_MS + DAY_MS / 10);
                    prop_assert!((low..=high).contains(&length));
                }
                Monthly => {
                    prop_assert_eq!(first.day(), 1);
                    prop_assert_eq!((first.year(), first.month()), (today.year(), today.month()));
                    // St. John's moved its clocks by two hours in 1988.
                    let (low, high) = (28 * DAY_MS - 2 * HOUR_MS, 31 * DAY_MS + 2 * HOUR_MS);
                    prop_assert!((low..=high).contains(&length));
                }
                Total => {}
            }
        }
    }

    #[test]
    fn local_days_tile_time((zone, now) in zoned_instant()) {
        let day = local_day(zone, now);
        prop_assert!(day_start_ms(zone, day) <= now);
        prop_assert!(now < day_start_ms(zone, day.succ_opt().unwrap()));
        prop_assert_eq!(day_from_key(day_key(day)), Some(day));
    }

    #[test]
    fn split_by_day_tiles_the_span(
        (zone, from) in zoned_instant(),
        length in prop_oneof![0..3 * DAY_MS, 0..3 * 366 * DAY_MS],
    ) {
        let pieces = split_by_day(zone, from, from + length);
        prop_assert_eq!(pieces.is_empty(), length == 0);
        prop_assert_eq!(pieces.iter().map(|p| p.1).sum::<i64>(), length);
        let mut start = from;
        for (i, &(day, ms)) in pieces.iter().enumerate() {
            prop_assert_eq!(day, local_day(zone, start));
            prop_assert!(ms > 0 && ms <= 26 * HOUR_MS);
            start += ms;
            if i + 1 < pieces.len() {
                prop_assert_eq!(start, day_start_ms(zone, day.succ_opt().unwrap()));
                prop_assert!(pieces[i + 1].0 > day);
            }
        }
    }

    #[test]
    fn overlap_is_symmetric_and_bounded(
        a0 in -1000i64..1000, a1 in -1000i64..1000, b0 in -1000i64..1000, b1 in -1000i64..1000,
    ) {
        let o = overlap_ms(a0, a1, b0, b1);
        prop_assert_eq!(o, overlap_ms(b0, b1, a0, a1));
        prop_assert!(o >= 0 && o <= (a1 - a0).max(0) && o <= (b1 - b0).max(0));
        let brute = (a0.max(b0)..a1.min(b1)).count() as i64;
        prop_assert_eq!(o, brute);
    }
}
