//! Against the real Docker Engine, when `ATRIUM_TEST_DOCKER=1`. Each test builds its own tiny
//! image (`FROM scratch` with the host's `sh`, `sleep` and `cat` and their libraries), runs an
//! agent with a unique id, and removes every container and image it made, even on failure.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atrium_agent::AgentConfig;
use atrium_agent::runtime::docker::DockerRuntime;
use atrium_agent::runtime::{FileEntry, FileKind};
use atrium_heartbeat::{MemoryHeartbeats, RedisHeartbeats};
use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use serde_json::json;

use crate::common::*;
use crate::docker_support::{Cleanup, TestImage, docker};

fn enabled(test: &str) -> bool {
    atrium_service_kit::testing::docker_enabled(test)
}

fn config() -> AgentConfig {
    atrium_agent::testing::test_config()
}

async fn start(config: AgentConfig) -> TestAgent {
    let runtime =
        DockerRuntime::connect(&config.docker_host, None, Duration::from_secs(30)).unwrap();
    TestAgent::start(config, Arc::new(runtime), Arc::new(MemoryHeartbeats::new()))
        .await
        .unwrap()
}

async fn engine() -> Docker {
    Docker::connect_with_socket_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

async fn inspect(id: &str) -> ContainerInspectResponse {
    engine().await.inspect_container(id, None).await.unwrap()
}

#[tokio::test]
async fn docker_lifecycle_hardening_and_files() {
    if !enabled("docker_lifecycle_hardening_and_files") {
        return;
    }
    let image = TestImage::build();
    let config = config();
    let _cleanup = Cleanup(config.agent_id.clone().unwrap());
    let agent = start(config).await;
    let mut c = agent.service().await.unwrap();
    let shared = tempfile::tempdir().unwrap();
    let id = new_session_id();
    let mut spec = session_spec(&id, &image.tag);
    spec.environment.insert("GREETING".into(), "hello".into());
    spec.volumes.push(pb::VolumeMount {
        host_path: shared.path().display().to_string(),
        container_path: "/shared".into(),
        read_only: true,
    });
    spec.files.push(pb::FileMount {
        destination: "/etc/atrium/policy.json".into(),
        content: b"{\"bookmarks\": []}".to_vec(),
        readable: true,
        writable: true,
        executable: false,
    });
    spec.expose_user_environment = true;
    spec.username = "alice".into();
    spec.inject_ssh_keys = true;
    spec.ssh_public_key = "ssh-ed25519 AAAAC3 alice@atrium".into();
    spec.ssh_private_key =
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n".into();

    let created = ok(c.create_session(create(spec.clone())).await);
    assert_eq!(state(&created), pb::ContainerState::Running);
    assert!(created.port > 0, "{created:?}");
    let again = ok(c.create_session(create(spec)).await);
    assert_eq!(
        (again.container_id.as_str(), again.session_password.as_str()),
        (
            created.container_id.as_str(),
            created.session_password.as_str()
        )
    );

    let inspected = inspect(&created.container_id).await;
    assert_eq!(
        inspected.name.as_deref(),
        Some(format!("/atrium-session-{id}").as_str())
    );
    let host = inspected.host_config.clone().unwrap();
    assert_eq!(host.memory, Some(256 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.pids_limit, Some(4096));
    assert_eq!(host.privileged, Some(false));
    assert!(
        host.security_opt
            .unwrap_or_default()
            .contains(&"no-new-privileges".to_owned())
    );
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    let labels = inspected.config.clone().unwrap().labels.unwrap();
    assert_eq!(labels["atrium.session_id"], id);
    assert_eq!(labels["atrium.agent_id"], agent.agent_id());
    assert_eq!(
        labels["atrium.user_id"],
        "00000000-0000-4000-8000-000000000001"
    );
    assert_eq!(
        labels["atrium.workspace_id"],
        "00000000-0000-4000-8000-0000000000aa"
    );
    let env = inspected.config.unwrap().env.unwrap();
    for want in [
        "GREETING=hello",
        "KASM_USER=alice",
        &format!("VNC_PW={}", created.session_password),
    ] {
        assert!(env.iter().any(|e| e == want), "{want} in {env:?}");
    }
    let mount = inspected
        .mounts
        .unwrap()
        .into_iter()
        .find(|m| m.destination.as_deref() == Some("/shared"))
        .expect("bind mount");
    assert_eq!(mount.rw, Some(false));
    let published = inspected.network_settings.unwrap().ports.unwrap()["6901/tcp"]
        .clone()
        .unwrap();
    assert_eq!(published[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        published[0].host_port.as_deref(),
        Some(created.port.to_string().as_str())
    );

    let runtime =
        DockerRuntime::connect("unix:///var/run/docker.sock", None, Duration::from_secs(5))
            .unwrap();
    let file = |entries: Vec<FileEntry>| entries.into_iter().next().expect("one entry");
    let policy = file(
        runtime
            .download(&created.container_id, "/etc/atrium/policy.json")
            .await
            .unwrap(),
    );
    assert_eq!((policy.mode, policy.uid, policy.gid), (0o644, 1000, 1000));
    assert_eq!(policy.kind, FileKind::File(b"{\"bookmarks\": []}".to_vec()));
    let private = file(
        runtime
            .download(&created.container_id, "/home/kasm-user/.ssh/id_ed25519")
            .await
            .unwrap(),
    );
    assert_eq!((private.mode, private.uid), (0o600, 1000));
    let public = file(
        runtime
            .download(&created.container_id, "/home/kasm-user/.ssh/id_ed25519.pub")
            .await
            .unwrap(),
    );
    assert_eq!(public.mode, 0o644);
    assert_eq!(
        public.kind,
        FileKind::File(b"ssh-ed25519 AAAAC3 alice@atrium\n".to_vec())
    );
    let ssh_dir = file(
        runtime
            .download(&created.container_id, "/home/kasm-user/.ssh")
            .await
            .unwrap(),
    );
    assert_eq!(
        (ssh_dir.kind, ssh_dir.mode, ssh_dir.uid),
        (FileKind::Directory, 0o700, 1000)
    );

    let out = ok(c
        .exec_in_session(pb::ExecRequest {
            session_id: id.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo $GREETING $EXTRA; exit 3".into(),
            ],
            environment: [("EXTRA".to_owned(), "there".to_owned())].into(),
            ..Default::default()
        })
        .await);
    assert_eq!((out.exit_code, out.output.as_str()), (3, "hello there\n"));

    let r = || session_ref(&id);
    for _ in 0..2 {
        assert_eq!(
            state(&ok(c.pause_session(r()).await)),
            pb::ContainerState::Paused
        );
    }
    for _ in 0..2 {
        assert_eq!(
            state(&ok(c.resume_session(r()).await)),
            pb::ContainerState::Running
        );
    }
    for _ in 0..2 {
        let stopped = ok(c.stop_session(r()).await);
        assert_eq!(
            (state(&stopped), stopped.port),
            (pb::ContainerState::Stopped, 0)
        );
    }
    err(c.pause_session(r()).await, Code::FailedPrecondition);
    for _ in 0..2 {
        let started = ok(c.start_session(r()).await);
        assert_eq!(state(&started), pb::ContainerState::Running);
        assert!(started.port > 0);
    }
    assert!(ok(c.remove_session(r()).await).removed);
    assert!(!ok(c.remove_session(r()).await).removed);
    assert_eq!(
        state(&ok(c.inspect_session(r()).await)),
        pb::ContainerState::Missing
    );
    err(c.stop_session(r()).await, Code::NotFound);
}

#[tokio::test]
async fn docker_refuses_bad_run_config_and_missing_images_leaving_nothing() {
    if !enabled("docker_refuses_bad_run_config_and_missing_images_leaving_nothing") {
        return;
    }
    let image = TestImage::build();
    let config = config();
    let agent_id = config.agent_id.clone().unwrap();
    let _cleanup = Cleanup(agent_id.clone());
    let agent = start(config).await;
    let mut c = agent.service().await.unwrap();
    let mut spec = session_spec(&new_session_id(), &image.tag);
    spec.run_config_json = json!({"hostname": "kasm", "volumes_from": ["db"]}).to_string();
    let refused = err(c.create_session(create(spec)).await, Code::InvalidArgument);
    assert_eq!(field(&refused), "spec.run_config_json.volumes_from");
    let missing = session_spec(&new_session_id(), "atrium-agent-test-absent:nope");
    let absent = err(
        c.create_session(create(missing)).await,
        Code::FailedPrecondition,
    );
    assert!(
        absent.message().contains("not present on this node"),
        "{}",
        absent.message()
    );
    let mut gpu = session_spec(&new_session_id(), &image.tag);
    gpu.gpu_count = 1;
    if agent.core.capacity().gpus == 0 {
        let refused = err(
            c.create_session(create(gpu)).await,
            Code::FailedPrecondition,
        );
        assert!(
            refused.message().contains("no GPUs"),
            "{}",
            refused.message()
        );
    }
    let filter = format!("label=atrium.agent_id={agent_id}");
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &filter]).trim(),
        "",
        "nothing left behind"
    );
}

