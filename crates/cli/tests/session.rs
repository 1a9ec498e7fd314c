//! The session and placement commands through the compiled `atrium` binary, against a scripted
//! session-manager (a fake `SessionService` on a real gRPC port, plaintext): what each command
//! sends, how a launch follows WatchSession to running (exit 0) or to failure (exit 1 with the
//! reason), and what people and programs see. End-to-end tests against the real
//! session-manager come with its test server.
//!
//! Workspaces and users are given by id, so no policy or identity call is needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atrium_proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
use atrium_proto::session::v1::{
    AgentVerdict, DesiredState, ExecRequest, ExecResponse, ExplainPlacementRequest,
    GetSessionRequest, GoSessionRequest, KeepaliveResponse, ListSessionsRequest,
    ListSessionsResponse, ObservedState, PlacementExplanation, RequestSessionRequest, Session,
    SessionExplanation, SessionRef, SessionSecret,
};
use serde_json::Value;
use tokio::process::Command;
use tonic::codegen::tokio_stream::{self, Stream};
use tonic::{Request, Response, Status};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const NOWHERE: &str = "https://127.0.0.1:9";
const WORKSPACE_OK: &str = "00000000-0000-7000-8000-00000000000a";
const WORKSPACE_BAD: &str = "00000000-0000-7000-8000-00000000000b";
const ALICE: &str = "00000000-0000-7000-8000-0000000000a1";

