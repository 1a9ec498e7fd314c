//! The deadline-store conformance suite, against the in-process store and a real Redis
//! (ATRIUM_TEST_REDIS_URL; required under CI).

use atrium_session_manager::deadlines::{Deadlines, MemoryDeadlines, RedisDeadlines, conformance};

#[tokio::test]
async fn memory_store_conforms() {
    conformance::run(&MemoryDeadlines::new(), "mem").await;
}

/// A Redis database of its own (the claim checks assume nothing else is due there).
async fn fresh_redis() -> Option<RedisDeadlines> {
    let Ok(url) = std::env::var("ATRIUM_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "ATRIUM_TEST_REDIS_URL must be set under CI"
        );
        eprintln!("skipped: ATRIUM_TEST_REDIS_URL is not set");
        return None;
    };
    let base = url.trim_end_matches('/');
    let url = format!("{base}/9");
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut conn)
        .await
        .expect("flush");
    Some(RedisDeadlines::new(&url).expect("redis deadlines"))
}

#[tokio::test]
async fn redis_store_conforms() {
    let Some(store) = fresh_redis().await else { return };
    conformance::run(&store, "redis").await;
}
