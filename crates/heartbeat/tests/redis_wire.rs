//! What another reader finds in Redis, with no store in between: the key, the TTL, and the
//! value as protobuf bytes of `atrium.agent.v1.AgentStatus`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use atrium_heartbeat::testing::{redis_url, sample_status, unique_agent_id};
use atrium_heartbeat::{AgentStatus, HeartbeatStore, RedisHeartbeats, key, ttl};
use prost::Message as _;

#[tokio::test]
async fn a_heartbeat_in_redis_is_an_encoded_agent_status_under_a_ttl() {
    let Some(url) = redis_url("a_heartbeat_in_redis_is_an_encoded_agent_status_under_a_ttl") else {
        return;
    };
    let store = RedisHeartbeats::new(&url).unwrap();
    let id = unique_agent_id("wire");
    let status = sample_status(&id, 3);
    store
        .put(&status, ttl(Duration::from_secs(2)))
        .await
        .unwrap();

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(format!("atrium:agent:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(AgentStatus::decode(raw.as_slice()).unwrap(), status);
    let millis: i64 = redis::cmd("PTTL")
        .arg(key(&id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (1..=6000).contains(&millis),
        "a TTL of three 2-second intervals, got {millis} ms"
    );
    let left = store.time_to_live(&id).await.unwrap().expect("a TTL");
    assert!(left <= Duration::from_secs(6), "{left:?}");

    store.remove(&id).await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(key(&id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    assert_eq!(store.time_to_live(&id).await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_not_a_panic() {
    // Nothing listens on port 1; the store connects on first use.
    let store = RedisHeartbeats::new("redis://127.0.0.1:1/").unwrap();
    let put = store
        .put(&sample_status("nobody", 0), Duration::from_secs(3))
        .await;
    assert!(
        matches!(put, Err(atrium_heartbeat::HeartbeatError::Unavailable(_))),
        "{put:?}"
    );
    assert!(RedisHeartbeats::new("not a url").is_err());
}

/// Deployments sharing one Redis under different namespaces see only their own agents.
#[tokio::test]
async fn namespaces_keep_deployments_apart() {
    let Some(url) = redis_url("namespaces_keep_deployments_apart") else {
        return;
    };
    let ns_a = unique_agent_id("ns-a");
    let ns_b = unique_agent_id("ns-b");
    let a = RedisHeartbeats::with_namespace(&url, &ns_a).unwrap();
    let b = RedisHeartbeats::with_namespace(&url, &ns_b).unwrap();
    let id = unique_agent_id("shared");
    a.put(&sample_status(&id, 1), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(a.list().await.unwrap().len(), 1);
    assert!(b.list().await.unwrap().is_empty());
    assert!(b.get(&id).await.unwrap().is_none());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{ns_a}:agent:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 1);
    a.remove(&id).await.unwrap();
}
