//! The heartbeat loop: what lands in the store (the `atrium.agent.v1.AgentStatus` of the
//! contract, under a TTL), and health in step with the engine. The stores themselves pass the
//! conformance suite in the atrium-heartbeat crate.

use std::sync::Arc;
use std::time::Duration;

use atrium_agent::core::{AgentState, AgentStatus};
use atrium_heartbeat::testing::redis_url;
use atrium_heartbeat::{MemoryHeartbeats, RedisHeartbeats, key};
use atrium_service_kit::testing::{http_get, metric_sample};
use prost::Message as _;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::*;

#[tokio::test]
async fn heartbeats_in_redis_carry_the_status_under_a_ttl() {
    let Some(url) = redis_url("heartbeats_in_redis_carry_the_status_under_a_ttl") else {
        return;
    };
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
    assert_eq!(beat.state, "active");
    assert_eq!(beat.capacity.unwrap().cores, 8.0);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = key(agent.agent_id());
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
    // The value is the contract's protobuf, readable with no agent code, and it converts back
    // to the agent's own status whole.
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let wire = pb::AgentStatus::decode(raw.as_slice()).unwrap();
    assert_eq!(wire.agent_id, agent.agent_id());
    assert_eq!(wire.zone, agent.core.config.zone);
    assert_eq!(wire.address, agent.core.address());
    assert_eq!(wire.version, atrium_agent::core::VERSION);
    let status = AgentStatus::try_from(wire).unwrap();
    assert_eq!(status.state, AgentState::Active);
    assert_eq!(status.images, vec!["img:1".to_owned()]);
    let age = chrono::Utc::now() - status.updated_at;
    assert!(
        age < chrono::TimeDelta::seconds(5) && age > chrono::TimeDelta::seconds(-1),
        "updated_at is when the status was taken: {age:?} ago"
    );
    let agent_id = agent.agent_id().to_owned();
    agent.stop().await.unwrap();
    let left: Option<Vec<u8>> = redis::cmd("GET")
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
        (beat.state == AgentState::Unhealthy.as_str()).then_some(beat)
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
    assert_eq!(beat.state, "unhealthy");
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
