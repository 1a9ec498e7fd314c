//! Launch to running with live progress, the secret only for the gateway, keepalive, explain,
//! pause/stop/resume keeping the user's files, GoSession, file mappings and SSH keys, and
//! delete confirmed by the agent.

use std::net::SocketAddr;
use std::time::Duration;

use atrium_proto::identity::v1 as id_pb;
use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as pb;
use atrium_workspace::client::{USER, get, send};

use crate::common::*;

#[tokio::test]
async fn a_launch_streams_its_progress_runs_is_kept_alive_and_is_deleted() {
    if !docker("a_launch_streams_its_progress") {
        return;
    }
    let stack = Stack::start(Opts::default()).await;
    let alice = stack
        .user("alice", &[("keepalive_expiration", "120")])
        .await;
    let mut sessions = stack.sessions(&alice.credential).await;
    let requested = stack.launch(&alice).await;
    assert_eq!(observed(&requested), pb::ObservedState::Requested);
    assert!(requested.expires_at.is_some(), "a deadline from the start");

    let seen = reach(&mut sessions, &requested.id, pb::ObservedState::Running).await;
    let states: Vec<pb::ObservedState> = seen.iter().map(observed).collect();
    assert!(states.contains(&pb::ObservedState::Starting), "{states:?}");
    let progress: Vec<u32> = seen.iter().map(|s| s.progress).collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress goes up: {progress:?}"
    );
    let running = seen.last().expect("running");
    assert_eq!(running.progress, 100);
    assert!(running.port > 0 && !running.host.is_empty(), "{running:?}");
    assert!(running.started_at.is_some());

    // The session's secret: the gateway's identity only.
    let refused = sessions
        .get_session_secret(pb::SessionRef {
            session_id: running.id.clone(),
        })
        .await
        .expect_err("a user may not read the secret");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let secret = stack
        .gateway()
        .await
        .get_session_secret(pb::SessionRef {
            session_id: running.id.clone(),
        })
        .await
        .expect("the gateway reads the secret")
        .into_inner();
    let addr: SocketAddr = format!("{}:{}", secret.host, secret.port).parse().unwrap();
    let page = get(addr, "/", Some((USER, secret.password.as_str())))
        .await
        .unwrap();
    assert_eq!(page.status.as_u16(), 200);

    // Keepalive moves the deadline to now + keepalive_expiration.
    let before = running.expires_at.unwrap().seconds;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kept = sessions
        .keepalive(pb::SessionRef {
            session_id: running.id.clone(),
        })
        .await
        .expect("keepalive")
        .into_inner();
    assert!(kept.extended);
    let now = chrono::Utc::now().timestamp();
    let until = kept.expires_at.unwrap().seconds;
    assert!(
        (now + 118..=now + 121).contains(&until),
        "{until} vs now {now}"
    );
    assert!(until > before);

    let explained = sessions
        .explain_session(pb::SessionRef {
            session_id: running.id.clone(),
        })
        .await
        .expect("explain")
        .into_inner();
    assert_eq!(explained.ending_rule, "keepalive");
    assert_eq!(explained.action, "delete");
    assert!(
        explained.reasons.join(" ").contains("keepalive_expiration"),
        "{explained:?}"
    );

    // Listing: own sessions; everyone's needs sessions.view.
    let own = sessions
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.sessions.len(), 1);
    let all = sessions
        .list_sessions(pb::ListSessionsRequest {
            all_users: true,
            ..Default::default()
        })
        .await
        .expect_err("all users needs sessions.view");
    assert_eq!(all.code(), tonic::Code::PermissionDenied);

    // Delete is complete only when the agent confirms the container is gone.
    delete_and_wait(&mut sessions, &running.id).await;
    let filter = format!("label=atrium.session_id={}", running.id);
    let (_, left) = docker_cli(&["ps", "-aq", "--filter", &filter]);
    assert!(left.is_empty(), "the container is still there: {left}");
    let keepalive = sessions
        .keepalive(pb::SessionRef {
            session_id: running.id.clone(),
        })
        .await
        .expect_err("a deleted session is not kept alive");
    assert_eq!(keepalive.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn stop_pause_and_resume_keep_the_users_files_and_go_resumes() {
    if !docker("stop_pause_and_resume_keep_the_users_files") {
        return;
    }
    let stack = Stack::start(Opts::default()).await;
    let bob = stack
        .user(
            "bob",
            &[("allow_kasm_stop", "true"), ("allow_kasm_pause", "true")],
        )
        .await;
    // Bob's own default workspace beats any group default_image.
    stack
        .identity()
        .await
        .update_user_settings(id_pb::UpdateUserSettingsRequest {
            user_id: bob.id.clone(),
            default_workspace_image: Some(stack.workspace_id.clone()),
            ..Default::default()
        })
        .await
        .expect("set bob's default workspace");
    let mut sessions = stack.sessions(&bob.credential).await;
    let go = sessions
        .go_session(pb::GoSessionRequest::default())
        .await
        .expect("go")
        .into_inner();
    assert_eq!(go.workspace_id, stack.workspace_id);
    reach(&mut sessions, &go.id, pb::ObservedState::Running).await;
    let gateway = &mut stack.gateway().await;
    let secret = |g: &mut Sessions| {
        let id = go.id.clone();
        let mut g = g.clone();
        async move {
            g.get_session_secret(pb::SessionRef { session_id: id })
                .await
                .expect("secret")
                .into_inner()
        }
    };
    let s = secret(gateway).await;
    let addr: SocketAddr = format!("{}:{}", s.host, s.port).parse().unwrap();
    let saved = send(
        addr,
        http::Method::POST,
        "/notes",
        Some((USER, s.password.as_str())),
        "written before the stop",
    )
    .await
    .unwrap();
    assert!(saved.status.is_success(), "{saved:?}");

    sessions
        .stop(pb::SessionRef {
            session_id: go.id.clone(),
        })
        .await
        .expect("stop");
    reach(&mut sessions, &go.id, pb::ObservedState::Stopped).await;
    let explained = sessions
        .explain_session(pb::SessionRef {
            session_id: go.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        explained.reasons.join(" ").contains("at rest"),
        "{explained:?}"
    );

    // GoSession resumes the stopped session instead of making another.
    let again = sessions
        .go_session(pb::GoSessionRequest::default())
        .await
        .expect("go")
        .into_inner();
    assert_eq!(again.id, go.id);
    reach(&mut sessions, &go.id, pb::ObservedState::Running).await;
    let s = secret(gateway).await;
    let addr: SocketAddr = format!("{}:{}", s.host, s.port).parse().unwrap();
    let notes = get(addr, "/notes", Some((USER, s.password.as_str())))
        .await
        .unwrap();
    assert_eq!(notes.body, "written before the stop");

    sessions
        .pause(pb::SessionRef {
            session_id: go.id.clone(),
        })
        .await
        .expect("pause");
    reach(&mut sessions, &go.id, pb::ObservedState::Paused).await;
    sessions
        .resume(pb::SessionRef {
            session_id: go.id.clone(),
        })
        .await
        .expect("resume");
    reach(&mut sessions, &go.id, pb::ObservedState::Running).await;
    let notes = get(addr, "/notes", Some((USER, s.password.as_str())))
        .await
        .unwrap();
    assert_eq!(notes.body, "written before the stop");

    // Every lifecycle change was recorded for billing: one list per session.
    let listed = sessions
        .list_sessions(pb::ListSessionsRequest {
            include_ended: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sessions.len(), 1, "GoSession made no second session");
}

#[tokio::test]
async fn file_mappings_and_ssh_keys_arrive_in_the_container() {
    if !docker("file_mappings_and_ssh_keys_arrive") {
        return;
    }
    let stack = Stack::start(Opts::default()).await;
    let carol = stack.user("carol", &[("inject_ssh_keys", "true")]).await;
    let key = stack
        .identity()
        .await
        .generate_ssh_key(id_pb::GenerateSshKeyRequest {
            user_id: carol.id.clone(),
        })
        .await
        .expect("ssh key")
        .into_inner();
    stack
        .policy()
        .await
        .create_file_mapping(pol::FileMapping {
            scope: Some(pol::file_mapping::Scope::GroupId(carol.group_id.clone())),
            name: "greeting".into(),
            destination: "/home/kasm-user/greeting.txt".into(),
            content: "hello from the group".into(),
            readable: true,
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("file mapping");
    let mut sessions = stack.sessions(&carol.credential).await;
    let s = stack.launch(&carol).await;
    reach(&mut sessions, &s.id, pb::ObservedState::Running).await;
    let container = format!("atrium-session-{}", s.id);
    let read = |path: &str| {
        let out = std::process::Command::new("docker")
            .args(["cp", &format!("{container}:{path}"), "-"])
            .output()
            .expect("docker cp");
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // docker cp answers a tar stream: the content is in it.
    assert!(read("/home/kasm-user/greeting.txt").contains("hello from the group"));
    let public = key.public_key.split_whitespace().nth(1).unwrap().to_owned();
    let ssh = read("/home/kasm-user/.ssh");
    assert!(ssh.contains(&public), "the public key is in ~/.ssh");
}
