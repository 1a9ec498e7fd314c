//! The session-manager's figures, each against a baseline measured in the same run:
//!
//! - `keepalive`: Keepalive RPCs/s end to end (50 concurrent callers, mutual TLS, a user's
//!   token, PostgreSQL, Redis) ÷ `redis-benchmark -t set -c 50` on the same Redis; and, to show
//!   what two shared cores allow, ÷ the same server's no-op gRPC call (health Check) at 50.
//!   Sessions sit on a simulated agent (a heartbeat with no agent behind it).
//! - `expiry`: 100,000 tracked sessions (simulated agents) with deadlines spread over a minute:
//!   lateness of each expiry (deadline → the reaper's recorded action), p50/p99.
//! - `launch` (Docker): RequestSession → running on WatchSession ÷ the agent's CreateSession →
//!   the workspace answering HTTPS, same image, alternated.
//! - `stop` (Docker): Stop of 20 running sessions at once until all are stopped ÷ one
//!   `docker stop -t 1` of 20 containers of the same image.
//!
//!   scripts/bench-sessions [keepalive|expiry|launch|stop]...
//!
//! (the script starts PostgreSQL and Redis like scripts/test and runs this in release mode).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use atrium_integration_tests::{
    Role, Sandbox, TestUser, demo_image, demo_workspace, user_with_settings,
};
use atrium_launcher::{Caller, SessionClient};
use atrium_proto::agent::v1 as agent_pb;
use atrium_proto::session::v1 as pb;
use atrium_service_kit::auth::ServiceId;
use chrono::Utc;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn redis_url() -> String {
    std::env::var("ATRIUM_TEST_REDIS_URL").expect("ATRIUM_TEST_REDIS_URL")
}

/// `n` sessions of `workspace`, requested one after another; their ids.
async fn request_many(client: &mut SessionClient, workspace: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let s = client
            .request_session(pb::RequestSessionRequest {
                workspace_id: workspace.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.push(s.id);
    }
    ids
}

async fn sessions_as(sandbox: &Sandbox, user: &TestUser) -> SessionClient {
    sandbox
        .running()
        .session(&Caller::User(user.credential.clone()))
        .await
        .unwrap()
}

/// Runs `call` from `callers` tasks for `secs`; calls per second.
async fn rate<F, Fut>(callers: usize, secs: u64, make: impl Fn(usize) -> F) -> f64
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..callers {
        let mut call = make(i);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                assert!(call().await, "a call failed");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn redis_benchmark_set(clients: usize) -> f64 {
    let url = url::Url::parse(&redis_url()).unwrap();
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            url.host_str().unwrap(),
            "-p",
            &url.port().unwrap_or(6379).to_string(),
            "-t",
            "set",
            "-c",
            &clients.to_string(),
            "-n",
            "200000",
            "-q",
        ])
        .output()
        .expect("redis-benchmark (Debian's redis-tools)");
    let text = String::from_utf8_lossy(&out.stdout);
    // "SET: 81234.56 requests per second, p50=0.3 msec" (after carriage-return progress lines).
    let line = text.rsplit('\r').next().unwrap_or(&text).to_string();
    let line = line
        .lines()
        .find(|l| l.starts_with("SET"))
        .unwrap_or(&line)
        .to_owned();
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read redis-benchmark's answer: {text}"))
}

