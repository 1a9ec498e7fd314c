//! The launcher end to end: roles started in this process on ephemeral ports, wired to each
//! other over TLS under the data directory's CA, healthy before `start` returns, stopped
//! together; start-up failures name the role and start nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_launcher::{Caller, LaunchConfig, Launcher, Role, Storage};
use atrium_proto::agent::v1 as agent;
use atrium_proto::identity::v1 as id;
use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as session;
use atrium_proto::usage::v1 as usage;
use atrium_service_kit::Secret;
use atrium_service_kit::auth::ServiceId;
use tonic_health::pb::health_check_response::ServingStatus;

const PASSWORD: &str = "launcher-admin-password";

fn config(dir: &std::path::Path) -> LaunchConfig {
    LaunchConfig {
        admin_password: Some(Secret::new(PASSWORD)),
        ..LaunchConfig::ephemeral(dir)
    }
    // Tests log in often from one address.
    .tune_identity(|c| {
        c.login_attempts_per_account_per_minute = 0;
        c.login_attempts_per_source_per_minute = 0;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_starts_wired_healthy_and_stops_together() {
    let dir = tempfile::tempdir().unwrap();
    let roles = Role::available();
    assert_eq!(
        roles,
        [
            Role::Identity,
            Role::Policy,
            Role::BillingUsage,
            Role::SessionManager,
            Role::Agent,
            Role::Gateway
        ]
    );
    let running = Launcher::start(config(dir.path()), &roles).await.unwrap();
    assert_eq!(running.roles(), roles);
    for role in [
        Role::Identity,
        Role::Policy,
        Role::BillingUsage,
        Role::SessionManager,
        Role::Gateway,
    ] {
        assert_eq!(
            running.health(role).await.unwrap(),
            ServingStatus::Serving,
            "{role}"
        );
        let bound = running.bound(role).unwrap();
        assert_ne!(bound.addr.port(), 0);
        assert!(bound.metrics.is_some(), "{role} serves no metrics");
    }
    assert!(running.ca_path().exists());
    assert!(running.data_dir().join("secrets.json").exists());
    assert!(running.data_dir().join("identity.db").exists());
    assert!(running.data_dir().join("billing-usage.db").exists());
    assert_eq!(
        running.endpoint(Role::BillingUsage),
        Some(format!(
            "https://{}",
            running.bound(Role::BillingUsage).unwrap().addr
        ))
    );
    // The browser entrance on loopback is plain HTTP (localhost is a secure context).
    assert_eq!(
        running.endpoint(Role::Gateway),
        Some(format!(
            "http://{}",
            running.bound(Role::Gateway).unwrap().addr
        ))
    );
    let admin = running
        .bootstrap_admin()
        .expect("a fresh database bootstraps");
    assert_eq!(admin.username, "admin");
    assert!(
        admin.generated_password.is_none(),
        "the password was configured"
    );

    // The administrator logs in through identity; policy takes the token.
    let credential = running.admin().await.unwrap();
    let mut policy = running
        .policy(&Caller::User(credential.clone()))
        .await
        .unwrap();
    let groups = policy
        .list_groups(pol::ListGroupsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(groups.groups.iter().any(|g| g.name == "Administrators"));
    // The agent checks users against identity and policy: the admin (agents.view, once the
    // outbox has told policy about them) may read its status.
    let mut agent = running
        .agent(&Caller::User(credential.clone()))
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        match agent.get_status(agent::GetStatusRequest::default()).await {
            Ok(_) => break,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("the admin never got the agent's status: {status}"),
        }
    }
    // The session-manager takes the admin's token (identity's key set, shared in-process).
    let mut sessions = running
        .session(&Caller::User(credential.clone()))
        .await
        .unwrap();
    let listed = sessions
        .list_sessions(session::ListSessionsRequest {
            all_users: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.sessions.is_empty());
    // Billing-usage takes the admin's token too; the session-manager (by its certificate) may
    // check a user's allowance, policy may not deliver usage events.
    let mut rates = running
        .usage(&Caller::User(credential.clone()))
        .await
        .unwrap();
    let listed = rates
        .list_workspace_rates(usage::ListWorkspaceRatesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(listed.rates.is_empty());
    let admin_id = running
        .identity(&Caller::User(credential.clone()))
        .await
        .unwrap()
        .who_am_i(id::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner()
        .user_id;
    let check = running
        .usage(&Caller::Service(ServiceId::SessionManager))
        .await
        .unwrap()
        .check_usage(usage::CheckUsageRequest {
            user_id: admin_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(check.allowed && !check.limited, "{check:?}");
    let refused = running
        .usage(&Caller::Service(ServiceId::Policy))
        .await
        .unwrap()
        .ingest_events(usage::IngestEventsRequest { events: vec![] })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // The agent and the session-manager share one heartbeat store: the agent's heartbeat is
    // there for placement.
    let store = running.heartbeats().expect("a heartbeat store");
    let start = Instant::now();
    while store.list().await.unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the agent never heartbeat"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A service client presents its certificate: the session-manager may list the agent's
    // sessions, policy (as a caller) may not.
    let mut manager = running
        .agent(&Caller::Service(ServiceId::SessionManager))
        .await
        .unwrap();
    manager
        .list_sessions(agent::ListSessionsRequest {})
        .await
        .unwrap();
    let mut stranger = running
        .agent(&Caller::Service(ServiceId::Policy))
        .await
        .unwrap();
    assert_eq!(
        stranger
            .list_sessions(agent::ListSessionsRequest {})
            .await
            .unwrap_err()
            .code(),
        tonic::Code::PermissionDenied
    );
    let identity_addr = running.bound(Role::Identity).unwrap().addr;
    let started = Instant::now();
    running.stop().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        tokio::net::TcpStream::connect(identity_addr).await.is_err(),
        "identity still accepts connections after stop"
    );

    // Again on the same data directory: same secrets, same CA, the admin already exists.
    let again = Launcher::start(config(dir.path()), &[Role::Identity, Role::Policy])
        .await
        .unwrap();
    assert!(again.bootstrap_admin().is_none());
    let mut identity = again
        .identity(&Caller::User(again.admin().await.unwrap()))
        .await
        .unwrap();
    identity.who_am_i(id::WhoAmIRequest {}).await.unwrap();
    again.stop().await.unwrap();
}

#[tokio::test]
async fn a_generated_admin_password_is_handed_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = LaunchConfig::ephemeral(dir.path());
    let running = Launcher::start(config, &[Role::Identity]).await.unwrap();
    let generated = running
        .bootstrap_admin()
        .and_then(|a| a.generated_password.clone())
        .expect("a generated password");
    assert_eq!(running.admin_password().unwrap().expose(), generated);
    running.admin().await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_taken_port_fails_start_up_naming_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = LaunchConfig::ephemeral(dir.path());
    config
        .ports
        .insert(Role::Policy, taken.local_addr().unwrap().port());
    let error = Launcher::start(config, &[Role::Identity, Role::Policy])
        .await
        .err()
        .expect("the port is taken");
    let message = format!("{error:#}");
    assert!(message.contains("policy port"), "{message}");
    // Nothing was created past the data directory's secrets and CA.
    assert!(!dir.path().join("identity.db").exists());
}

#[tokio::test]
async fn roles_that_cannot_run_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (roles, expected) in [
        (vec![Role::Gateway], "gateway needs identity"),
        (
            vec![Role::Identity, Role::Policy, Role::Gateway],
            "gateway needs session-manager",
        ),
        (vec![Role::BillingUsage], "billing-usage needs identity"),
        (
            vec![Role::Identity, Role::BillingUsage],
            "billing-usage needs policy",
        ),
        (vec![Role::Policy], "policy needs identity"),
        (
            vec![Role::Identity, Role::SessionManager],
            "session-manager needs policy",
        ),
        (vec![], "no roles"),
    ] {
        let error = Launcher::start(LaunchConfig::ephemeral(dir.path()), &roles)
            .await
            .err()
            .expect("refused");
        let message = format!("{error:#}");
        assert!(message.contains(expected), "{roles:?}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_storage_gets_one_fresh_database_per_service() {
    let admin_url = std::env::var("ATRIUM_TEST_POSTGRES_URL").expect(
        "ATRIUM_TEST_POSTGRES_URL: run the tests with scripts/test, which starts PostgreSQL",
    );
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("atrium_launch_{}_", uuid::Uuid::new_v4().simple());
    let config = LaunchConfig {
        storage: Storage::Postgres {
            admin_url: Secret::new(admin_url),
            prefix,
        },
        ..config(dir.path())
    };
    let running = Launcher::start(config, &[Role::Identity, Role::Policy, Role::BillingUsage])
        .await
        .unwrap();
    assert!(!dir.path().join("identity.db").exists(), "SQLite was used");
    assert!(
        !dir.path().join("billing-usage.db").exists(),
        "SQLite was used"
    );
    assert_eq!(
        running.health(Role::BillingUsage).await.unwrap(),
        ServingStatus::Serving
    );
    let mut identity = running
        .identity(&Caller::User(running.admin().await.unwrap()))
        .await
        .unwrap();
    identity.who_am_i(id::WhoAmIRequest {}).await.unwrap();
    running.stop().await.unwrap();
}
