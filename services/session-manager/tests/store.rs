//! The session store on SQLite and PostgreSQL: admissions are serialised (no agent is ever
//! overcommitted, max_kasms_per_user holds under concurrency), stale observations are dropped,
//! leases are exclusive, and every lifecycle change lands in the outbox with it.

use std::sync::Arc;

use atrium_service_kit::ApiError;
use atrium_service_kit::testing::{Backend, TestDatabase};
use atrium_session_manager::migration::Migrator;
use atrium_session_manager::placement::{self, AgentHealth, Candidate, Need, Resources};
use atrium_session_manager::state::{DesiredState, ObservedState};
use atrium_session_manager::store::{Observation, Row, Store};
use chrono::Utc;

async fn store(backend: Backend) -> (Store, TestDatabase) {
    let db = TestDatabase::new(backend).await.expect("test database");
    let conn = atrium_service_kit::db::connect_and_migrate::<Migrator>(&db.url, "sm-test")
        .await
        .expect("migrate");
    (Store::new(conn), db)
}

fn row(id: &str, user: &str, agent: &str) -> Row {
    Row::sample(id, user, agent)
}

fn agent_with_room_for(n: f64) -> Candidate {
    Candidate {
        agent_id: "agent-1".into(),
        zone: "default".into(),
        health: AgentHealth::Active,
        reason: String::new(),
        capacity: Resources {
            cores: n,
            memory_mib: 1 << 20,
            gpus: 0,
        },
        reserved: Resources::default(),
        images: vec![],
    }
}

/// 20 launches at once onto an agent with room for 10: exactly 10 are placed, the rest are
/// refused with the agent's reason.
async fn concurrent_admissions_never_overcommit(backend: Backend) {
    let (store, _db) = store(backend).await;
    let store = Arc::new(store);
    let mut handles = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let user = format!("user-{i}");
            store
                .admit(
                    &user.clone(),
                    |view| {
                        let mut candidate = agent_with_room_for(10.0);
                        candidate.reserved =
                            view.reserved.get("agent-1").copied().unwrap_or_default();
                        let need = Need {
                            resources: Resources {
                                cores: 1.0,
                                memory_mib: 256,
                                gpus: 0,
                            },
                            image: "atrium/workspace-demo:latest".into(),
                            zone: None,
                            user_picked_zone: false,
                        };
                        let placement = placement::place(&[candidate], &need, &Default::default());
                        match placement.chosen {
                            Some(agent) => Ok(row(&format!("s-{i:02}"), &user, &agent)),
                            None => Err(ApiError::FailedPrecondition(placement.summary())),
                        }
                    },
                    "test",
                )
                .await
        }));
    }
    let mut placed = 0;
    let mut refused = Vec::new();
    for h in handles {
        match h.await.expect("task") {
            Ok(_) => placed += 1,
            Err(e) => refused.push(e.to_string()),
        }
    }
    assert_eq!(placed, 10, "refusals: {refused:?}");
    assert_eq!(refused.len(), 10);
    for r in &refused {
        assert!(r.contains("agent-1: 0 core(s) free of 10"), "{r}");
    }
    // Each admitted session has its "created" event in the outbox.
    assert_eq!(store.undelivered_events().await.expect("events"), 10);
}

#[tokio::test]
async fn concurrent_admissions_never_overcommit_sqlite() {
    concurrent_admissions_never_overcommit(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_admissions_never_overcommit_postgres() {
    concurrent_admissions_never_overcommit(Backend::Postgres).await;
}

/// A result computed for an older generation is dropped, and the lease is exclusive.
async fn stale_results_and_leases(backend: Backend) {
    let (store, _db) = store(backend).await;
    let admitted = store
        .admit("u1", |_| Ok(row("s-1", "u1", "agent-1")), "test")
        .await
        .expect("admit");
    assert_eq!(admitted.generation, 1);
    // The user stops it while an agent call for generation 1 is under way...
    let stopped = store
        .set_desired("s-1", DesiredState::Stopped, None)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(stopped.generation, 2);
    // ...so the slow "running" result for generation 1 is dropped.
    let stale = Observation {
        observed: Some(ObservedState::Running),
        event: Some("running"),
        ..Observation::default()
    };
    assert!(
        store
            .observe("s-1", 1, stale)
            .await
            .expect("observe")
            .is_none()
    );
    let now = store.get("s-1").await.expect("get").expect("row");
    assert_eq!(now.observed(), ObservedState::Requested);
    // A current one lands, with its event.
    let fresh = Observation {
        observed: Some(ObservedState::Stopped),
        event: Some("stopped"),
        ..Observation::default()
    };
    assert!(
        store
            .observe("s-1", 2, fresh)
            .await
            .expect("observe")
            .is_some()
    );
    let kinds: Vec<String> = store
        .events("s-1")
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["created", "stopped"]);
    // Leases: one replica at a time; an expired lease is taken over.
    let soon = Utc::now() + chrono::Duration::seconds(30);
    assert!(store.lease("s-1", "replica-a", soon).await.expect("lease"));
    assert!(!store.lease("s-1", "replica-b", soon).await.expect("lease"));
    assert!(
        store.lease("s-1", "replica-a", soon).await.expect("lease"),
        "re-entrant"
    );
    let past = Utc::now() - chrono::Duration::seconds(1);
    assert!(store.lease("s-1", "replica-a", past).await.expect("lease"));
    assert!(
        store.lease("s-1", "replica-b", soon).await.expect("lease"),
        "taken over"
    );
    store.release("s-1", "replica-b").await.expect("release");
    assert!(store.lease("s-1", "replica-a", soon).await.expect("lease"));
    // Deleted is final: no further desired-state change.
    store
        .set_desired("s-1", DesiredState::Deleted, None)
        .await
        .expect("delete");
    assert!(
        store
            .set_desired("s-1", DesiredState::Running, None)
            .await
            .expect("set")
            .is_none()
    );
}

#[tokio::test]
async fn stale_results_and_leases_sqlite() {
    stale_results_and_leases(Backend::Sqlite).await;
}

#[tokio::test]
async fn stale_results_and_leases_postgres() {
    stale_results_and_leases(Backend::Postgres).await;
}
