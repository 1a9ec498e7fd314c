//! Admission: concurrent CreateSession calls for different sessions never overcommit the node.
//! The capacity check and the container's creation happen under one node-wide lock, so the
//! next check sees the container the previous call created.

use std::time::Duration;

use atrium_agent::runtime::ContainerRuntime as _;

use crate::common::*;

const IMAGE: &str = "atrium/workspace-demo:latest";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_fill_the_node_exactly_and_no_further() {
    // Room for 10 sessions of 0.5 cores (memory is plentiful: 20 × 256 MiB of 16 GiB).
    let (agent, runtime) = TestAgent::in_memory(|config| config.capacity.cores = Some(5.0))
        .await
        .expect("start agent");
    runtime.add_image(IMAGE);
    // Creating takes a while, as on a real engine: without admission control every call would
    // pass its check before any container exists.
    runtime.set_create_delay(Duration::from_millis(50));
    let client = agent.service().await.expect("client");

    let calls = (0..20).map(|_| {
        let mut c = client.clone();
        tokio::spawn(async move {
            c.create_session(create(session_spec(&new_session_id(), IMAGE)))
                .await
        })
    });
    let answers = futures::future::join_all(calls).await;
    let (mut created, mut refused) = (0, Vec::new());
    for answer in answers {
        match answer.expect("call task") {
            Ok(_) => created += 1,
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(created, 10, "exactly the node's room: {refused:?}");
    assert_eq!(refused.len(), 10);
    for status in &refused {
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{}",
            status.message()
        );
        assert!(
            status.message().contains("not enough free capacity")
                && status
                    .message()
                    .contains("cores: 0.5 requested, 0 free of 5"),
            "{}",
            status.message()
        );
    }
    assert_eq!(
        runtime.list(&[]).await.expect("list").len(),
        10,
        "no container beyond the capacity, none half-created"
    );
}
