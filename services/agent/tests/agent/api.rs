//! The API over the in-memory runtime: authentication, idempotency of every call, validation,
//! capacity checks, listing, status and pulls.

use std::collections::HashMap;

use atrium_agent::runtime::ContainerRuntime as _;
use atrium_agent::spec::{self, BuildContext, SessionSpec};
use atrium_service_kit::auth::{Credential, ServiceId};
use futures::StreamExt as _;
use serde_json::json;

use crate::common::*;

const IMAGE: &str = "atrium/workspace-demo:latest";

async fn agent_with_image(
    tweak: impl FnOnce(&mut atrium_agent::AgentConfig),
) -> (
    TestAgent,
    std::sync::Arc<atrium_agent::runtime::memory::MemoryRuntime>,
    Client,
) {
    let (agent, runtime) = TestAgent::in_memory(tweak).await.expect("start agent");
    runtime.add_image(IMAGE);
    let client = agent.service().await.expect("client");
    (agent, runtime, client)
}

#[tokio::test]
async fn only_the_service_credential_is_accepted() {
    let (agent, _runtime, mut service) = agent_with_image(|_| {}).await;
    let anonymous = agent
        .client(None)
        .await
        .unwrap()
        .get_status(pb::GetStatusRequest {})
        .await;
    err(anonymous, Code::Unauthenticated);
    // Another service's certificate is not the session-manager's: refused before the handler.
    for other in [
        ServiceId::Agent,
        ServiceId::Identity,
        ServiceId::Policy,
        ServiceId::Gateway,
        ServiceId::BillingUsage,
    ] {
        let mut client = agent.as_service(other).await.unwrap();
        err(
            client.list_sessions(pb::ListSessionsRequest {}).await,
            Code::PermissionDenied,
        );
        let create = client
            .create_session(pb::CreateSessionRequest::default())
            .await;
        err(create, Code::PermissionDenied);
    }
    let bearer = agent
        .client(Some(Credential::Bearer("a.b.c".into())))
        .await
        .unwrap()
        .list_sessions(pb::ListSessionsRequest {})
        .await;
    err(bearer, Code::Unauthenticated);
    let api_key = agent
        .client(Some(Credential::ApiKey {
            id: "k".into(),
            secret: "s".into(),
        }))
        .await
        .unwrap()
        .list_images(pb::ListImagesRequest {})
        .await;
    err(api_key, Code::Unauthenticated);
    ok(service.get_status(pb::GetStatusRequest {}).await);
}

