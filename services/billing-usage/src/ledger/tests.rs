//! Tests of the fold: concrete lifecycles (complete, open, lost, failed before running,
//! ended first, events after the end, same-instant transitions) and properties over
//! generated event sequences: any order and any duplicates fold to the same charge, and the
//! charge's intervals, phase totals and charged time are consistent with one another.

use super::*;
use proptest::prelude::*;

use Kind::{Created, Deleted, Failed, Lost, Paused, Resumed, Running, Stopped};

fn event(id: &str, kind: Kind, at_ms: i64) -> Event {
    Event {
        id: id.to_owned(),
        kind,
        at_ms,
    }
}

/// Events with ids in the order given.
fn events(list: &[(Kind, i64)]) -> Vec<Event> {
    list.iter()
        .enumerate()
        .map(|(i, &(kind, at))| event(&format!("e{i:03}"), kind, at))
        .collect()
}

fn charge(list: &[(Kind, i64)]) -> Charge {
    fold(&events(list)).unwrap()
}

fn phases(starting: i64, running: i64, paused: i64, stopped: i64, lost: i64) -> PhaseTotals {
    PhaseTotals {
        starting_ms: starting,
        running_ms: running,
        paused_ms: paused,
        stopped_ms: stopped,
        lost_ms: lost,
    }
}

#[test]
fn a_full_lifecycle_is_charged_from_creation_to_deletion() {
    let c = charge(&[
        (Created, 0),
        (Running, 10),
        (Paused, 100),
        (Resumed, 200),
        (Stopped, 300),
        (Deleted, 400),
    ]);
    let expected = Charge {
        start_ms: 0,
        end_ms: Some(400),
        ended_by: Some(Deleted),
        intervals: vec![(0, Some(400))],
        phases: phases(10, 190, 100, 100, 0),
        phase: None,
        last_at_ms: 400,
        ran: true,
    };
    assert_eq!(c, expected);
    assert!(!c.is_open() && !c.accruing());
    assert_eq!(c.total_ms(1_000), 400);
    assert_eq!(c.charged_ms(50, 150, 1_000), 100);
    assert_eq!(c.charged_ms(350, 1_000, 1_000), 50);
    assert_eq!(c.intervals_until(1_000), vec![(0, 400)]);
}

#[test]
fn an_open_session_accrues_up_to_now() {
    let c = charge(&[(Created, 1_000), (Running, 1_500)]);
    assert!(c.is_open() && c.accruing());
    assert_eq!(c.phase, Some(Phase::Running));
    assert_eq!(c.intervals, vec![(1_000, None)]);
    // The running phase's time since the last event is not in the totals.
    assert_eq!(c.phases, phases(500, 0, 0, 0, 0));
    assert_eq!(c.last_at_ms, 1_500);
    assert_eq!(c.total_ms(4_000), 3_000);
    assert_eq!(c.charged_ms(0, 2_000, 4_000), 1_000);
    assert_eq!(c.charged_ms(0, 10_000, 4_000), 3_000);
    assert_eq!(c.charged_ms(3_000, 10_000, 4_000), 1_000);
    assert_eq!(c.charged_ms(5_000, 10_000, 4_000), 0);
    // A clock behind the session's start charges nothing.
    assert_eq!(c.charged_ms(0, 10_000, 500), 0);
    assert_eq!(c.total_ms(500), 0);
    assert_eq!(c.intervals_until(4_000), vec![(1_000, 4_000)]);
    assert_eq!(c.intervals_until(1_000), vec![]);
}

