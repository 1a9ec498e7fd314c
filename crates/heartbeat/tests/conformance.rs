//! One conformance suite (`atrium_heartbeat::testing`), run against the in-process store and
//! the Redis at `ATRIUM_TEST_REDIS_URL`: a test per case per implementation.

/// A `#[tokio::test]` per case, each on a store from the enclosing module's `store(test)`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some(store) = store(stringify!($case)) {
                    atrium_heartbeat::testing::$case(&store).await;
                }
            }
        )*
    };
}

macro_rules! all_cases {
    () => {
        suite!(
            a_missing_agent_has_no_heartbeat,
            a_put_round_trips_and_replaces,
            list_holds_each_agent_once_sorted,
            remove_deletes_and_is_idempotent,
            entries_expire_after_their_ttl,
            a_put_refuses_an_empty_id_or_a_zero_ttl,
            corrupt_values_fail_get_and_are_skipped_by_list,
            list_reads_a_thousand_agents,
        );
    };
}

mod in_process {
    use atrium_heartbeat::MemoryHeartbeats;

    fn store(_test: &str) -> Option<MemoryHeartbeats> {
        Some(MemoryHeartbeats::new())
    }

    all_cases!();
}

mod redis {
    use atrium_heartbeat::RedisHeartbeats;
    use atrium_heartbeat::testing::redis_url;

    fn store(test: &str) -> Option<RedisHeartbeats> {
        let url = redis_url(test)?;
        Some(RedisHeartbeats::new(&url).expect("a valid ATRIUM_TEST_REDIS_URL"))
    }

    all_cases!();
}