async fn keepalive() {
    const CALLERS: usize = 50;
    let sandbox = Sandbox::start(&[Role::Identity, Role::Policy, Role::SessionManager])
        .await
        .unwrap();
    atrium_integration_tests::simulated_agent(
        &redis_url(),
        sandbox.redis_namespace(),
        "simulated-agent",
    )
    .await
    .unwrap();
    let admin = sandbox.admin().unwrap().clone();
    let workspace = demo_workspace(
        sandbox.running(),
        &admin,
        "atrium/simulated:latest",
        0.01,
        64,
    )
    .await
    .unwrap();
    let user = user_with_settings(
        sandbox.running(),
        &admin,
        "keepalive",
        &[
            ("max_kasms_per_user", "100"),
            ("keepalive_expiration", "3600"),
        ],
    )
    .await
    .unwrap();
    let ids = request_many(&mut sessions_as(&sandbox, &user).await, &workspace, CALLERS).await;
    let mut clients = Vec::new();
    for _ in 0..CALLERS {
        clients.push(sessions_as(&sandbox, &user).await);
    }
    let endpoint = sandbox.endpoint(Role::SessionManager).unwrap();
    let mut health = Vec::new();
    for _ in 0..CALLERS {
        let channel = sandbox
            .running()
            .user_dialer()
            .unwrap()
            .connect(&endpoint)
            .await
            .unwrap();
        health.push(tonic_health::pb::health_client::HealthClient::new(channel));
    }
    let keepalive_rate = |secs| {
        let clients = clients.clone();
        let ids = ids.clone();
        rate(CALLERS, secs, move |i| {
            let c = clients[i].clone();
            let id = ids[i].clone();
            move || {
                let mut c = c.clone();
                let id = id.clone();
                async move { c.keepalive(pb::SessionRef { session_id: id }).await.is_ok() }
            }
        })
    };
    let noop_rate = |secs| {
        let health = health.clone();
        rate(CALLERS, secs, move |i| {
            let h = health[i].clone();
            move || {
                let mut h = h.clone();
                async move {
                    h.check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok()
                }
            }
        })
    };
    keepalive_rate(2).await; // warm-up
    let redis = redis_benchmark_set(CALLERS);
    let keepalives = keepalive_rate(8).await;
    let noop = noop_rate(8).await;
    println!("keepalive, {CALLERS} concurrent callers:");
    println!("  Keepalive RPCs/s end to end:          {keepalives:>10.0}");
    println!("  redis-benchmark -t set -c {CALLERS}:        {redis:>10.0}");
    println!("  no-op gRPC (health Check) calls/s:    {noop:>10.0}");
    println!(
        "  ratio keepalive / redis SET:          {:>10.3}   (target ≥ 0.5)",
        keepalives / redis
    );
    println!(
        "  ratio keepalive / no-op gRPC call:    {:>10.3}",
        keepalives / noop
    );
    sandbox.stop().await.ok();
}

async fn expiry() {
    use atrium_session_manager::store::{Row, Store};
    const SESSIONS: usize = 100_000;
    let sandbox = Sandbox::builder(&[Role::Identity, Role::Policy, Role::SessionManager])
        .configure(|c| {
            c.tune_session_manager(|sm| {
                // Simulated agents never heartbeat: keep their sessions from turning lost
                // while the benchmark runs.
                sm.lost_grace_secs = 3600;
            })
        })
        .start()
        .await
        .unwrap();
    let admin = sandbox.admin().unwrap().clone();
    let user = user_with_settings(
        sandbox.running(),
        &admin,
        "expiry",
        &[("keepalive_expiration_action", "delete")],
    )
    .await
    .unwrap();
    let prefix = sandbox.database_prefix().unwrap();
    let admin_url = std::env::var("ATRIUM_TEST_POSTGRES_URL").unwrap();
    let url = format!(
        "{}/{prefix}session_manager",
        admin_url.rsplit_once('/').unwrap().0
    );
    let store = Store::new(atrium_service_kit::db::connect(&url).await.unwrap());
    let now = Utc::now();
    let rows: Vec<Row> = (0..SESSIONS)
        .map(|i| Row {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            workspace_id: "simulated".into(),
            image: "atrium/simulated:latest".into(),
            zone_id: "default".into(),
            agent_id: format!("simulated-agent-{}", i % 1000),
            desired_state: "running".into(),
            observed_state: "running".into(),
            generation: 1,
            progress: 100,
            message: "running".into(),
            host: String::new(),
            port: 0,
            container_id: String::new(),
            secret_sealed: None,
            spec_sealed: String::new(),
            url: String::new(),
            reserve_cores: 0.01,
            reserve_memory_mib: 16,
            reserve_gpus: 0,
            keepalive_secs: 3600,
            time_limit_secs: None,
            expiration_action: "delete".into(),
            first_launch_done: true,
            attempts: 0,
            created_at: now,
            started_at: Some(now),
            last_keepalive_at: None,
            updated_at: now,
            state_since: now,
            ended_at: None,
            lease_owner: None,
            lease_until: None,
            group_ids: String::new(),
            usage_unchecked: false,
        })
        .collect();
    let t = Instant::now();
    store.import(&rows).await.unwrap();
    println!("expiry: imported {SESSIONS} sessions in {:?}", t.elapsed());
    // Deadlines spread over a minute, starting 15 s from now.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:sessions:deadlines", sandbox.redis_namespace());
    let start = Utc::now().timestamp_millis() + 15_000;
    for (n, chunk) in rows.chunks(5000).enumerate() {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&key);
        for (j, r) in chunk.iter().enumerate() {
            let i = (n * 5000 + j) as i64;
            cmd.arg(start + i * 60_000 / SESSIONS as i64).arg(&r.id);
        }
        cmd.query_async::<()>(&mut conn).await.unwrap();
    }
    println!("expiry: {SESSIONS} deadlines from +15 s to +75 s; waiting for the reaper");
    let until = Instant::now() + Duration::from_secs(180);
    let mut done = 0;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(5)).await;
        done = store.audit_of_kind("session.expire").await.unwrap().len();
        println!("  … {done} expired");
        if done >= SESSIONS {
            break;
        }
    }
    let events = store.audit_of_kind("session.expire").await.unwrap();
    let mut lateness: Vec<Duration> = events
        .iter()
        .filter_map(|e| {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
            let deadline = detail["deadline_ms"].as_i64()?;
            let late = e.at.timestamp_millis() - deadline;
            Some(Duration::from_millis(late.max(0) as u64))
        })
        .collect();
    lateness.sort();
    println!("expiry, {SESSIONS} tracked sessions (simulated agents), deadlines over 60 s:");
    println!("  expired: {} of {SESSIONS}", done.max(events.len()));
    println!(
        "  lateness p50 {:?}  p99 {:?}  max {:?}   (target p99 ≤ 1 s)",
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().unwrap()
    );
    sandbox.stop().await.ok();
}

