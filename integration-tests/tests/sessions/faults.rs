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

#[tokio::test]
async fn two_replicas_act_on_each_of_200_expiries_exactly_once() {
    let a = Stack::start(Opts {
        roles: vec![Role::Identity, Role::Policy, Role::SessionManager],
        replica_id: Some("replica-a".into()),
        ..Opts::default()
    })
    .await;
    let b = Stack::start(Opts {
        roles: vec![Role::SessionManager],
        join: Some(a.joined()),
        replica_id: Some("replica-b".into()),
        ..Opts::default()
    })
    .await;
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
    drop(b);
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
