//! The ledger on SQLite and PostgreSQL: ingestion is idempotent and order-insensitive, running
//! totals agree with the events, open sessions are charged up to now, per-group subjects share,
//! concurrent deliveries never count twice, and a new timezone re-buckets the days.

use atrium_billing_usage::ledger::Kind;
use atrium_billing_usage::migration::Migrator;
use atrium_billing_usage::store::{NewEvent, Store, group_subject, user_subject};
use atrium_billing_usage::window::{self, Interval, Window};
use atrium_service_kit::testing::{Backend, TestDatabase};
use chrono::{TimeZone, Utc};

const HOUR: i64 = 3_600_000;

async fn open(db: &TestDatabase, tz: &str) -> Store {
    let conn = atrium_service_kit::db::connect_and_migrate::<Migrator>(&db.url, "bu-test")
        .await
        .expect("migrate");
    Store::open(conn, window::parse_timezone(tz).expect("tz"))
        .await
        .expect("open ledger")
}

async fn fresh(backend: Backend) -> (Store, TestDatabase) {
    let db = TestDatabase::new(backend).await.expect("test database");
    (open(&db, "UTC").await, db)
}

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

struct Session {
    id: String,
    user: String,
    groups: Vec<String>,
    workspace: String,
}

impl Session {
    fn new(user: &str, groups: &[&str]) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            user: user.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            workspace: "7b0f7c52-8c5e-4a57-9b3c-6f2c1f1e0a01".into(),
        }
    }

    fn event(&self, kind: Kind, at_ms: i64) -> NewEvent {
        NewEvent {
            id: id(),
            session_id: self.id.clone(),
            kind,
            at_ms,
            user_id: self.user.clone(),
            username: "someone".into(),
            workspace_id: self.workspace.clone(),
            agent_id: "agent-1".into(),
            zone_id: String::new(),
            group_ids: self.groups.clone(),
        }
    }
}

fn at(y: i32, m: u32, d: u32, h: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid time")
        .timestamp_millis()
}

const USER_A: &str = "0a7e0000-0000-4000-8000-00000000000a";
const USER_B: &str = "0b7e0000-0000-4000-8000-00000000000b";
const GROUP: &str = "96000000-0000-4000-8000-000000000001";

fn backends() -> Vec<Backend> {
    vec![Backend::Sqlite, Backend::Postgres]
}

#[tokio::test]
async fn replays_and_duplicates_change_nothing_twice() {
    for backend in backends() {
        let (store, _db) = fresh(backend).await;
        let s = Session::new(USER_A, &[GROUP]);
        let events = vec![
            s.event(Kind::Created, at(2026, 11, 2, 9)),
            s.event(Kind::Running, at(2026, 11, 2, 9) + 5_000),
            s.event(Kind::Paused, at(2026, 11, 2, 10)),
            s.event(Kind::Deleted, at(2026, 11, 2, 12)),
        ];
        let first = store.ingest(events.clone()).await.expect("ingest");
        assert_eq!((first.accepted, first.duplicates), (4, 0), "{backend:?}");
        let mut doubled = events.clone();
        doubled.extend(events.clone());
        let again = store.ingest(doubled).await.expect("replay");
        assert_eq!((again.accepted, again.duplicates), (0, 8), "{backend:?}");
        let now = at(2026, 11, 20, 0);
        let used = store
            .usage(&user_subject(USER_A), None, now)
            .await
            .expect("usage");
        assert_eq!(used.used_ms, 3 * HOUR, "{backend:?}: creation to deletion");
        assert_eq!(used.accruing, 0);
        let shared = store
            .usage(&group_subject(GROUP), None, now)
            .await
            .expect("usage");
        assert_eq!(shared.used_ms, 3 * HOUR);
        assert_eq!(store.event_count().await.expect("count"), 4);
    }
}

