//! A demo session end to end: the demo workspace image (built with the library `atrium image
//! build-demo` uses), an agent on the local Docker engine (in the sandbox), CreateSession as the
//! session-manager, then the container reached over HTTPS with its per-session password — which
//! also shows the agent's hardened defaults suit the demo image. Runs only with
//! `ATRIUM_TEST_DOCKER=1` (scripts/test sets it when Docker answers).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use atrium_agent::testing::{new_session_id, session_spec};
use atrium_integration_tests::{Role, Sandbox};
use atrium_proto::agent::v1 as pb;
use atrium_service_kit::auth::ServiceId;
use atrium_workspace::client::{USER, get};
use atrium_workspace::{BinarySource, BuildOptions, build_image};
use http::StatusCode;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes the agent's containers and the image however the test ends.
struct Cleanup {
    image: String,
    agent_id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=atrium.agent_id={}", self.agent_id);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in ids.split_whitespace() {
            if std::thread::panicking() {
                let logs = Command::new("docker").args(["logs", id]).output();
                if let Ok(logs) = logs {
                    eprintln!(
                        "container {id} logs:\n{}{}",
                        String::from_utf8_lossy(&logs.stdout),
                        String::from_utf8_lossy(&logs.stderr)
                    );
                }
            }
            docker(&["rm", "--force", "--volumes", id]);
        }
        docker(&["image", "rm", "--force", &self.image]);
    }
}

async fn wait_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match get(addr, "/healthz", None).await {
            Ok(reply) if reply.status == StatusCode::OK => return,
            other if Instant::now() > deadline => panic!("not healthy in 30s: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn a_demo_session_is_reachable_over_https_with_its_password() {
    if !atrium_integration_tests::docker_enabled("a_demo_session_is_reachable") {
        return;
    }
    // The agent alone (heartbeats in the test Redis under the sandbox's namespace); only the
    // session-manager may call it.
    let sandbox = Sandbox::start(&[Role::Agent])
        .await
        .expect("start the agent");
    let agent_id = sandbox.agent_id().expect("the agent's id").to_owned();
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let tag = format!("atrium/workspace-demo:it-{suffix}");
    let _cleanup = Cleanup {
        image: tag.clone(),
        agent_id,
    };

    let binary = atrium_integration_tests::workspace_binary().expect("the workspace binary");
    let options = BuildOptions::new(tag.clone(), BinarySource::Prebuilt(binary));
    tokio::task::spawn_blocking(move || build_image(&options, &mut |line| println!("{line}")))
        .await
        .expect("join the build")
        .expect("build the demo image");

    let mut client = sandbox
        .agent_as_service(ServiceId::SessionManager)
        .await
        .expect("service client");

    let session_id = new_session_id();
    let spec = pb::SessionSpec {
        cores: 1.0,
        memory_mib: 512,
        ..session_spec(&session_id, &tag)
    };
    let created = client
        .create_session(pb::CreateSessionRequest { spec: Some(spec) })
        .await
        .expect("create the session")
        .into_inner();
    assert_eq!(created.state(), pb::ContainerState::Running);
    assert!(created.port > 0, "no published port: {created:?}");
    assert_eq!(created.session_password.len(), 24);
    let password = created.session_password.clone();
    let addr: SocketAddr = format!("{}:{}", created.host, created.port)
        .parse()
        .expect("host:port");
    wait_healthy(addr).await;

    let anonymous = get(addr, "/", None).await.expect("get /");
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .headers
            .contains_key(http::header::WWW_AUTHENTICATE)
    );
    let wrong = get(addr, "/", Some((USER, "not-the-password")))
        .await
        .expect("get /");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let page = get(addr, "/", Some((USER, password.as_str())))
        .await
        .expect("get /");
    assert_eq!(page.status, StatusCode::OK);
    let hostname = docker(&[
        "inspect",
        "--format",
        "{{.Config.Hostname}}",
        &created.container_id,
    ]);
    assert!(!hostname.is_empty(), "no hostname from docker inspect");
    assert!(
        page.body.contains(&hostname),
        "the page lacks the container's hostname {hostname}"
    );

    let removed = client
        .remove_session(pb::SessionRef {
            session_id: session_id.clone(),
        })
        .await
        .expect("remove the session")
        .into_inner();
    assert!(removed.removed);
    let left = client
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .expect("list sessions")
        .into_inner();
    assert!(left.sessions.is_empty(), "{:?}", left.sessions);
    let exists = Command::new("docker")
        .args(["inspect", &created.container_id])
        .output()
        .expect("docker inspect");
    assert!(!exists.status.success(), "the container is still there");
    sandbox.stop().await.expect("stop the agent");
}