#[tokio::test]
async fn docker_list_reports_containers_left_by_a_previous_agent() {
    if !enabled("docker_list_reports_containers_left_by_a_previous_agent") {
        return;
    }
    let image = TestImage::build();
    let config = config();
    let _cleanup = Cleanup(config.agent_id.clone().unwrap());
    let first = start(config.clone()).await;
    let id = new_session_id();
    let created = ok(first
        .service()
        .await
        .unwrap()
        .create_session(create(session_spec(&id, &image.tag)))
        .await);
    first.stop().await.unwrap();

    let second = start(config).await;
    let mut c = second.service().await.unwrap();
    let listed = ok(c.list_sessions(pb::ListSessionsRequest {}).await).sessions;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let held = &listed[0];
    assert_eq!(
        (held.session_id.as_str(), held.container_id.as_str()),
        (id.as_str(), created.container_id.as_str())
    );
    assert_eq!(state(held), pb::ContainerState::Running);
    assert_eq!(
        (held.cores, held.memory_mib, held.port),
        (0.5, 256, created.port)
    );
    let status = ok(c.get_status(pb::GetStatusRequest {}).await);
    assert_eq!((status.state.as_str(), status.session_count), ("active", 1));
    assert_eq!(status.allocated.unwrap().memory_mib, 256);
    assert!(status.capacity.unwrap().cores >= 1.0);
    assert!(status.images.contains(&image.tag), "{:?}", status.images);
    assert!(ok(c.remove_session(session_ref(&id)).await).removed);
}