fn session(id: &str, observed: ObservedState, progress: u32, message: &str) -> Session {
    let running = observed == ObservedState::Running;
    Session {
        id: id.into(),
        user_id: ALICE.into(),
        workspace_id: WORKSPACE_OK.into(),
        image: "kasmweb/chrome:1.16.0".into(),
        desired_state: if observed == ObservedState::Deleted {
            DesiredState::Deleted
        } else {
            DesiredState::Running
        } as i32,
        observed_state: observed as i32,
        progress,
        message: message.into(),
        agent_id: if running {
            "node-1".into()
        } else {
            String::new()
        },
        host: if running {
            "10.0.0.5".into()
        } else {
            String::new()
        },
        port: if running { 32768 } else { 0 },
        created_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// What the session goes through, by id.
fn script(id: &str) -> Vec<Session> {
    match id {
        "s-bad" => vec![
            session(id, ObservedState::Requested, 0, "placed on node-1"),
            session(id, ObservedState::Starting, 20, "pulling the image"),
            session(id, ObservedState::Failed, 20, "image not found"),
        ],
        "s-gone" => vec![
            session(id, ObservedState::Running, 100, ""),
            session(id, ObservedState::Deleted, 100, "deleted by its user"),
        ],
        _ => vec![
            session(id, ObservedState::Requested, 0, "placed on node-1"),
            session(id, ObservedState::Starting, 40, "pulling the image"),
            session(id, ObservedState::Starting, 80, "waiting for port 6901"),
            session(id, ObservedState::Running, 100, ""),
        ],
    }
}

/// A scripted session-manager that records what it was asked.
#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<Session, Status>> + Send>>;

#[tonic::async_trait]
impl SessionService for Fake {
    async fn request_session(
        &self,
        request: Request<RequestSessionRequest>,
    ) -> Result<Response<Session>, Status> {
        let r = request.into_inner();
        let options = r.options.unwrap_or_default();
        let mut env: Vec<String> = options
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.sort();
        self.record(format!(
            "request user={} workspace={} env={} url={} zone={}",
            r.user_id,
            r.workspace_id,
            env.join(","),
            options.url,
            options.zone_id
        ));
        let id = if r.workspace_id == WORKSPACE_BAD {
            "s-bad"
        } else {
            "s-ok"
        };
        Ok(Response::new(script(id)[0].clone()))
    }

    async fn get_session(
        &self,
        request: Request<GetSessionRequest>,
    ) -> Result<Response<Session>, Status> {
        let id = request.into_inner().session_id;
        self.record(format!("get {id}"));
        match script(&id).pop() {
            Some(s) if id.starts_with("s-") => Ok(Response::new(s)),
            _ => Err(Status::not_found(format!("session {id} not found"))),
        }
    }

    type WatchSessionStream = WatchStream;

    async fn watch_session(
        &self,
        request: Request<GetSessionRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let id = request.into_inner().session_id;
        self.record(format!("watch {id}"));
        let updates: Vec<Result<Session, Status>> = script(&id).into_iter().map(Ok).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(updates))))
    }

    async fn list_sessions(
        &self,
        request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let r = request.into_inner();
        self.record(format!(
            "list all={} user={} workspace={} agent={} state={} ended={}",
            r.all_users, r.user_id, r.workspace_id, r.agent_id, r.observed_state, r.include_ended
        ));
        Ok(Response::new(ListSessionsResponse {
            sessions: vec![
                session("s-ok", ObservedState::Running, 100, ""),
                session("s-new", ObservedState::Starting, 40, "pulling"),
            ],
            page: None,
        }))
    }

    async fn keepalive(
        &self,
        request: Request<SessionRef>,
    ) -> Result<Response<KeepaliveResponse>, Status> {
        self.record(format!("keepalive {}", request.into_inner().session_id));
        Ok(Response::new(KeepaliveResponse {
            expires_at: Some(prost_types::Timestamp {
                seconds: 1_700_003_600,
                nanos: 0,
            }),
            extended: true,
            message: String::new(),
        }))
    }

    async fn pause(&self, request: Request<SessionRef>) -> Result<Response<Session>, Status> {
        self.desire("pause", request, DesiredState::Paused)
    }

    async fn stop(&self, request: Request<SessionRef>) -> Result<Response<Session>, Status> {
        self.desire("stop", request, DesiredState::Stopped)
    }

    async fn resume(&self, request: Request<SessionRef>) -> Result<Response<Session>, Status> {
        self.desire("resume", request, DesiredState::Running)
    }

    async fn delete(&self, request: Request<SessionRef>) -> Result<Response<Session>, Status> {
        self.desire("delete", request, DesiredState::Deleted)
    }

    async fn force_delete(
        &self,
        request: Request<SessionRef>,
    ) -> Result<Response<Session>, Status> {
        let mut s = self.desire("force_delete", request, DesiredState::Deleted)?;
        s.get_mut().observed_state = ObservedState::Deleted as i32;
        Ok(s)
    }

    async fn exec(&self, request: Request<ExecRequest>) -> Result<Response<ExecResponse>, Status> {
        let r = request.into_inner();
        self.record(format!(
            "exec {} hook={} cmd={} url={}",
            r.session_id,
            r.hook,
            r.cmd.join(" "),
            r.url
        ));
        let failing = r.cmd.first().is_some_and(|c| c == "false");
        Ok(Response::new(ExecResponse {
            exit_code: if failing { 3 } else { 0 },
            output: if failing {
                "nope\n".into()
            } else {
                "opened\n".into()
            },
        }))
    }

    async fn go_session(
        &self,
        request: Request<GoSessionRequest>,
    ) -> Result<Response<Session>, Status> {
        self.record(format!("go user={}", request.into_inner().user_id));
        Ok(Response::new(script("s-ok")[0].clone()))
    }

    async fn explain_session(
        &self,
        request: Request<SessionRef>,
    ) -> Result<Response<SessionExplanation>, Status> {
        let id = request.into_inner().session_id;
        Ok(Response::new(SessionExplanation {
            session: Some(session(&id, ObservedState::Running, 100, "")),
            reasons: vec![
                "its client keeps it alive every 60s".into(),
                "no session_time_limit applies".into(),
            ],
            ending_rule: "keepalive".into(),
            ends_at: Some(prost_types::Timestamp {
                seconds: 1_700_003_600,
                nanos: 0,
            }),
            action: "delete".into(),
        }))
    }

    async fn explain_placement(
        &self,
        request: Request<ExplainPlacementRequest>,
    ) -> Result<Response<PlacementExplanation>, Status> {
        let r = request.into_inner();
        self.record(format!(
            "placement user={} workspace={} zone={}",
            r.user_id, r.workspace_id, r.zone_id
        ));
        let verdict = |agent: &str, chosen: bool, why: &str| AgentVerdict {
            agent_id: agent.into(),
            zone_id: "east".into(),
            chosen,
            rejected_because: why.into(),
            free_cores: 3.5,
            free_memory_mib: 8192,
            free_gpus: 0,
            has_image: chosen,
        };
        Ok(Response::new(PlacementExplanation {
            agent_id: "node-2".into(),
            summary: "placed on node-2: least loaded of 1 that fit".into(),
            agents: vec![
                verdict(
                    "node-1",
                    false,
                    "not enough memory: needs 16384 MiB, 8192 free",
                ),
                verdict("node-2", true, ""),
            ],
        }))
    }

    async fn get_session_secret(
        &self,
        _request: Request<SessionRef>,
    ) -> Result<Response<SessionSecret>, Status> {
        Err(Status::permission_denied("only the gateway"))
    }

    async fn list_agents(
        &self,
        _request: Request<atrium_proto::session::v1::ListAgentsRequest>,
    ) -> Result<Response<atrium_proto::session::v1::ListAgentsResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn drain_agent(
        &self,
        _request: Request<atrium_proto::session::v1::DrainAgentRequest>,
    ) -> Result<Response<atrium_proto::agent::v1::AgentStatus>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
}

