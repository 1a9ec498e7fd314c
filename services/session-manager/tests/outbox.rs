//! The usage outbox on SQLite and PostgreSQL: events carry the owner's name and groups, the
//! usage migration gives rows written before it empty ones, and delivery to billing-usage (the
//! in-memory gate here) marks events delivered only after it succeeded, in id order, a batch
//! at a time, retrying after failures until the stop signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atrium_service_kit::Shutdown;
use atrium_service_kit::testing::{Backend, TestDatabase};
use atrium_session_manager::migration::Migrator;
use atrium_session_manager::outbox::{self, Delivery, OutboxMetrics, Round};
use atrium_session_manager::state::ObservedState;
use atrium_session_manager::store::{Observation, Row, Store, encode_groups};
use atrium_session_manager::usage::memory::MemoryUsage;
use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::Query;

async fn store(backend: Backend) -> (Store, TestDatabase) {
    let db = TestDatabase::new(backend).await.expect("test database");
    let conn = atrium_service_kit::db::connect_and_migrate::<Migrator>(&db.url, "sm-test")
        .await
        .expect("migrate");
    (Store::new(conn), db)
}

fn row(id: &str, user: &str, groups: &[&str]) -> Row {
    Row {
        username: format!("{user}-name"),
        zone_id: "z".into(),
        group_ids: encode_groups(&groups.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>()),
        ..Row::sample(id, user, "agent-1")
    }
}

/// `n` sessions, each admitted ("created") and then running: 2n events.
async fn sessions(store: &Store, n: usize) {
    for i in 0..n {
        let user = format!("user-{}", i % 2);
        store
            .admit(
                &user.clone(),
                |_| Ok(row(&format!("s-{i:02}"), &user, &["g-strong", "g-weak"])),
                "test",
            )
            .await
            .expect("admit");
        let running = Observation {
            observed: Some(ObservedState::Running),
            event: Some("running"),
            ..Observation::default()
        };
        store
            .observe(&format!("s-{i:02}"), 1, running)
            .await
            .expect("observe")
            .expect("current");
    }
}

/// Every event carries the owner's name and groups (strongest first), as delivered.
async fn events_carry_owner_and_groups(backend: Backend) {
    let (store, _db) = store(backend).await;
    sessions(&store, 1).await;
    let events = store.undelivered(10).await.expect("outbox");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["created", "running"]);
    for e in &events {
        assert_eq!(e.session_id, "s-00");
        assert_eq!(e.user_id, "user-0");
        assert_eq!(e.username, "user-0-name");
        assert_eq!(e.group_ids, ["g-strong", "g-weak"]);
        assert_eq!(e.zone_id, "z");
        assert!(e.at.is_some());
    }
    let session = store.get("s-00").await.expect("get").expect("row");
    assert_eq!(session.groups(), ["g-strong", "g-weak"]);
}

#[tokio::test]
async fn events_carry_owner_and_groups_sqlite() {
    events_carry_owner_and_groups(Backend::Sqlite).await;
}

#[tokio::test]
async fn events_carry_owner_and_groups_postgres() {
    events_carry_owner_and_groups(Backend::Postgres).await;
}

/// Rows written before the usage migration read as having no name or groups.
async fn migration_keeps_older_events(backend: Backend) {
    let db = TestDatabase::new(backend).await.expect("test database");
    let conn = atrium_service_kit::db::connect(&db.url)
        .await
        .expect("connect");
    Migrator::up(&conn, Some(1)).await.expect("first migration");
    let old = Query::insert()
        .into_table("session_events")
        .columns([
            "id",
            "session_id",
            "user_id",
            "workspace_id",
            "agent_id",
            "zone_id",
            "kind",
            "at",
        ])
        .values_panic([
            uuid::Uuid::now_v7().to_string().into(),
            "s-old".into(),
            "u".into(),
            "w".into(),
            "a".into(),
            "".into(),
            "created".into(),
            Utc::now().into(),
        ])
        .to_owned();
    conn.execute(&old).await.expect("insert an event of before");
    Migrator::up(&conn, None).await.expect("the rest");
    let store = Store::new(conn);
    let events = store.undelivered(10).await.expect("outbox");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].session_id, "s-old");
    assert_eq!(events[0].username, "");
    assert!(events[0].group_ids.is_empty());
    // A session of after is written and read with its groups.
    sessions(&store, 1).await;
    assert_eq!(store.undelivered(10).await.expect("outbox").len(), 3);
}