#[test]
fn lost_time_is_not_charged() {
    let c = charge(&[
        (Created, 0),
        (Running, 10),
        (Lost, 50),
        (Resumed, 80),
        (Deleted, 100),
    ]);
    assert_eq!(c.intervals, vec![(0, Some(50)), (80, Some(100))]);
    assert_eq!(c.phases, phases(10, 60, 0, 0, 30));
    assert_eq!(c.total_ms(1_000), 70);
    assert_eq!(c.charged_ms(40, 90, 1_000), 20);
    // Lost and then deleted: charged up to the loss.
    let c = charge(&[(Created, 0), (Lost, 50), (Deleted, 90)]);
    assert_eq!(c.intervals, vec![(0, Some(50))]);
    assert_eq!(c.phases, phases(50, 0, 0, 0, 40));
    // Lost and still open: not charging.
    let c = charge(&[(Created, 0), (Running, 5), (Lost, 50)]);
    assert!(c.is_open() && !c.accruing());
    assert_eq!(c.phase, Some(Phase::Lost));
    assert_eq!(c.total_ms(1_000), 50);
    assert_eq!(c.intervals_until(1_000), vec![(0, 50)]);
    // A creation while lost changes nothing; a pause reopens.
    let c = charge(&[(Created, 0), (Lost, 50), (Created, 60), (Paused, 70)]);
    assert_eq!(c.intervals, vec![(0, Some(50)), (70, None)]);
    assert_eq!(c.phase, Some(Phase::Paused));
}

#[test]
fn a_session_that_failed_before_running_is_free() {
    let c = charge(&[(Created, 0), (Failed, 30)]);
    assert_eq!(c.intervals, vec![]);
    assert_eq!(c.phases, phases(30, 0, 0, 0, 0));
    assert_eq!(
        (c.end_ms, c.ended_by, c.ran),
        (Some(30), Some(Failed), false)
    );
    assert_eq!(c.total_ms(1_000), 0);
    // Once it has run, a failure ends the charge like a deletion.
    let c = charge(&[(Created, 0), (Running, 10), (Failed, 30)]);
    assert_eq!(c.intervals, vec![(0, Some(30))]);
    // Deleted before running is charged: the user held the session.
    let c = charge(&[(Created, 0), (Deleted, 30)]);
    assert_eq!(c.intervals, vec![(0, Some(30))]);
    // A resumed, paused or stopped session has run (its running event may be late).
    let c = charge(&[(Created, 0), (Resumed, 10), (Failed, 30)]);
    assert_eq!(c.intervals, vec![(0, Some(30))]);
    let c = charge(&[(Created, 0), (Failed, 30)]);
    assert_eq!(c.intervals, vec![]);
}

#[test]
fn an_end_first_is_an_empty_ended_charge() {
    for kind in [Deleted, Failed] {
        let c = charge(&[(kind, 70)]);
        let expected = Charge {
            start_ms: 70,
            end_ms: Some(70),
            ended_by: Some(kind),
            intervals: vec![],
            phases: PhaseTotals::default(),
            phase: None,
            last_at_ms: 70,
            ran: false,
        };
        assert_eq!(c, expected);
    }
}

#[test]
fn the_first_event_sets_the_phase() {
    let cases = [
        (Created, Some(Phase::Starting), true),
        (Running, Some(Phase::Running), true),
        (Resumed, Some(Phase::Running), true),
        (Paused, Some(Phase::Paused), true),
        (Stopped, Some(Phase::Stopped), true),
        (Lost, Some(Phase::Lost), false),
    ];
    for (kind, phase, accruing) in cases {
        let c = charge(&[(kind, 5)]);
        assert_eq!(
            (c.phase, c.accruing(), c.start_ms),
            (phase, accruing, 5),
            "{kind:?}"
        );
        assert_eq!(c.ran, matches!(kind, Running | Resumed | Paused | Stopped));
    }
    // Events arriving before the creation was delivered: the creation still starts it.
    let c = charge(&[(Running, 10), (Created, 0)]);
    assert_eq!((c.start_ms, c.intervals.clone()), (0, vec![(0, None)]));
    assert_eq!(c.phases, phases(10, 0, 0, 0, 0));
}

#[test]
fn events_after_the_end_are_ignored() {
    let c = charge(&[(Created, 0), (Deleted, 100), (Running, 150), (Failed, 200)]);
    assert_eq!(
        (c.end_ms, c.ended_by, c.last_at_ms),
        (Some(100), Some(Deleted), 100)
    );
    assert_eq!(c.intervals, vec![(0, Some(100))]);
    assert!(!c.ran);
}