#[tokio::test]
async fn out_of_order_delivery_folds_to_the_same_charge() {
    for backend in backends() {
        let (in_order, _a) = fresh(backend).await;
        let (reversed, _b) = fresh(backend).await;
        let s = Session::new(USER_A, &[GROUP]);
        let start = at(2026, 11, 3, 22);
        let events = vec![
            s.event(Kind::Created, start),
            s.event(Kind::Running, start + 60_000),
            s.event(Kind::Lost, start + HOUR),
            s.event(Kind::Resumed, start + 2 * HOUR),
            s.event(Kind::Stopped, start + 3 * HOUR),
            s.event(Kind::Deleted, start + 4 * HOUR),
        ];
        in_order.ingest(events.clone()).await.expect("ingest");
        for e in events.iter().rev() {
            reversed.ingest(vec![e.clone()]).await.expect("ingest one");
        }
        let now = at(2026, 11, 20, 0);
        let day = |d: u32| {
            Some(Window {
                start_ms: at(2026, 11, d, 0),
                end_ms: at(2026, 11, d + 1, 0),
            })
        };
        for store in [&in_order, &reversed] {
            // Charged 22:00–23:00 and 00:00–02:00 (lost 23:00–00:00 is not charged).
            let total = store
                .usage(&user_subject(USER_A), None, now)
                .await
                .expect("usage");
            assert_eq!(total.used_ms, 3 * HOUR, "{backend:?}");
            let third = store
                .usage(&user_subject(USER_A), day(3), now)
                .await
                .expect("usage");
            assert_eq!(third.used_ms, HOUR, "{backend:?}: 22:00-23:00 on the 3rd");
            let fourth = store
                .usage(&user_subject(USER_A), day(4), now)
                .await
                .expect("usage");
            assert_eq!(
                fourth.used_ms,
                2 * HOUR,
                "{backend:?}: 00:00-02:00 on the 4th"
            );
        }
    }
}

#[tokio::test]
async fn open_sessions_are_charged_up_to_now_and_groups_share() {
    for backend in backends() {
        let (store, _db) = fresh(backend).await;
        let a = Session::new(USER_A, &[GROUP]);
        let b = Session::new(USER_B, &[GROUP]);
        let start = at(2026, 11, 5, 8);
        store
            .ingest(vec![
                a.event(Kind::Created, start),
                a.event(Kind::Running, start + 1_000),
                b.event(Kind::Created, start + HOUR),
                b.event(Kind::Running, start + HOUR + 1_000),
                b.event(Kind::Paused, start + 2 * HOUR),
            ])
            .await
            .expect("ingest");
        let now = start + 3 * HOUR;
        let today = window::window(Interval::Daily, chrono_tz::UTC, now);
        let mine = store
            .usage(&user_subject(USER_A), today, now)
            .await
            .expect("a");
        assert_eq!(mine.used_ms, 3 * HOUR, "{backend:?}");
        assert_eq!(mine.accruing, 1);
        let group = store
            .usage(&group_subject(GROUP), today, now)
            .await
            .expect("g");
        assert_eq!(
            group.used_ms,
            5 * HOUR,
            "{backend:?}: paused time is charged"
        );
        assert_eq!(group.accruing, 2);
        let later = store
            .usage(&group_subject(GROUP), today, now + HOUR)
            .await
            .expect("g");
        assert_eq!(
            later.used_ms,
            7 * HOUR,
            "{backend:?}: charged up to the query"
        );
        // Ending one: its time moves into the day totals, and it stops accruing.
        store
            .ingest(vec![a.event(Kind::Deleted, now)])
            .await
            .expect("end a");
        let group = store
            .usage(&group_subject(GROUP), today, now + HOUR)
            .await
            .expect("g");
        assert_eq!(group.used_ms, 3 * HOUR + 3 * HOUR, "{backend:?}");
        assert_eq!(group.accruing, 1);
        let days = store
            .by_day(
                &user_subject(USER_A),
                window::day_key(window::local_day(chrono_tz::UTC, start)),
                window::day_key(window::local_day(chrono_tz::UTC, start)),
                now + HOUR,
            )
            .await
            .expect("by day");
        assert_eq!(days.values().sum::<i64>(), 3 * HOUR);
    }
}

#[tokio::test]
async fn concurrent_deliveries_never_count_twice() {
    for backend in backends() {
        let (store, _db) = fresh(backend).await;
        let start = at(2026, 11, 6, 0);
        let sessions: Vec<Session> = (0..40).map(|_| Session::new(USER_A, &[GROUP])).collect();
        let events: Vec<NewEvent> = sessions
            .iter()
            .flat_map(|s| {
                [
                    s.event(Kind::Created, start),
                    s.event(Kind::Running, start + 1_000),
                    s.event(Kind::Deleted, start + HOUR),
                ]
            })
            .collect();
        // Two "replicas" deliver the same outbox at once, in different orders.
        let mut reversed = events.clone();
        reversed.reverse();
        let (x, y) = tokio::join!(store.ingest(events.clone()), store.ingest(reversed));
        let (x, y) = (x.expect("x"), y.expect("y"));
        assert_eq!(x.accepted + y.accepted, 120, "{backend:?}");
        let total = store
            .usage(&user_subject(USER_A), None, start + 2 * HOUR)
            .await
            .expect("usage");
        assert_eq!(total.used_ms, 40 * HOUR, "{backend:?}");
    }
}

