//! The deadline-store conformance suite, against the in-process store and a real Redis
//! (ATRIUM_TEST_REDIS_URL; required under CI).

use atrium_session_manager::deadlines::{MemoryDeadlines, RedisDeadlines, conformance};

#[tokio::test]
async fn memory_store_conforms() {
    conformance::run(&MemoryDeadlines::new(), "mem").await;
}

/// A namespace of its own (the claim checks assume nothing else is due there).
async fn fresh_redis() -> Option<RedisDeadlines> {
    let Ok(url) = std::env::var("ATRIUM_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "ATRIUM_TEST_REDIS_URL must be set under CI"
        );
        eprintln!("skipped: ATRIUM_TEST_REDIS_URL is not set");
        return None;
    };
    let namespace = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    Some(RedisDeadlines::new(&url, &namespace).expect("redis deadlines"))
}

#[tokio::test]
async fn redis_store_conforms() {
    let Some(store) = fresh_redis().await else {
        return;
    };
    conformance::run(&store, "redis").await;
}
