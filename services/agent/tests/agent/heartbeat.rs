//! Heartbeat stores: one conformance suite run against the in-process store and Redis, then
//! the heartbeat loop itself (health follows the engine; Redis keys carry a TTL).

use std::sync::Arc;
use std::time::Duration;

use atrium_agent::core::{AgentState, AgentStatus, Resources};
use atrium_agent::heartbeat::{self, HeartbeatStore, MemoryHeartbeats, RedisHeartbeats};
use atrium_service_kit::testing::{http_get, metric_sample};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::*;

pub fn redis_url() -> String {
    std::env::var("ATRIUM_TEST_REDIS_URL").expect(
        "ATRIUM_TEST_REDIS_URL is not set: run the tests with scripts/test, which starts Redis",
    )
}

fn status(agent_id: &str, session_count: u32) -> AgentStatus {
    AgentStatus {
        agent_id: agent_id.into(),
        zone: "zone-a".into(),
        state: AgentState::Active,
        reason: String::new(),
        capacity: Resources {
            cores: 8.0,
            memory_mib: 16384,
            gpus: 1,
        },
        allocated: Resources {
            cores: 1.5,
            memory_mib: 2048,
            gpus: 0,
        },
        session_count,
        images: vec!["atrium/workspace-demo:latest".into()],
        version: "0.1.0".into(),
        address: "10.0.0.5:7004".into(),
        updated_at: chrono::Utc::now(),
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn conformance(store: Arc<dyn HeartbeatStore>) {
    let (a, b) = (unique("conf-a"), unique("conf-b"));
    let ttl = Duration::from_secs(30);
    assert!(store.get(&a).await.unwrap().is_none());

    let first = status(&a, 1);
    store.put(&first, ttl).await.unwrap();
    assert_eq!(
        store.get(&a).await.unwrap(),
        Some(first.clone()),
        "round trip"
    );
    let second = AgentStatus {
        state: AgentState::Draining,
        reason: "draining".into(),
        ..status(&a, 2)
    };
    store.put(&second, ttl).await.unwrap();
    assert_eq!(
        store.get(&a).await.unwrap(),
        Some(second.clone()),
        "a put replaces"
    );

    store.put(&status(&b, 0), ttl).await.unwrap();
    let listed = store.list().await.unwrap();
    for id in [&a, &b] {
        assert_eq!(
            listed.iter().filter(|s| &s.agent_id == id).count(),
            1,
            "{id} listed once"
        );
    }

    store.remove(&b).await.unwrap();
    store.remove(&b).await.unwrap();
    assert!(store.get(&b).await.unwrap().is_none(), "removed");
    assert!(!store.list().await.unwrap().iter().any(|s| s.agent_id == b));

    store
        .put(&status(&a, 3), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(store.get(&a).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(
        store.get(&a).await.unwrap().is_none(),
        "expired after its TTL"
    );
    assert!(!store.list().await.unwrap().iter().any(|s| s.agent_id == a));
}

#[tokio::test]
async fn conformance_in_process() {
    conformance(Arc::new(MemoryHeartbeats::new())).await;
}

#[tokio::test]
async fn conformance_redis() {
    conformance(Arc::new(RedisHeartbeats::new(&redis_url()).unwrap())).await;
}

#[tokio::test]
async fn heartbeats_in_redis_carry_the_status_under_a_ttl() {
    let url = redis_url();
    let (agent, runtime) = {
        let mut config = atrium_agent::testing::test_config();
        config.heartbeat_interval_secs = 1;
        let runtime = Arc::new(atrium_agent::runtime::memory::MemoryRuntime::new());
        let store = Arc::new(RedisHeartbeats::new(&url).unwrap());
        (
            TestAgent::start(config, runtime.clone(), store)
                .await
                .unwrap(),
            runtime,
        )
    };
    runtime.add_image("img:1");
    let beat = eventually(Duration::from_secs(5), "a heartbeat in redis", || async {
        agent.store.get(agent.agent_id()).await.unwrap()
    })
    .await;
    assert_eq!(beat.state, AgentState::Active);
    assert_eq!(beat.capacity.cores, 8.0);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = heartbeat::key(agent.agent_id());
    assert_eq!(key, format!("atrium:agent:{}", agent.agent_id()));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (1..=3).contains(&ttl),
        "TTL of three 1-second intervals, got {ttl}"
    );
    let raw: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    for field in [
        "capacity",
        "allocated",
        "session_count",
        "images",
        "state",
        "reason",
        "version",
        "address",
        "zone",
    ] {
        assert!(json.get(field).is_some(), "{field} in {raw}");
    }
    assert_eq!(json["state"], "active");
    let agent_id = agent.agent_id().to_owned();
    agent.stop().await.unwrap();
    let left: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_some(), "a plain shutdown leaves the key to expire");
    let _: () = redis::cmd("DEL")
        .arg(format!("atrium:agent:{agent_id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_engine_makes_the_agent_unhealthy_and_not_serving() {
    let (agent, runtime) = TestAgent::in_memory(|_| {}).await.unwrap();
    eventually(Duration::from_secs(5), "SERVING", || async {
        (health(&agent).await == ServingStatus::Serving).then_some(())
    })
    .await;
    runtime.set_available(false);
    let beat = eventually(Duration::from_secs(5), "an unhealthy heartbeat", || async {
        let beat = agent.store.get(agent.agent_id()).await.unwrap()?;
        (beat.state == AgentState::Unhealthy).then_some(beat)
    })
    .await;
    assert!(
        beat.reason.contains("memory runtime is down"),
        "{}",
        beat.reason
    );
    assert_eq!(health(&agent).await, ServingStatus::NotServing);
    let status = ok(agent
        .service()
        .await
        .unwrap()
        .get_status(pb::GetStatusRequest {})
        .await);
    assert_eq!(status.state, "unhealthy");
    assert_eq!(state_metric(&agent, "unhealthy").await, Some(1.0));
    assert_eq!(state_metric(&agent, "active").await, Some(0.0));
    runtime.set_available(true);
    eventually(Duration::from_secs(5), "SERVING again", || async {
        (health(&agent).await == ServingStatus::Serving).then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(5),
        "the metric back to active",
        || async { (state_metric(&agent, "active").await == Some(1.0)).then_some(()) },
    )
    .await;
    let (_, text) = http_get(agent.metrics_addr, "/metrics").await.unwrap();
    let capacity = metric_sample(&text, "atrium_agent_cores_capacity").expect("capacity");
    assert!(capacity > 0.0, "{text}");
    assert_eq!(
        metric_sample(&text, "atrium_agent_sessions"),
        Some(0.0),
        "{text}"
    );
}

/// `atrium_agent_state{state}` from the agent's `/metrics`.
async fn state_metric(agent: &TestAgent, state: &str) -> Option<f64> {
    let (_, text) = http_get(agent.metrics_addr, "/metrics").await.ok()?;
    metric_sample(&text, &format!("atrium_agent_state{{state=\"{state}\"}}"))
}

#[tokio::test]
async fn a_docker_socket_that_does_not_exist_is_reported_not_fatal() {
    let mut config = atrium_agent::testing::test_config();
    config.docker_host = "unix:///nonexistent/atrium-test-docker.sock".into();
    let runtime = Arc::new(
        atrium_agent::runtime::docker::DockerRuntime::connect(
            &config.docker_host,
            None,
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let agent = TestAgent::start(config, runtime, Arc::new(MemoryHeartbeats::new()))
        .await
        .unwrap();
    let beat = eventually(Duration::from_secs(5), "an unhealthy heartbeat", || async {
        agent.store.get(agent.agent_id()).await.unwrap()
    })
    .await;
    assert_eq!(beat.state, AgentState::Unhealthy);
    assert!(beat.reason.contains("unreachable"), "{}", beat.reason);
    assert_eq!(health(&agent).await, ServingStatus::NotServing);
    let listed = agent
        .service()
        .await
        .unwrap()
        .list_sessions(pb::ListSessionsRequest {})
        .await;
    err(listed, Code::Unavailable);
}
