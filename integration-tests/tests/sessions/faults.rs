//! Faults: an agent killed mid-session, a session-manager restarted mid-launch, two replicas
//! reaping one Redis, and Redis itself going away and coming back empty.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atrium_launcher::Role;
use atrium_proto::session::v1 as pb;
use atrium_session_manager::store::Store;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::*;

#[tokio::test]
async fn killing_the_agent_makes_its_sessions_lost_within_the_grace() {
    if !docker("killing_the_agent_makes_its_sessions_lost") {
        return;
    }
    let control = Stack::start(Opts {
        roles: vec![Role::Identity, Role::Policy, Role::SessionManager],
        lost_grace_secs: 3,
        ..Opts::default()
    })
    .await;
    let agent = Stack::start(Opts {
        roles: vec![Role::Agent],
        join: Some(control.joined()),
        ..Opts::default()
    })
    .await;
    let frank = control.user("frank", &[]).await;
    let mut sessions = control.sessions(&frank.credential).await;
    let s = control.launch(&frank).await;
    reach(&mut sessions, &s.id, pb::ObservedState::Running).await;
    let killed = Instant::now();
    drop(agent.sandbox);
    let seen = reach(&mut sessions, &s.id, pb::ObservedState::Lost).await;
    // Heartbeat TTL (3 × 1 s) + grace (3 s) + a pass.
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "lost after {:?}",
        killed.elapsed()
    );
    assert!(
        seen.last().unwrap().message.contains("no heartbeat"),
        "{seen:?}"
    );
    // Deleting a lost session whose agent is gone completes without it.
    delete_and_wait(&mut sessions, &s.id).await;
}

#[tokio::test]
async fn a_session_manager_restarted_mid_launch_completes_the_launch() {
    if !docker("a_session_manager_restarted_mid_launch") {
        return;
    }
    let base = Stack::start(Opts {
        roles: vec![Role::Identity, Role::Policy, Role::Agent],
        ..Opts::default()
    })
    .await;
    let replica = || Opts {
        roles: vec![Role::SessionManager],
        join: Some(base.joined()),
        replica_id: Some("sm-restarted".into()),
        ..Opts::default()
    };
    let first = Stack::start(replica()).await;
    let grace = base.user("grace", &[]).await;
    let requested = first
        .sessions(&grace.credential)
        .await
        .request_session(pb::RequestSessionRequest {
            workspace_id: base.workspace_id.clone(),
            ..Default::default()
        })
        .await
        .expect("request")
        .into_inner();
    // Stop it at once: the launch is under way (or not even begun).
    let t = Instant::now();
    first.sandbox.stop().await.ok();
    eprintln!("first replica stopped in {:?}", t.elapsed());
    let second = Stack::start(replica()).await;
    eprintln!("second replica up after {:?}", t.elapsed());
    let mut sessions = second.sessions(&grace.credential).await;
    let seen = reach(&mut sessions, &requested.id, pb::ObservedState::Running).await;
    assert!(seen.last().unwrap().port > 0);
    // One container for it, not two.
    let filter = format!("label=atrium.session_id={}", requested.id);
    let (_, ids) = docker_cli(&["ps", "-aq", "--filter", &filter]);
    assert_eq!(ids.split_whitespace().count(), 1, "{ids}");
}

fn postgres_url(database: &str) -> String {
    let admin = std::env::var("ATRIUM_TEST_POSTGRES_URL").unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{database}")
}

/// A second session-manager replica as a process of its own (the `atrium-session-manager`
/// binary), in `a`'s deployment: the same database, Redis namespace and secrets key. Killed
/// when dropped.
struct ReplicaProcess(Child);