#[tokio::test]
async fn migration_keeps_older_events_sqlite() {
    migration_keeps_older_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn migration_keeps_older_events_postgres() {
    migration_keeps_older_events(Backend::Postgres).await;
}

/// A failed delivery leaves every event undelivered; the next one delivers them, in id order,
/// and marks exactly those.
async fn delivered_only_after_success(backend: Backend) {
    let (store, _db) = store(backend).await;
    sessions(&store, 3).await;
    let gate = MemoryUsage::new();
    gate.fail_deliveries(1);
    let failed = outbox::deliver_once(&store, &gate, 100).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(store.undelivered_events().await.expect("count"), 6);
    assert!(gate.batches().is_empty());
    let round = outbox::deliver_once(&store, &gate, 100)
        .await
        .expect("delivered");
    assert_eq!(
        round,
        Round {
            delivered: 6,
            full: false
        }
    );
    assert_eq!(store.undelivered_events().await.expect("count"), 0);
    let ids = gate.delivered_ids();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "in id order");
    // Events written later are the next round's, alone.
    sessions_more(&store).await;
    let round = outbox::deliver_once(&store, &gate, 100)
        .await
        .expect("delivered");
    assert_eq!(round.delivered, 1);
    assert_eq!(gate.batches().len(), 2);
    assert_eq!(gate.batches()[1][0].kind, "stopped");
}

async fn sessions_more(store: &Store) {
    let stopped = Observation {
        observed: Some(ObservedState::Stopped),
        event: Some("stopped"),
        ..Observation::default()
    };
    store
        .observe("s-00", 1, stopped)
        .await
        .expect("observe")
        .expect("current");
}

#[tokio::test]
async fn delivered_only_after_success_sqlite() {
    delivered_only_after_success(Backend::Sqlite).await;
}

#[tokio::test]
async fn delivered_only_after_success_postgres() {
    delivered_only_after_success(Backend::Postgres).await;
}

/// At most `batch` events per call, oldest first.
async fn batches_are_bounded(backend: Backend) {
    let (store, _db) = store(backend).await;
    sessions(&store, 4).await;
    let all: Vec<String> = store
        .undelivered(100)
        .await
        .expect("outbox")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 8);
    let gate = MemoryUsage::new();
    let mut rounds = Vec::new();
    loop {
        let round = outbox::deliver_once(&store, &gate, 3)
            .await
            .expect("delivered");
        rounds.push(round);
        if !round.full {
            break;
        }
    }
    let sizes: Vec<usize> = gate.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 2]);
    assert_eq!(
        rounds.iter().map(|r| r.full).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(gate.delivered_ids(), all, "oldest first, each once");
}

#[tokio::test]
async fn batches_are_bounded_sqlite() {
    batches_are_bounded(Backend::Sqlite).await;
}

#[tokio::test]
async fn batches_are_bounded_postgres() {
    batches_are_bounded(Backend::Postgres).await;
}

