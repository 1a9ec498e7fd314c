//! The conformance suite every [`HeartbeatStore`] passes, one `pub async fn` per property, run
//! by `tests/conformance.rs` against [`MemoryHeartbeats`] and [`RedisHeartbeats`]; plus the
//! fixtures it uses. Each case uses agent ids of its own, so cases may share one Redis with
//! each other and with other crates' tests.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::{
    AgentStatus, Capacity, HeartbeatError, HeartbeatStore, MemoryHeartbeats, RedisHeartbeats,
};

/// The Redis of `ATRIUM_TEST_REDIS_URL` (which `scripts/test` starts). When it is unset a
/// Redis test fails under `CI=true`; elsewhere it says so and does nothing (`None`).
#[track_caller]
pub fn redis_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var("ATRIUM_TEST_REDIS_URL") {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: Redis is required under CI=true, but ATRIUM_TEST_REDIS_URL is not set"
    );
    eprintln!(
        "{test}: ATRIUM_TEST_REDIS_URL is not set (scripts/test starts Redis); this Redis test did nothing"
    );
    None
}

/// An agent id no other test uses.
pub fn unique_agent_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A plausible heartbeat of an active agent.
pub fn sample_status(agent_id: &str, session_count: u32) -> AgentStatus {
    AgentStatus {
        agent_id: agent_id.into(),
        zone: "zone-a".into(),
        state: "active".into(),
        reason: String::new(),
        capacity: Some(Capacity {
            cores: 8.0,
            memory_mib: 16384,
            gpus: 1,
        }),
        allocated: Some(Capacity {
            cores: 1.5,
            memory_mib: 2048,
            gpus: 0,
        }),
        session_count,
        images: vec!["atrium/workspace-demo:latest".into()],
        version: "0.1.0".into(),
        address: "10.0.0.5:7004".into(),
        updated_at: Some(SystemTime::now().into()),
    }
}

/// A store the suite can plant arbitrary bytes in, to see how readers treat a corrupt value.
#[async_trait]
pub trait RawWrites: HeartbeatStore {
    /// Stores `value` under `agent_id`'s key as it is.
    async fn put_raw(
        &self,
        agent_id: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), HeartbeatError>;
}

#[async_trait]
impl RawWrites for MemoryHeartbeats {
    async fn put_raw(
        &self,
        agent_id: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), HeartbeatError> {
        self.put_value(agent_id, value.to_vec(), ttl);
        Ok(())
    }
}

#[async_trait]
impl RawWrites for RedisHeartbeats {
    async fn put_raw(
        &self,
        agent_id: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), HeartbeatError> {
        self.put_value(agent_id, value, ttl).await
    }
}

const TTL: Duration = Duration::from_secs(30);

/// Every case, one after the other.
pub async fn run_all(store: &dyn RawWrites) {
    a_missing_agent_has_no_heartbeat(store).await;
    a_put_round_trips_and_replaces(store).await;
    list_holds_each_agent_once_sorted(store).await;
    remove_deletes_and_is_idempotent(store).await;
    entries_expire_after_their_ttl(store).await;
    a_put_refuses_an_empty_id_or_a_zero_ttl(store).await;
    corrupt_values_fail_get_and_are_skipped_by_list(store).await;
    list_reads_a_thousand_agents(store).await;
}

pub async fn a_missing_agent_has_no_heartbeat(store: &dyn HeartbeatStore) {
    let id = unique_agent_id("missing");
    assert_eq!(store.get(&id).await.expect("get"), None);
    assert!(!listed(store).await.iter().any(|s| s.agent_id == id));
}

pub async fn a_put_round_trips_and_replaces(store: &dyn HeartbeatStore) {
    let id = unique_agent_id("round-trip");
    let first = sample_status(&id, 1);
    store.put(&first, TTL).await.expect("put");
    assert_eq!(
        store.get(&id).await.expect("get"),
        Some(first),
        "round trip"
    );
    let second = AgentStatus {
        state: "draining".into(),
        reason: "draining: taking no new sessions".into(),
        ..sample_status(&id, 2)
    };
    store.put(&second, TTL).await.expect("put");
    assert_eq!(
        store.get(&id).await.expect("get"),
        Some(second.clone()),
        "a put replaces"
    );
    let mine: Vec<AgentStatus> = listed(store)
        .await
        .into_iter()
        .filter(|s| s.agent_id == id)
        .collect();
    assert_eq!(mine, vec![second], "list holds the latest put");
    store.remove(&id).await.expect("remove");
}

pub async fn list_holds_each_agent_once_sorted(store: &dyn HeartbeatStore) {
    // Put out of order: the answer is sorted by agent id regardless.
    let prefix = unique_agent_id("list");
    let ids: Vec<String> = ["c", "a", "b"]
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .collect();
    for (n, id) in ids.iter().enumerate() {
        store
            .put(&sample_status(id, n as u32), TTL)
            .await
            .expect("put");
    }
    store
        .put(&sample_status(&ids[0], 7), TTL)
        .await
        .expect("put");
    let all = listed(store).await;
    assert!(
        all.windows(2).all(|w| w[0].agent_id < w[1].agent_id),
        "sorted by agent id, each once"
    );
    let mine: Vec<(&str, u32)> = all
        .iter()
        .filter(|s| s.agent_id.starts_with(&prefix))
        .map(|s| (s.agent_id.as_str(), s.session_count))
        .collect();
    let expected = vec![
        (ids[1].as_str(), 1),
        (ids[2].as_str(), 2),
        (ids[0].as_str(), 7),
    ];
    assert_eq!(mine, expected);
    for id in &ids {
        store.remove(id).await.expect("remove");
    }
}