impl ReplicaProcess {
    fn start(a: &Stack, replica_id: &str) -> Self {
        let binary = atrium_integration_tests::cargo_binary(
            "atrium-session-manager",
            "atrium-session-manager",
        )
        .expect("the session-manager binary");
        let data_dir = a.sandbox.running().data_dir().to_path_buf();
        let secrets: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(data_dir.join("secrets.json")).expect("secrets.json"),
        )
        .unwrap();
        let key = secrets["session_manager_secrets_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let tls = a.sandbox.running().ca_dir().to_path_buf();
        let endpoint = |role| a.sandbox.endpoint(role).unwrap();
        let sets = [
            format!("listen=127.0.0.1:{}", free_port()),
            format!("metrics_listen=127.0.0.1:{}", free_port()),
            format!(
                "database_url={}",
                postgres_url(&format!("{}session_manager", a.db_prefix))
            ),
            format!("redis_url={}", a.redis_url),
            format!("redis_namespace={}", a.namespace),
            format!("secrets_key={key}"),
            format!("identity_endpoint={}", endpoint(Role::Identity)),
            format!("policy_endpoint={}", endpoint(Role::Policy)),
            format!("replica_id={replica_id}"),
            format!("tls.ca={}", tls.join("ca.pem").display()),
            format!("tls.cert={}", tls.join("session-manager.pem").display()),
            format!("tls.key={}", tls.join("session-manager-key.pem").display()),
            "reap_interval_ms=100".to_owned(),
            "reconcile_interval_ms=250".to_owned(),
        ];
        let mut command = Command::new(binary);
        for set in &sets {
            command.args(["--set", set]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the second replica");
        ReplicaProcess(child)
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn two_replicas_act_on_each_of_200_expiries_exactly_once() {
    let a = Stack::start(Opts {
        roles: vec![Role::Identity, Role::Policy, Role::SessionManager],
        replica_id: Some("replica-a".into()),
        ..Opts::default()
    })
    .await;
    // The second replica: another process on the same database and Redis.
    let t = Instant::now();
    let mut b = ReplicaProcess::start(&a, "replica-b");
    eprintln!("second replica started after {:?}", t.elapsed());
    atrium_integration_tests::simulated_agent(&a.redis_url, &a.namespace, "simulated-agent")
        .await
        .unwrap();
    let user = a
        .user(
            "many",
            &[("max_kasms_per_user", "300"), ("keepalive_expiration", "6")],
        )
        .await;
    let mut client = a.sessions(&user.credential).await;
    let mut ids = Vec::new();
    for _ in 0..200 {
        let s = client
            .request_session(pb::RequestSessionRequest {
                workspace_id: a.workspace_id.clone(),
                ..Default::default()
            })
            .await
            .expect("request")
            .into_inner();
        ids.push(s.id);
    }
    let store = Store::new(
        atrium_service_kit::db::connect(&postgres_url(&format!("{}session_manager", a.db_prefix)))
            .await
            .expect("the session-manager's database"),
    );
    eprintln!("200 sessions requested after {:?}", t.elapsed());
    // Every session expires; each expiry is recorded once, by one replica or the other.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending = ids.clone();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} not expired yet",
            pending.len()
        );
        let mut still = Vec::new();
        for id in pending {
            let expiries = store
                .audit_events(&id)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.kind == "session.expire")
                .count();
            if expiries == 0 {
                still.push(id);
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("all expired after {:?}", t.elapsed());
    // Give a duplicate time to appear, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut by_replica_total = 0;
    for id in &ids {
        let expiries = store
            .audit_events(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "session.expire")
            .count();
        assert_eq!(expiries, 1, "session {id} expired {expiries} times");
        by_replica_total += expiries;
    }
    assert_eq!(by_replica_total, 200);
    assert!(
        b.0.try_wait().unwrap().is_none(),
        "the second replica ran throughout"
    );
}

struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn without_redis_nothing_is_reaped_and_deadlines_come_back_with_it() {
    if !docker("without_redis_nothing_is_reaped") {
        return;
    }
    let mut redis = OwnRedis::start(free_port());
    let stack = Stack::start(Opts {
        redis_url: Some(redis.url()),
        ..Opts::default()
    })
    .await;
    let henry = stack.user("henry", &[("keepalive_expiration", "4")]).await;
    let mut sessions = stack.sessions(&henry.credential).await;
    let s = stack.launch(&henry).await;
    reach(&mut sessions, &s.id, pb::ObservedState::Running).await;

    redis.stop();
    let refused = sessions
        .keepalive(pb::SessionRef {
            session_id: s.id.clone(),
        })
        .await
        .expect_err("no keepalive without Redis");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    // Past its deadline, and still running: nothing is reaped without Redis.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let health_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = stack.sandbox.running().health(Role::SessionManager).await;
        if matches!(health, Ok(ServingStatus::NotServing)) {
            break;
        }
        assert!(
            Instant::now() < health_deadline,
            "health never said NOT_SERVING: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now = sessions
        .get_session(pb::GetSessionRequest {
            session_id: s.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(observed(&now), pb::ObservedState::Running);
    assert_eq!(now.desired_state, pb::DesiredState::Running as i32);

    // Redis returns empty: the deadline is rebuilt from the database and the session ends.
    let port = redis.port;
    redis = OwnRedis::start(port);
    let ended = eventually(
        &mut sessions,
        &s.id,
        Duration::from_secs(40),
        is(pb::ObservedState::Deleted),
    )
    .await;
    assert_eq!(ended.desired_state, pb::DesiredState::Deleted as i32);
    redis.stop();
}