#[tokio::test]
async fn a_new_timezone_rebuckets_the_days() {
    let db = TestDatabase::new(Backend::Sqlite).await.expect("db");
    let store = open(&db, "UTC").await;
    let s = Session::new(USER_A, &[]);
    // 20:00–02:00 UTC: 4 h on the 10th and 2 h on the 11th in UTC; in Asia/Tokyo (+9) it is
    // 05:00–11:00 on the 11th, all one day.
    let start = at(2026, 11, 10, 20);
    store
        .ingest(vec![
            s.event(Kind::Created, start),
            s.event(Kind::Running, start),
            s.event(Kind::Deleted, start + 6 * HOUR),
        ])
        .await
        .expect("ingest");
    let key = |d: u32| window::day_key(chrono::NaiveDate::from_ymd_opt(2026, 11, d).expect("date"));
    let now = at(2026, 11, 20, 0);
    let utc = store
        .by_day(&user_subject(USER_A), key(10), key(11), now)
        .await
        .expect("by day");
    assert_eq!(utc.get(&key(10)), Some(&(4 * HOUR)));
    assert_eq!(utc.get(&key(11)), Some(&(2 * HOUR)));
    drop(store);
    let tokyo = open(&db, "Asia/Tokyo").await;
    let days = tokyo
        .by_day(&user_subject(USER_A), key(10), key(11), now)
        .await
        .expect("by day");
    assert_eq!(days.get(&key(10)), None);
    assert_eq!(days.get(&key(11)), Some(&(6 * HOUR)));
}

/// However the outbox cuts and orders the same events into batches (in order, reversed,
/// shuffled, replayed), the ledger ends with the same usage per subject and day.
#[tokio::test]
async fn any_batching_and_order_ends_the_same() {
    let start = at(2026, 11, 7, 20);
    let sessions: Vec<Session> = (0..6)
        .map(|i| Session::new(if i % 2 == 0 { USER_A } else { USER_B }, &[GROUP]))
        .collect();
    let mut events = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        let t = start + i as i64 * 600_000;
        events.push(s.event(Kind::Created, t));
        events.push(s.event(Kind::Running, t + 1_000));
        events.push(s.event(Kind::Paused, t + HOUR));
        events.push(s.event(Kind::Resumed, t + 2 * HOUR));
        if i % 3 != 0 {
            events.push(s.event(Kind::Lost, t + 3 * HOUR));
            events.push(s.event(Kind::Resumed, t + 4 * HOUR));
        }
        if i != 5 {
            events.push(s.event(Kind::Deleted, t + 5 * HOUR));
        }
    }
    let now = start + 8 * HOUR;
    let tz = chrono_tz::UTC;
    let first = window::day_key(window::local_day(tz, start));
    let last = window::day_key(window::local_day(tz, now));
    let mut expected = None;
    for seed in 0u64..6 {
        let (store, _db) = fresh(Backend::Sqlite).await;
        let mut order = events.clone();
        // A small deterministic shuffle per seed (seed 0 keeps the order).
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        for i in (1..order.len()).rev() {
            if seed == 0 {
                break;
            }
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        let size = 1 + (seed as usize * 3) % 7;
        for chunk in order.chunks(size) {
            store.ingest(chunk.to_vec()).await.expect("ingest");
        }
        // A replay of everything changes nothing.
        store.ingest(events.clone()).await.expect("replay");
        let mut got = Vec::new();
        for subject in [
            user_subject(USER_A),
            user_subject(USER_B),
            group_subject(GROUP),
        ] {
            got.push(store.usage(&subject, None, now).await.expect("usage"));
            got.push(
                store
                    .usage(&subject, window::window(Interval::Daily, tz, start), now)
                    .await
                    .expect("usage"),
            );
            let days = store
                .by_day(&subject, first, last, now)
                .await
                .expect("days");
            got.push(atrium_billing_usage::store::SubjectUsage {
                used_ms: days.values().sum(),
                accruing: u32::try_from(days.len()).expect("days"),
            });
        }
        match &expected {
            None => expected = Some(got),
            Some(e) => assert_eq!(&got, e, "seed {seed}, batches of {size}"),
        }
    }
}