#[tokio::test]
async fn docker_heartbeats_land_in_redis_with_a_ttl() {
    if !enabled("docker_heartbeats_land_in_redis_with_a_ttl") {
        return;
    }
    let Some(url) =
        atrium_heartbeat::testing::redis_url("docker_heartbeats_land_in_redis_with_a_ttl")
    else {
        return;
    };
    let mut config = config();
    config.heartbeat_interval_secs = 2;
    let runtime =
        DockerRuntime::connect(&config.docker_host, None, Duration::from_secs(30)).unwrap();
    let store = Arc::new(RedisHeartbeats::new(&url).unwrap());
    let agent = TestAgent::start(config, Arc::new(runtime), store.clone())
        .await
        .unwrap();
    let beat = eventually(Duration::from_secs(10), "a heartbeat", || async {
        store.get(agent.agent_id()).await.unwrap()
    })
    .await;
    assert_eq!(beat.state, "active", "{}", beat.reason);
    let capacity = beat.capacity.unwrap_or_default();
    assert!(
        capacity.cores >= 1.0 && capacity.memory_mib > 0,
        "{capacity:?}"
    );
    let ttl = store
        .time_to_live(agent.agent_id())
        .await
        .unwrap()
        .expect("a TTL");
    assert!(
        ttl <= Duration::from_secs(6),
        "TTL of three 2-second intervals, got {ttl:?}"
    );
    assert_eq!(
        crate::common::health(&agent).await,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let agent_id = agent.agent_id().to_owned();
    agent.stop().await.unwrap();
    use atrium_heartbeat::HeartbeatStore as _;
    store.remove(&agent_id).await.unwrap();
}

#[test]
fn docker_socket_default_matches_the_engine() {
    // The default config dials the standard socket, which is where scripts/test finds Docker.
    assert_eq!(
        AgentConfig::default().docker_host,
        "unix:///var/run/docker.sock"
    );
    if std::env::var("ATRIUM_TEST_DOCKER").as_deref() == Ok("1") {
        assert!(Path::new("/var/run/docker.sock").exists());
    }
}