impl Fake {
    fn desire(
        &self,
        verb: &str,
        request: Request<SessionRef>,
        desired: DesiredState,
    ) -> Result<Response<Session>, Status> {
        let id = request.into_inner().session_id;
        self.record(format!("{verb} {id}"));
        let mut s = session(&id, ObservedState::Running, 100, "");
        s.desired_state = desired as i32;
        Ok(Response::new(s))
    }
}

/// Serves the fake on a free port; returns its endpoint.
async fn serve(fake: Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = atrium_service_kit::tls::incoming(listener, None);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SessionServiceServer::new(fake))
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

#[path = "support/run.rs"]
mod run;
use run::Run;

async fn atrium(endpoint: &str, args: &[&str]) -> Run {
    let config = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_atrium"))
        // Global flags first: everything after `--` belongs to `session exec`.
        .args(["--session-endpoint", endpoint])
        .args(["--policy-endpoint", NOWHERE, "--endpoint", NOWHERE])
        .args(["--token", "test-token"])
        .args(args)
        .env("ATRIUM_CONFIG_DIR", config.path())
        .env_remove("ATRIUM_SESSION_ENDPOINT")
        .env_remove("ATRIUM_TOKEN")
        .env_remove("ATRIUM_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, output)
        .await
        .expect("atrium timed out")
        .unwrap();
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[tokio::test]
async fn launch_follows_the_session_until_it_runs_or_fails() {
    let fake = Fake::default();
    let endpoint = serve(fake.clone()).await;

    let run = atrium(
        &endpoint,
        &[
            "session",
            "launch",
            WORKSPACE_OK,
            "--user",
            ALICE,
            "--env",
            "LANG=de_DE",
            "--env",
            "A=1",
            "--url",
            "https://example.com/start",
            "--zone",
            "east",
        ],
    )
    .await
    .ok();
    assert_eq!(
        fake.calls(),
        vec![
            format!(
                "request user={ALICE} workspace={WORKSPACE_OK} env=A=1,LANG=de_DE \
                 url=https://example.com/start zone=east"
            ),
            "watch s-ok".to_owned(),
        ]
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "session s-ok (kasmweb/chrome:1.16.0)", "{run:#?}");
    // One line per change: state, progress, message.
    assert!(lines[1].contains("requested") && lines[1].ends_with("placed on node-1"));
    assert!(lines[2].contains("starting") && lines[2].contains(" 40%"));
    assert!(lines[3].contains(" 80%") && lines[3].ends_with("waiting for port 6901"));
    assert!(lines[4].contains("running") && lines[4].contains("100%"));
    assert_eq!(
        lines[5],
        "session s-ok is running on agent node-1 at 10.0.0.5:32768"
    );

    // A failure exits 1 with the service's reason.
    let failed = atrium(&endpoint, &["session", "launch", WORKSPACE_BAD]).await;
    assert_eq!(failed.code, 1, "{failed:#?}");
    assert!(failed.stdout.contains("pulling the image"), "{failed:#?}");
    assert_eq!(
        failed.stderr.trim(),
        "error: session s-bad failed: image not found"
    );
    let failed = atrium(
        &endpoint,
        &["session", "launch", WORKSPACE_BAD, "-o", "json"],
    )
    .await;
    assert_eq!(failed.code, 1, "{failed:#?}");
    assert_eq!(failed.json()["error"]["code"], "ABORTED");

    // For programs: one JSON document per change, the last one running.
    let run = atrium(
        &endpoint,
        &["session", "launch", WORKSPACE_OK, "-o", "json"],
    )
    .await
    .ok();
    let docs: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 4, "{run:#?}");
    assert_eq!(docs[1]["progress"], 40);
    assert_eq!(docs[3]["observed_state"], "running");
    assert_eq!(docs[3]["port"], 32768);

    // --no-watch returns at once with the session as recorded.
    let before = fake.calls().len();
    let run = atrium(
        &endpoint,
        &[
            "session",
            "launch",
            WORKSPACE_OK,
            "--no-watch",
            "-o",
            "json",
        ],
    )
    .await
    .ok();
    assert_eq!(run.json()["observed_state"], "requested");
    assert_eq!(
        fake.calls().len(),
        before + 1,
        "no watch: {:?}",
        fake.calls()
    );

    // go: the default workspace, followed the same way.
    let run = atrium(&endpoint, &["session", "go"]).await.ok();
    assert!(run.stdout.contains("session s-ok is running"), "{run:#?}");
    assert!(fake.calls().contains(&"go user=".to_owned()));

    // watch: until the session ends.
    let run = atrium(&endpoint, &["session", "watch", "s-gone"])
        .await
        .ok();
    assert!(run.stdout.contains("deleted by its user"), "{run:#?}");
}

#[tokio::test]
async fn session_commands_call_the_service_and_print_its_answers() {
    let fake = Fake::default();
    let endpoint = serve(fake.clone()).await;

    let listed = atrium(
        &endpoint,
        &[
            "session",
            "list",
            "--all",
            "--agent",
            "node-1",
            "--state",
            "running",
            "--include-ended",
            "-o",
            "json",
        ],
    )
    .await
    .ok()
    .json();
    assert_eq!(listed["sessions"][1]["id"], "s-new");
    assert_eq!(listed["sessions"][0]["observed_state"], "running");
    assert!(fake.calls().contains(&format!(
        "list all=true user= workspace= agent=node-1 state={} ended=true",
        ObservedState::Running as i32
    )));
    let table = atrium(&endpoint, &["session", "list"]).await.ok();
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        vec![
            "ID", "USER", "IMAGE", "STATE", "AGENT", "CREATED", "EXPIRES"
        ]
    );
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("s-new") && l.contains("starting"))
    );

    let shown = atrium(&endpoint, &["session", "show", "s-ok"]).await.ok();
    assert!(shown.stdout.contains("address:"), "{shown:#?}");
    assert!(shown.stdout.contains("10.0.0.5:32768"), "{shown:#?}");
    let missing = atrium(&endpoint, &["session", "show", "nope"]).await;
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert!(missing.stderr.contains("not found"), "{missing:#?}");

    let kept = atrium(&endpoint, &["session", "keepalive", "s-ok"])
        .await
        .ok();
    assert_eq!(
        kept.stdout.trim(),
        "session s-ok kept alive until 2023-11-14T23:13:20Z"
    );
    let stopped = atrium(&endpoint, &["session", "stop", "s-ok"]).await.ok();
    assert_eq!(
        stopped.stdout.trim(),
        "session s-ok: stop requested (now running -> stopped)"
    );
    for (args, call) in [
        (vec!["pause", "s-ok"], "pause s-ok"),
        (vec!["resume", "s-ok"], "resume s-ok"),
        (vec!["delete", "s-ok"], "delete s-ok"),
        (vec!["delete", "--force", "s-ok"], "force_delete s-ok"),
    ] {
        let mut command = vec!["session"];
        command.extend(&args);
        command.extend(["-o", "json"]);
        let answer = atrium(&endpoint, &command).await.ok().json();
        assert_eq!(answer["id"], "s-ok");
        assert!(fake.calls().contains(&call.to_owned()), "{call}");
    }

    let explained = atrium(&endpoint, &["session", "explain", "s-ok"])
        .await
        .ok();
    assert!(explained.stdout.contains("ends by:"), "{explained:#?}");
    assert!(
        explained
            .stdout
            .contains("  - its client keeps it alive every 60s"),
        "{explained:#?}"
    );

    let hook = atrium(
        &endpoint,
        &[
            "session",
            "exec",
            "s-ok",
            "--hook",
            "go",
            "--url",
            "https://example.com",
        ],
    )
    .await
    .ok();
    assert_eq!(hook.stdout, "opened\n");
    assert!(
        fake.calls()
            .contains(&"exec s-ok hook=go cmd= url=https://example.com".to_owned())
    );
    let failing = atrium(&endpoint, &["session", "exec", "s-ok", "--", "false", "-x"]).await;
    assert_eq!(failing.code, 1, "{failing:#?}");
    assert_eq!(failing.stdout, "nope\n");
    assert!(
        failing.stderr.contains("exited with code 3"),
        "{failing:#?}"
    );
    assert!(
        fake.calls()
            .contains(&"exec s-ok hook= cmd=false -x url=".to_owned())
    );

    let placement = atrium(
        &endpoint,
        &["placement", "explain", WORKSPACE_OK, "--zone", "east"],
    )
    .await
    .ok();
    let lines: Vec<&str> = placement.stdout.lines().collect();
    assert!(lines[0].starts_with("AGENT") && lines[0].ends_with("REJECTED BECAUSE"));
    assert!(lines[1].starts_with("node-2") && lines[1].contains("yes"));
    assert!(lines[2].ends_with("not enough memory: needs 16384 MiB, 8192 free"));
    assert_eq!(lines[3], "placed on node-2: least loaded of 1 that fit");
    assert!(fake.calls().contains(&format!(
        "placement user= workspace={WORKSPACE_OK} zone=east"
    )));
}

#[tokio::test]
async fn bad_session_input_fails_before_any_call() {
    // Nothing listens: an error that names the flag came before any call.
    for (args, needle) in [
        (vec!["session", "launch", "x", "--env", "NOVALUE"], "--env"),
        (
            vec!["session", "launch", "x", "--url", "example.com"],
            "--url",
        ),
        (vec!["session", "list", "--state", "sleeping"], "--state"),
        (vec!["session", "exec", "s1"], "--hook"),
        (
            vec!["session", "exec", "s1", "--hook", "go", "--", "ls"],
            "--hook",
        ),
        (vec!["session", "keepalive", " "], "session id"),
    ] {
        let run = atrium(NOWHERE, &args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(run.stderr.contains(needle), "{args:?}: {run:#?}");
    }
    // A valid command against no server says where it tried.
    let run = atrium("http://127.0.0.1:9", &["session", "list"]).await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("127.0.0.1:9"), "{run:#?}");
}
