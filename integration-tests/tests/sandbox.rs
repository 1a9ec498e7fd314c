//! The sandbox itself: every role over real PostgreSQL and Redis, healthy when it starts,
//! handing out administrator and service clients; two sandboxes sharing one Redis see only their
//! own agents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_integration_tests::{Role, Sandbox};
use atrium_proto::agent::v1 as agent;
use atrium_proto::identity::v1 as id;
use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as session;
use atrium_service_kit::auth::ServiceId;
use tonic_health::pb::health_check_response::ServingStatus;

/// The agent ids with a live heartbeat in `sandbox`'s store, once its own agent is among them.
async fn live_agents(sandbox: &Sandbox) -> Vec<String> {
    let store = sandbox.running().heartbeats().expect("a heartbeat store");
    let own = sandbox.agent_id().expect("an agent").to_owned();
    let start = Instant::now();
    loop {
        let ids: Vec<String> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.agent_id)
            .collect();
        if ids.contains(&own) {
            return ids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no heartbeat from {own}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_serves_and_hands_out_admin_and_service_clients() {
    let roles = [
        Role::Identity,
        Role::Policy,
        Role::SessionManager,
        Role::Agent,
    ];
    let sandbox = Sandbox::start(&roles).await.unwrap();
    assert!(sandbox.database_prefix().is_some(), "not on PostgreSQL");
    for role in [Role::Identity, Role::Policy, Role::SessionManager] {
        assert_eq!(
            sandbox.running().health(role).await.unwrap(),
            ServingStatus::Serving,
            "{role}"
        );
    }

    // As the administrator, logged in through identity.
    let me = sandbox
        .identity_as_admin()
        .await
        .unwrap()
        .who_am_i(id::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username, "admin");
    let groups = sandbox
        .policy_as_admin()
        .await
        .unwrap()
        .list_groups(pol::ListGroupsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(groups.groups.iter().any(|g| g.name == "Administrators"));
    sandbox
        .session_as_admin()
        .await
        .unwrap()
        .list_sessions(session::ListSessionsRequest {
            all_users: true,
            ..Default::default()
        })
        .await
        .unwrap();

    // As a service: the sandbox's dialer and the kit's testing dialer present the same
    // certificate.
    let mut manager = sandbox
        .agent_as_service(ServiceId::SessionManager)
        .await
        .unwrap();
    manager
        .list_sessions(agent::ListSessionsRequest {})
        .await
        .unwrap();
    let endpoint = sandbox.endpoint(Role::Agent).unwrap();
    let channel = atrium_service_kit::testing::dialer_as(ServiceId::SessionManager)
        .connect(&endpoint)
        .await
        .unwrap();
    agent::agent_service_client::AgentServiceClient::new(channel)
        .list_sessions(agent::ListSessionsRequest {})
        .await
        .unwrap();

    sandbox.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_sharing_redis_see_only_their_own_agents() {
    let roles = [Role::Agent];
    let (one, two) = tokio::join!(Sandbox::start(&roles), Sandbox::start(&roles));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_ne!(one.redis_namespace(), two.redis_namespace());
    assert_eq!(live_agents(&one).await, [one.agent_id().unwrap()]);
    assert_eq!(live_agents(&two).await, [two.agent_id().unwrap()]);
    one.stop().await.unwrap();
    two.stop().await.unwrap();
}