#[tokio::test]
async fn every_lifecycle_call_is_idempotent() {
    let (_agent, _runtime, mut c) = agent_with_image(|_| {}).await;
    let id = new_session_id();
    let first = ok(c.create_session(create(session_spec(&id, IMAGE))).await);
    assert_eq!(state(&first), pb::ContainerState::Running);
    assert!(first.port > 0, "{first:?}");
    assert_eq!(first.host, "127.0.0.1");
    assert_eq!(first.session_password.len(), 24);
    assert_eq!(
        (first.cores, first.memory_mib, first.gpu_count),
        (0.5, 256, 0)
    );
    assert!(first.created_at.is_some());

    let again = ok(c.create_session(create(session_spec(&id, IMAGE))).await);
    assert_eq!(again.container_id, first.container_id);
    assert_eq!(
        again.session_password, first.session_password,
        "a retried create can still learn the password"
    );

    let r = || session_ref(&id);
    for _ in 0..2 {
        let started = ok(c.start_session(r()).await);
        assert_eq!(state(&started), pb::ContainerState::Running);
        assert!(
            started.session_password.is_empty(),
            "only create answers the password"
        );
    }
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
    ok(c.pause_session(r()).await);
    for _ in 0..2 {
        let stopped = ok(c.stop_session(r()).await);
        assert_eq!(
            state(&stopped),
            pb::ContainerState::Stopped,
            "a paused session stops too"
        );
        assert_eq!(stopped.port, 0);
    }
    let pause_stopped = err(c.pause_session(r()).await, Code::FailedPrecondition);
    assert!(
        pause_stopped.message().contains("stopped"),
        "{}",
        pause_stopped.message()
    );
    assert_eq!(
        state(&ok(c.resume_session(r()).await)),
        pb::ContainerState::Running
    );
    ok(c.pause_session(r()).await);
    assert_eq!(
        state(&ok(c.start_session(r()).await)),
        pb::ContainerState::Running
    );

    assert!(ok(c.remove_session(r()).await).removed);
    assert!(
        !ok(c.remove_session(r()).await).removed,
        "removing a missing container succeeds"
    );
    let gone = ok(c.inspect_session(r()).await);
    assert_eq!(state(&gone), pb::ContainerState::Missing);
    err(c.stop_session(r()).await, Code::NotFound);
    err(c.start_session(r()).await, Code::NotFound);
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let (_agent, runtime, mut c) = agent_with_image(|_| {}).await;
    let missing = err(
        c.create_session(pb::CreateSessionRequest { spec: None })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(field(&missing), "spec");
    let mut spec = session_spec(&new_session_id(), IMAGE);
    spec.run_config_json = json!({"hostname": "kasm", "pid_mode": "host"}).to_string();
    let refused = err(c.create_session(create(spec)).await, Code::InvalidArgument);
    assert_eq!(field(&refused), "spec.run_config_json.pid_mode");
    assert!(
        refused.message().contains("\"pid_mode\" is not allowed"),
        "{}",
        refused.message()
    );
    let bad_ref = err(
        c.stop_session(session_ref("../etc")).await,
        Code::InvalidArgument,
    );
    assert_eq!(field(&bad_ref), "session_id");
    let no_cmd = err(
        c.exec_in_session(pb::ExecRequest {
            session_id: new_session_id(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(field(&no_cmd), "cmd");
    let absent = err(
        c.create_session(create(session_spec(&new_session_id(), "not/here:1")))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        absent.message().contains("not present on this node"),
        "{}",
        absent.message()
    );
    assert!(
        ok(c.list_sessions(pb::ListSessionsRequest {}).await)
            .sessions
            .is_empty()
    );
    assert!(
        runtime.list(&[]).await.unwrap().is_empty(),
        "nothing half-created"
    );
}

#[tokio::test]
async fn gpus_and_capacity_are_checked_before_creating() {
    let (_agent, _runtime, mut c) = agent_with_image(|config| {
        config.capacity.cores = Some(1.0);
        config.capacity.gpus = Some(0);
    })
    .await;
    let mut gpu = session_spec(&new_session_id(), IMAGE);
    gpu.gpu_count = 1;
    let refused = err(
        c.create_session(create(gpu)).await,
        Code::FailedPrecondition,
    );
    assert!(
        refused.message().contains("no GPUs"),
        "{}",
        refused.message()
    );
    ok(
        c.create_session(create(session_spec(&new_session_id(), IMAGE)))
            .await,
    );
    ok(
        c.create_session(create(session_spec(&new_session_id(), IMAGE)))
            .await,
    );
    let full = err(
        c.create_session(create(session_spec(&new_session_id(), IMAGE)))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        full.message().contains("cores: 0.5 requested, 0 free of 1"),
        "{}",
        full.message()
    );
}

#[tokio::test]
async fn exec_runs_only_in_running_sessions() {
    let (_agent, runtime, mut c) = agent_with_image(|_| {}).await;
    let id = new_session_id();
    ok(c.create_session(create(session_spec(&id, IMAGE))).await);
    let request = || pb::ExecRequest {
        session_id: id.clone(),
        cmd: vec!["echo".into(), "hi".into()],
        user: "kasm-user".into(),
        environment: HashMap::from([("A".into(), "1".into())]),
        workdir: "/tmp".into(),
        privileged: false,
    };
    let out = ok(c.exec_in_session(request()).await);
    assert_eq!((out.exit_code, out.output.as_str()), (0, "echo hi"));
    let (_, ran) = runtime.execs().pop().expect("one exec");
    assert_eq!(
        (ran.user.as_deref(), ran.workdir.as_deref(), ran.env.clone()),
        (Some("kasm-user"), Some("/tmp"), vec!["A=1".to_owned()])
    );
    ok(c.pause_session(session_ref(&id)).await);
    let paused = err(c.exec_in_session(request()).await, Code::FailedPrecondition);
    assert!(paused.message().contains("paused"), "{}", paused.message());
    ok(c.remove_session(session_ref(&id)).await);
    err(c.exec_in_session(request()).await, Code::NotFound);
}

#[tokio::test]
async fn list_and_status_report_what_the_agent_holds() {
    let (agent, runtime, mut c) = agent_with_image(|_| {}).await;
    let (a, b) = (new_session_id(), new_session_id());
    ok(c.create_session(create(session_spec(&a, IMAGE))).await);
    let mut big = session_spec(&b, IMAGE);
    big.cores = 2.0;
    big.memory_mib = 4096;
    ok(c.create_session(create(big)).await);
    ok(c.stop_session(session_ref(&b)).await);

    // A container of another agent on the same engine is not this agent's.
    let other = SessionSpec::try_from(session_spec(&new_session_id(), IMAGE)).unwrap();
    let hardening = atrium_agent::config::HardeningConfig::default();
    let ctx = BuildContext {
        agent_id: "someone-else",
        publish_ip: "127.0.0.1".parse().unwrap(),
        session_port: 6901,
        hardening: &hardening,
    };
    runtime
        .create(&spec::build(&other, &ctx, "pw"))
        .await
        .unwrap();

    let listed = ok(c.list_sessions(pb::ListSessionsRequest {}).await).sessions;
    let mut ids: Vec<&str> = listed.iter().map(|s| s.session_id.as_str()).collect();
    ids.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert!(listed.iter().all(|s| s.session_password.is_empty()));

    let status = ok(c.get_status(pb::GetStatusRequest {}).await);
    assert_eq!(status.agent_id, agent.agent_id());
    assert_eq!(status.state, "active");
    assert_eq!(status.zone, "default");
    assert_eq!(status.address, format!("127.0.0.1:{}", agent.addr.port()));
    assert_eq!(status.session_count, 2);
    let allocated = status.allocated.unwrap();
    assert_eq!(
        (allocated.cores, allocated.memory_mib),
        (2.5, 4352),
        "stopped sessions keep their reservation"
    );
    let capacity = status.capacity.unwrap();
    assert_eq!((capacity.cores, capacity.memory_mib), (8.0, 16384));
    assert_eq!(status.images, vec![IMAGE.to_owned()]);
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    let images = ok(c.list_images(pb::ListImagesRequest {}).await).images;
    assert_eq!(images[0].tags, vec![IMAGE.to_owned()]);
}

#[tokio::test]
async fn a_never_started_container_is_replaced_on_create() {
    let (agent, runtime, mut c) = agent_with_image(|_| {}).await;
    let id = new_session_id();
    let spec = SessionSpec::try_from(session_spec(&id, IMAGE)).unwrap();
    let hardening = atrium_agent::config::HardeningConfig::default();
    let ctx = BuildContext {
        agent_id: agent.agent_id(),
        publish_ip: "127.0.0.1".parse().unwrap(),
        session_port: 6901,
        hardening: &hardening,
    };
    let leftover = runtime
        .create(&spec::build(&spec, &ctx, "old"))
        .await
        .unwrap();
    let created = ok(c.create_session(create(session_spec(&id, IMAGE))).await);
    assert_ne!(created.container_id, leftover);
    assert_eq!(state(&created), pb::ContainerState::Running);
    assert_ne!(created.session_password, "old");
}

async fn pull(c: &mut Client, image: &str) -> Result<Vec<pb::PullProgress>, tonic::Status> {
    let mut stream = c
        .pull_image(pb::PullImageRequest {
            image: image.into(),
        })
        .await?
        .into_inner();
    let mut steps = Vec::new();
    while let Some(step) = stream.next().await {
        steps.push(step?);
    }
    Ok(steps)
}

#[tokio::test]
async fn pulls_stream_progress_and_say_when_no_registry_answers() {
    let (_agent, runtime, mut c) = agent_with_image(|_| {}).await;
    runtime.add_pullable("team/app:1");
    let steps = pull(&mut c, "team/app:1").await.expect("pull");
    assert_eq!(steps.last().map(|s| s.percent), Some(100));
    assert!(
        ok(c.list_images(pb::ListImagesRequest {}).await)
            .images
            .iter()
            .any(|i| i.tags == ["team/app:1"])
    );
    let absent = pull(&mut c, "team/other:1").await.expect_err("no registry");
    assert_eq!(absent.code(), Code::FailedPrecondition);
    assert!(
        absent.message().contains("image not present on this node"),
        "{}",
        absent.message()
    );
    let held = pull(&mut c, IMAGE).await.expect("already held");
    assert!(
        held.last()
            .unwrap()
            .status
            .contains("using the image already on this node")
    );
    let bad = pull(&mut c, "").await.expect_err("empty");
    assert_eq!(bad.code(), Code::InvalidArgument);
}