#[test]
fn order_and_duplicates_do_not_matter() {
    let list = events(&[
        (Created, 0),
        (Running, 10),
        (Lost, 40),
        (Resumed, 60),
        (Deleted, 90),
    ]);
    let mut scrambled: Vec<Event> = list.iter().rev().cloned().collect();
    scrambled.extend(list.iter().step_by(2).cloned());
    assert_eq!(fold(&scrambled), fold(&list));
    // Copies of one id that disagree: the earliest copy is kept, whatever the order.
    let a = [
        event("a", Created, 0),
        event("b", Running, 10),
        event("b", Running, 20),
    ];
    let b = [a[2].clone(), a[1].clone(), a[0].clone()];
    assert_eq!(fold(&a), fold(&b));
    assert_eq!(fold(&a).map(|c| c.last_at_ms), Some(10));
}

#[test]
fn a_loss_and_return_at_one_instant_keep_one_interval() {
    let c = charge(&[(Created, 0), (Lost, 50), (Resumed, 50), (Deleted, 100)]);
    assert_eq!(c.intervals, vec![(0, Some(100))]);
    // Created and deleted at once: nothing charged, nothing empty recorded.
    let c = charge(&[(Created, 7), (Deleted, 7)]);
    assert_eq!(c.intervals, vec![]);
}

#[test]
fn no_events_no_charge() {
    assert_eq!(fold(&[]), None);
}

#[test]
fn names_and_serialization() {
    for kind in Kind::ALL {
        assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
    }
    assert_eq!(Kind::parse("Deleted"), Some(Deleted));
    assert_eq!(Kind::parse("exploded"), None);
    let c = charge(&[(Created, 0), (Running, 10), (Lost, 20)]);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["phase"], "lost");
    assert_eq!(json["intervals"], serde_json::json!([[0, 20]]));
    let back: Charge = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
    let open = charge(&[(Created, 0)]);
    let json = serde_json::to_string(&open).unwrap();
    assert_eq!(serde_json::from_str::<Charge>(&json).unwrap(), open);
}

#[test]
fn extreme_times_do_not_panic() {
    let c = charge(&[
        (Created, i64::MIN),
        (Running, 0),
        (Lost, 1),
        (Paused, i64::MAX - 1),
    ]);
    assert_eq!(c.phases.starting_ms, i64::MAX);
    assert_eq!(c.total_ms(i64::MAX), i64::MAX);
    assert_eq!(c.charged_ms(i64::MIN, i64::MAX, i64::MAX), i64::MAX);
    assert_eq!(c.charged_ms(i64::MAX, i64::MIN, 0), 0);
    assert_eq!(c.intervals_until(i64::MIN).len(), 1);
    let c = charge(&[(Running, i64::MAX), (Deleted, i64::MIN)]);
    assert_eq!((c.end_ms, c.intervals), (Some(i64::MIN), vec![]));
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        1 => Just(Created),
        4 => Just(Running),
        2 => Just(Paused),
        2 => Just(Resumed),
        2 => Just(Stopped),
        1 => Just(Deleted),
        1 => Just(Failed),
        1 => Just(Lost),
    ]
}

/// A plausible event sequence: usually a creation first, then transitions at non-decreasing
/// times (often at the same instant).
fn lifecycle() -> impl Strategy<Value = Vec<Event>> {
    let steps = proptest::collection::vec((kind(), prop_oneof![Just(0i64), 0i64..10_000]), 0..14);
    (
        proptest::bool::weighted(0.8),
        -1_000_000i64..1_000_000,
        steps,
    )
        .prop_map(|(created, mut at, steps)| {
            let mut list = Vec::new();
            if created {
                list.push((Created, at));
            }
            for (kind, gap) in steps {
                at += gap;
                list.push((kind, at));
            }
            if list.is_empty() {
                list.push((Created, at));
            }
            events(&list)
        })
}

/// The same events, shuffled, with some repeated.
fn delivered(events: Vec<Event>) -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
    let repeats = proptest::collection::vec(any::<proptest::sample::Index>(), 0..6);
    (Just(events.clone()), repeats).prop_flat_map(|(events, repeats)| {
        let mut copies = events.clone();
        copies.extend(
            repeats
                .iter()
                .map(|i| events[i.index(events.len())].clone()),
        );
        (Just(events), Just(copies).prop_shuffle())
    })
}