async fn drained(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.undelivered_events().await.expect("count") > 0 {
        assert!(Instant::now() < deadline, "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The task retries after failures (backing off), delivers everything once billing-usage
/// takes it, counts it, and returns on the stop signal; two replicas delivering at once leave
/// nothing undelivered (duplicates are the ledger's to ignore).
async fn the_task_retries_and_stops(backend: Backend) {
    let (store, _db) = store(backend).await;
    sessions(&store, 5).await;
    let gate = Arc::new(MemoryUsage::new());
    gate.fail_deliveries(2);
    let metrics = OutboxMetrics::default();
    let stop = Shutdown::new();
    let delivery = Delivery {
        batch: 4,
        interval: Duration::from_millis(20),
    };
    let replicas: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(outbox::run(
                store.clone(),
                gate.clone(),
                delivery,
                metrics.clone(),
                stop.clone(),
            ))
        })
        .collect();
    drained(&store).await;
    // Each replica's next look finds nothing left.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.pending.get() != 0 {
        assert!(Instant::now() < deadline, "pending never read 0");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.trigger();
    for r in replicas {
        tokio::time::timeout(Duration::from_secs(15), r)
            .await
            .expect("stops on the signal")
            .expect("join")
            .expect("clean");
    }
    let mut ids = gate.delivered_ids();
    assert!(metrics.delivered.get() >= 10, "{}", metrics.delivered.get());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "every event delivered");
    // After the stop, nothing more is read: a new event stays in the outbox.
    sessions_more(&store).await;
    let batches = gate.batches().len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gate.batches().len(), batches);
    assert_eq!(store.undelivered_events().await.expect("count"), 1);
}

#[tokio::test]
async fn the_task_retries_and_stops_sqlite() {
    the_task_retries_and_stops(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_task_retries_and_stops_postgres() {
    the_task_retries_and_stops(Backend::Postgres).await;
}

/// A stop signal that fired before the task started: not one batch.
#[tokio::test]
async fn no_batch_after_the_stop() {
    let (store, _db) = store(Backend::Sqlite).await;
    sessions(&store, 1).await;
    let gate = Arc::new(MemoryUsage::new());
    let stop = Shutdown::new();
    stop.trigger();
    outbox::run(
        store.clone(),
        gate.clone(),
        Delivery {
            batch: 10,
            interval: Duration::from_millis(10),
        },
        OutboxMetrics::default(),
        stop,
    )
    .await
    .expect("clean");
    assert!(gate.batches().is_empty());
    assert_eq!(store.undelivered_events().await.expect("count"), 2);
}

/// An event billing-usage refuses as invalid is set aside, not retried forever: the events
/// around it are delivered.
#[tokio::test]
async fn a_refused_event_is_set_aside_and_the_rest_delivered() {
    let (store, _db) = store(Backend::Sqlite).await;
    sessions(&store, 2).await;
    let poison = Observation {
        observed: Some(ObservedState::Stopped),
        event: Some("poison"),
        ..Observation::default()
    };
    store
        .observe("s-00", 1, poison)
        .await
        .expect("observe")
        .expect("current");
    sessions_more(&store).await;
    let gate = MemoryUsage::new();
    let mut rounds = 0;
    while store.undelivered_events().await.expect("count") > 0 {
        outbox::deliver_once(&store, &gate, 100)
            .await
            .expect("a refused event is not an outage");
        rounds += 1;
        assert!(rounds < 5, "delivery does not get stuck");
    }
    let delivered = gate.batches().concat();
    assert_eq!(delivered.len(), 5, "every event but the refused one");
    assert!(delivered.iter().all(|e| e.kind != "poison"));
}

/// Delivered events go after the retention; undelivered ones stay whatever their age.
async fn delivered_events_are_pruned(backend: Backend) {
    let (store, _db) = store(backend).await;
    sessions(&store, 2).await;
    let gate = MemoryUsage::new();
    let round = outbox::deliver_once(&store, &gate, 2)
        .await
        .expect("deliver two");
    assert_eq!(round.delivered, 2);
    assert_eq!(
        store
            .prune_delivered(Utc::now() - chrono::Duration::hours(1))
            .await
            .expect("prune"),
        0,
        "delivered just now: kept"
    );
    let pruned = store
        .prune_delivered(Utc::now() + chrono::Duration::seconds(1))
        .await
        .expect("prune");
    assert_eq!(pruned, 2);
    assert_eq!(store.undelivered_events().await.expect("count"), 2);
}

#[tokio::test]
async fn delivered_events_are_pruned_sqlite() {
    delivered_events_are_pruned(Backend::Sqlite).await;
}

#[tokio::test]
async fn delivered_events_are_pruned_postgres() {
    delivered_events_are_pruned(Backend::Postgres).await;
}