async fn docker_sandbox(cores: f64) -> (Sandbox, String, TestUser) {
    let sandbox = Sandbox::builder(&[
        Role::Identity,
        Role::Policy,
        Role::SessionManager,
        Role::Agent,
    ])
    .configure(move |c| {
        c.tune_agent(move |a| {
            a.capacity.cores = Some(cores);
        })
    })
    .start()
    .await
    .unwrap();
    let admin = sandbox.admin().unwrap().clone();
    let image = demo_image().unwrap();
    let workspace = demo_workspace(sandbox.running(), &admin, &image, 0.05, 64)
        .await
        .unwrap();
    let user = user_with_settings(
        sandbox.running(),
        &admin,
        "bench",
        &[("max_kasms_per_user", "100"), ("allow_kasm_stop", "true")],
    )
    .await
    .unwrap();
    (sandbox, workspace, user)
}

async fn watch_until(client: &mut SessionClient, id: &str, want: pb::ObservedState) {
    let mut stream = client
        .watch_session(pb::GetSessionRequest {
            session_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(s) = stream.message().await.unwrap() {
        let state = pb::ObservedState::try_from(s.observed_state).unwrap();
        assert_ne!(state, pb::ObservedState::Failed, "{s:?}");
        if state == want {
            return;
        }
    }
    panic!("watch ended before {want:?}");
}

async fn wait_answering(host: &str, port: u32, password: &str) {
    let addr = format!("{host}:{port}").parse().unwrap();
    loop {
        let probe = atrium_workspace::client::get(
            addr,
            "/",
            Some((atrium_workspace::client::USER, password)),
        );
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(3), probe).await
            && r.status.as_u16() < 500
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the session-manager asks the agent for, asked directly (the baselines).
fn direct_spec(
    id: &str,
    user: &TestUser,
    workspace: &str,
    image: &str,
) -> agent_pb::CreateSessionRequest {
    agent_pb::CreateSessionRequest {
        spec: Some(agent_pb::SessionSpec {
            session_id: id.into(),
            user_id: user.id.clone(),
            workspace_id: workspace.into(),
            image: image.into(),
            cores: 0.05,
            memory_mib: 64,
            username: user.username.clone(),
            ..Default::default()
        }),
    }
}

async fn launch() {
    const ROUNDS: usize = 8;
    let (sandbox, workspace, user) = docker_sandbox(8.0).await;
    let image = demo_image().unwrap();
    let mut sessions = sessions_as(&sandbox, &user).await;
    let mut agent = sandbox
        .agent_as_service(ServiceId::SessionManager)
        .await
        .unwrap();
    let mut through_sm = Vec::new();
    let mut direct = Vec::new();
    for round in 0..=ROUNDS {
        let t = Instant::now();
        let s = sessions
            .request_session(pb::RequestSessionRequest {
                workspace_id: workspace.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        watch_until(&mut sessions, &s.id, pb::ObservedState::Running).await;
        let sm = t.elapsed();
        sessions
            .delete(pb::SessionRef {
                session_id: s.id.clone(),
            })
            .await
            .unwrap();
        watch_until(&mut sessions, &s.id, pb::ObservedState::Deleted).await;

        let id = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let t = Instant::now();
        let created = agent
            .create_session(direct_spec(&id, &user, &workspace, &image))
            .await
            .unwrap()
            .into_inner();
        wait_answering(&created.host, created.port, &created.session_password).await;
        let d = t.elapsed();
        agent
            .remove_session(agent_pb::SessionRef { session_id: id })
            .await
            .unwrap();
        if round > 0 {
            through_sm.push(sm);
            direct.push(d);
        }
    }
    through_sm.sort();
    direct.sort();
    let (a, b) = (percentile(&through_sm, 0.5), percentile(&direct, 0.5));
    println!("launch, {ROUNDS} of each, alternated (after one warm-up):");
    println!(
        "  RequestSession → running (WatchSession): p50 {a:?}  (min {:?}, max {:?})",
        through_sm[0],
        through_sm.last().unwrap()
    );
    println!(
        "  agent CreateSession → answering HTTPS:   p50 {b:?}  (min {:?}, max {:?})",
        direct[0],
        direct.last().unwrap()
    );
    println!(
        "  ratio (p50): {:.3}   (target ≤ 1.05)",
        a.as_secs_f64() / b.as_secs_f64()
    );
    sandbox.stop().await.ok();
}

async fn stop() {
    const N: usize = 20;
    let (sandbox, workspace, user) = docker_sandbox(8.0).await;
    let image = demo_image().unwrap();
    let mut sessions = sessions_as(&sandbox, &user).await;
    let ids = request_many(&mut sessions, &workspace, N).await;
    for id in &ids {
        watch_until(&mut sessions, id, pb::ObservedState::Running).await;
    }
    let t = Instant::now();
    let mut waits = Vec::new();
    for id in &ids {
        let mut c = sessions.clone();
        let id = id.clone();
        waits.push(tokio::spawn(async move {
            c.stop(pb::SessionRef {
                session_id: id.clone(),
            })
            .await
            .unwrap();
            watch_until(&mut c, &id, pb::ObservedState::Stopped).await;
        }));
    }
    for w in waits {
        w.await.unwrap();
    }
    let through_sm = t.elapsed();
    for id in &ids {
        sessions
            .delete(pb::SessionRef {
                session_id: id.clone(),
            })
            .await
            .unwrap();
    }
    for id in &ids {
        watch_until(&mut sessions, id, pb::ObservedState::Deleted).await;
    }

    // The same containers, made by the agent directly, stopped by one docker stop.
    let mut agent = sandbox
        .agent_as_service(ServiceId::SessionManager)
        .await
        .unwrap();
    let mut containers = Vec::new();
    let mut direct_ids = Vec::new();
    for _ in 0..N {
        let id = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let c = agent
            .create_session(direct_spec(&id, &user, &workspace, &image))
            .await
            .unwrap()
            .into_inner();
        wait_answering(&c.host, c.port, &c.session_password).await;
        containers.push(c.container_id);
        direct_ids.push(id);
    }
    let t = Instant::now();
    let mut args = vec!["stop".to_owned(), "-t".into(), "1".into()];
    args.extend(containers.iter().cloned());
    let out = Command::new("docker").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docker_stop = t.elapsed();
    for id in direct_ids {
        agent
            .remove_session(agent_pb::SessionRef { session_id: id })
            .await
            .unwrap();
    }
    println!("stop {N} running sessions at once:");
    println!(
        "  through the session-manager (Stop ×{N} → all stopped on WatchSession): {through_sm:?}"
    );
    println!(
        "  docker stop -t 1 of {N} containers:                                    {docker_stop:?}"
    );
    println!(
        "  ratio: {:.3}   (target ≤ 1.2)",
        through_sm.as_secs_f64() / docker_stop.as_secs_f64()
    );
    sandbox.stop().await.ok();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["keepalive", "expiry", "launch", "stop"];
    let chosen: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for which in chosen {
        match which {
            "keepalive" => keepalive().await,
            "expiry" => expiry().await,
            "launch" => launch().await,
            "stop" => stop().await,
            other => panic!("unknown benchmark {other}; one of {all:?}"),
        }
    }
}