proptest! {
    #[test]
    fn extending_a_charge_equals_folding_everything(
        (events, copies) in lifecycle().prop_flat_map(delivered),
        cut in 0usize..64,
    ) {
        let mut times: Vec<i64> = events.iter().map(|e| e.at_ms).collect();
        times.sort_unstable();
        let t = times[cut % times.len()];
        let (before, after): (Vec<Event>, Vec<Event>) =
            copies.iter().cloned().partition(|e| e.at_ms <= t);
        let whole = fold(&events);
        match fold(&before) {
            Some(prefix) => prop_assert_eq!(extend(&prefix, &after), whole),
            None => prop_assert!(before.is_empty()),
        }
        // An event not strictly later is refused: the caller folds everything.
        if let Some(prefix) = fold(&before) {
            prop_assert_eq!(extend(&prefix, &before), None);
        }
    }

    #[test]
    fn fold_ignores_order_and_duplicates((events, copies) in lifecycle().prop_flat_map(delivered)) {
        prop_assert_eq!(fold(&copies), fold(&events));
    }

    #[test]
    fn charges_are_consistent(
        events in lifecycle(),
        cuts in proptest::array::uniform3(-1_100_000i64..1_300_000),
        now in -1_100_000i64..1_300_000,
    ) {
        let c = fold(&events).unwrap();
        let p = &c.phases;
        let phase_sum = p.starting_ms + p.running_ms + p.paused_ms + p.stopped_ms + p.lost_ms;
        prop_assert_eq!(phase_sum, c.last_at_ms - c.start_ms);
        prop_assert!(events.iter().all(|e| e.at_ms >= c.start_ms));
        prop_assert_eq!(c.is_open(), c.phase.is_some());
        prop_assert_eq!(c.end_ms.is_some(), c.ended_by.is_some());
        prop_assert!(c.end_ms.is_none_or(|end| end == c.last_at_ms));
        if c.ended_by == Some(Failed) && !c.ran {
            prop_assert!(c.intervals.is_empty());
        }
        // Sorted, disjoint, not empty, within [start, end]; only the last open, and only
        // while the session is open and in a charged phase.
        let mut previous_end = c.start_ms;
        for (i, &(start, end)) in c.intervals.iter().enumerate() {
            prop_assert!(start >= previous_end);
            match end {
                Some(end) => {
                    prop_assert!(end > start);
                    prop_assert!(end <= c.end_ms.unwrap_or(c.last_at_ms));
                    previous_end = end;
                }
                None => {
                    prop_assert_eq!(i + 1, c.intervals.len());
                    prop_assert!(c.is_open());
                    prop_assert!(c.phase.is_some_and(Phase::charged));
                }
            }
        }
        prop_assert_eq!(c.accruing(), c.intervals.last().is_some_and(|i| i.1.is_none()));
        // Charged time adds up over a split point and never exceeds the span.
        let mut cuts = cuts;
        cuts.sort();
        let [a, b, d] = cuts;
        let whole = c.charged_ms(a, d, now);
        prop_assert_eq!(c.charged_ms(a, b, now) + c.charged_ms(b, d, now), whole);
        prop_assert!(whole >= 0 && whole <= d - a);
        prop_assert_eq!(c.charged_ms(d, a, now), 0);
        // The total is the closed intervals plus the open one up to now.
        let closed: i64 = c.intervals.iter().filter_map(|&(s, e)| e.map(|e| e - s)).sum();
        let open = c.intervals.iter().find(|i| i.1.is_none()).map_or(0, |&(s, _)| (now - s).max(0));
        prop_assert_eq!(c.total_ms(now), closed + open);
        prop_assert_eq!(c.charged_ms(i64::MIN, i64::MAX, now), c.total_ms(now));
        let until: i64 = c.intervals_until(now).iter().map(|&(s, e)| e - s).sum();
        prop_assert_eq!(until, c.total_ms(now));
        prop_assert!(c.intervals_until(now).iter().all(|&(s, e)| e > s));
    }
}