pub async fn remove_deletes_and_is_idempotent(store: &dyn HeartbeatStore) {
    let (gone, kept) = (unique_agent_id("remove"), unique_agent_id("kept"));
    store.put(&sample_status(&gone, 0), TTL).await.expect("put");
    store.put(&sample_status(&kept, 0), TTL).await.expect("put");
    store.remove(&gone).await.expect("remove");
    store.remove(&gone).await.expect("removing again succeeds");
    store
        .remove(&unique_agent_id("never-there"))
        .await
        .expect("removing a missing agent succeeds");
    assert_eq!(store.get(&gone).await.expect("get"), None, "removed");
    assert!(!listed(store).await.iter().any(|s| s.agent_id == gone));
    assert!(
        store.get(&kept).await.expect("get").is_some(),
        "only that agent"
    );
    store.remove(&kept).await.expect("remove");
}

pub async fn entries_expire_after_their_ttl(store: &dyn HeartbeatStore) {
    let (short, long) = (unique_agent_id("short"), unique_agent_id("long"));
    store
        .put(&sample_status(&short, 0), Duration::from_secs(1))
        .await
        .expect("put");
    store.put(&sample_status(&long, 0), TTL).await.expect("put");
    assert!(store.get(&short).await.expect("get").is_some());
    // A put renews the TTL: the second one counts, not the first.
    let renewed = unique_agent_id("renewed");
    store
        .put(&sample_status(&renewed, 0), Duration::from_millis(500))
        .await
        .expect("put");
    store
        .put(&sample_status(&renewed, 1), Duration::from_secs(30))
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        store.get(&short).await.expect("get"),
        None,
        "expired after its TTL"
    );
    let all = listed(store).await;
    assert!(!all.iter().any(|s| s.agent_id == short), "not listed");
    assert!(all.iter().any(|s| s.agent_id == long), "the other lives on");
    assert!(
        store.get(&renewed).await.expect("get").is_some(),
        "a put renews the TTL"
    );
    for id in [&long, &renewed] {
        store.remove(id).await.expect("remove");
    }
}

pub async fn a_put_refuses_an_empty_id_or_a_zero_ttl(store: &dyn HeartbeatStore) {
    let empty = store.put(&sample_status("", 0), TTL).await;
    assert!(
        matches!(&empty, Err(HeartbeatError::Invalid(m)) if m.contains("agent_id")),
        "{empty:?}"
    );
    let id = unique_agent_id("zero-ttl");
    let zero = store.put(&sample_status(&id, 0), Duration::ZERO).await;
    assert!(
        matches!(&zero, Err(HeartbeatError::Invalid(m)) if m.contains("ttl")),
        "{zero:?}"
    );
    assert_eq!(store.get(&id).await.expect("get"), None);
}

pub async fn corrupt_values_fail_get_and_are_skipped_by_list(store: &dyn RawWrites) {
    let good = unique_agent_id("good");
    let garbage = unique_agent_id("garbage");
    let json = unique_agent_id("json");
    let impostor = unique_agent_id("impostor");
    store.put(&sample_status(&good, 0), TTL).await.expect("put");
    store
        .put_raw(&garbage, &[0xff, 0xff, 0xff, 0xff], TTL)
        .await
        .expect("put_raw");
    // What the agent wrote before heartbeats were a contract.
    let old = format!(r#"{{"agent_id":"{json}","state":"active"}}"#);
    store
        .put_raw(&json, old.as_bytes(), TTL)
        .await
        .expect("put_raw");
    // Well-formed, but another agent's status under this key.
    store
        .put_raw(&impostor, &crate::encode(&sample_status(&good, 0)), TTL)
        .await
        .expect("put_raw");
    for id in [&garbage, &json, &impostor] {
        let read = store.get(id).await;
        assert!(
            matches!(&read, Err(HeartbeatError::Corrupt { agent_id, .. }) if agent_id == id),
            "{id}: {read:?}"
        );
    }
    let all = listed(store).await;
    assert!(all.iter().any(|s| s.agent_id == good), "the good one stays");
    assert_eq!(
        all.iter().filter(|s| s.agent_id == good).count(),
        1,
        "the impostor does not pass as the agent it names"
    );
    for id in [&garbage, &json, &impostor] {
        assert!(!all.iter().any(|s| &s.agent_id == id), "{id} skipped");
    }
    for id in [&good, &garbage, &json, &impostor] {
        store.remove(id).await.expect("remove");
    }
}

/// The session-manager lists every agent on each placement pass: a thousand must all come back.
pub async fn list_reads_a_thousand_agents(store: &dyn HeartbeatStore) {
    let prefix = unique_agent_id("many");
    let ids: Vec<String> = (0..1000).map(|n| format!("{prefix}-{n:04}")).collect();
    for id in &ids {
        store.put(&sample_status(id, 0), TTL).await.expect("put");
    }
    let started = Instant::now();
    let all = listed(store).await;
    let took = started.elapsed();
    let mine: Vec<&str> = all
        .iter()
        .filter(|s| s.agent_id.starts_with(&prefix))
        .map(|s| s.agent_id.as_str())
        .collect();
    assert_eq!(mine, ids.iter().map(String::as_str).collect::<Vec<_>>());
    eprintln!(
        "listed {} heartbeats ({} of this case) in {took:?}",
        all.len(),
        mine.len()
    );
    for id in &ids {
        store.remove(id).await.expect("remove");
    }
}

async fn listed(store: &dyn HeartbeatStore) -> Vec<AgentStatus> {
    store.list().await.expect("list")
}
