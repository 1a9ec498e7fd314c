//! Draining: no new sessions, everything else still served, exit when empty or at the deadline.

use std::time::Duration;

use atrium_agent::runtime::ContainerRuntime as _;

use crate::common::*;

const IMAGE: &str = "atrium/workspace-demo:latest";

#[tokio::test]
async fn a_drain_refuses_new_sessions_and_ends_when_the_last_one_goes() {
    let (mut agent, runtime) = TestAgent::in_memory(|_| {}).await.expect("agent");
    runtime.add_image(IMAGE);
    let mut c = agent.service().await.unwrap();
    let id = new_session_id();
    ok(c.create_session(create(session_spec(&id, IMAGE))).await);
    eventually(Duration::from_secs(5), "a first heartbeat", || async {
        agent.store.get(agent.agent_id()).await.unwrap()
    })
    .await;

    let status = ok(c
        .drain(pb::DrainRequest {
            deadline_secs: Some(60),
        })
        .await);
    assert_eq!(status.state, "draining");
    let refused = err(
        c.create_session(create(session_spec(&new_session_id(), IMAGE)))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(refused.message(), "agent is draining");
    // Everything else is still served.
    ok(c.stop_session(session_ref(&id)).await);
    ok(c.inspect_session(session_ref(&id)).await);
    ok(c.list_sessions(pb::ListSessionsRequest {}).await);
    eventually(Duration::from_secs(5), "a draining heartbeat", || async {
        let beat = agent.store.get(agent.agent_id()).await.unwrap()?;
        (beat.state == "draining").then_some(())
    })
    .await;
    assert!(
        agent.wait_exit(Duration::from_millis(1500)).await.is_none(),
        "still holds a session"
    );

    ok(c.remove_session(session_ref(&id)).await);
    let exited = agent
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits once empty");
    exited.expect("clean exit");
    assert!(
        agent.store.get(agent.agent_id()).await.unwrap().is_none(),
        "heartbeat deleted after a drain"
    );
}

#[tokio::test]
async fn a_drain_ends_at_its_deadline_leaving_containers_in_place() {
    let (mut agent, runtime) = TestAgent::in_memory(|_| {}).await.expect("agent");
    runtime.add_image(IMAGE);
    let mut c = agent.service().await.unwrap();
    ok(
        c.create_session(create(session_spec(&new_session_id(), IMAGE)))
            .await,
    );
    ok(c.drain(pb::DrainRequest {
        deadline_secs: Some(1),
    })
    .await);
    // A later, longer deadline does not postpone the first.
    ok(c.drain(pb::DrainRequest {
        deadline_secs: Some(600),
    })
    .await);
    let exited = agent
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits at the deadline");
    exited.expect("clean exit");
    assert_eq!(
        runtime.list(&[]).await.unwrap().len(),
        1,
        "the container stays for the next agent"
    );
}
