//! The stack every session scenario runs on: identity, policy, the session-manager and an agent
//! in this process (the launcher), over fresh PostgreSQL databases, the test Redis under a
//! namespace of the stack's own, and the local Docker engine with the demo workspace image.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use atrium_launcher::{Caller, LaunchConfig, Launcher, Role, Running, Storage};
use atrium_proto::session::v1 as pb;
use atrium_proto::session::v1::session_service_client::SessionServiceClient;
use atrium_service_kit::Secret;
use atrium_service_kit::auth::{Credential, ServiceId};
use atrium_service_kit::telemetry::OutgoingInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Sessions = SessionServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

pub const PASSWORD: &str = atrium_integration_tests::USER_PASSWORD;

/// Knobs a scenario may turn.
#[derive(Clone)]
pub struct Opts {
    pub roles: Vec<Role>,
    /// The agent's core capacity (an override); `None`: the machine's.
    pub agent_cores: Option<f64>,
    pub lost_grace_secs: u64,
    pub start_timeout_secs: u64,
    /// A Redis URL other than the shared test one (a scenario that stops its Redis).
    pub redis_url: Option<String>,
    /// Share another stack's databases, Redis namespace and CA (a second replica, a restart).
    pub join: Option<Joined>,
    pub replica_id: Option<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            roles: vec![
                Role::Identity,
                Role::Policy,
                Role::SessionManager,
                Role::Agent,
            ],
            agent_cores: None,
            lost_grace_secs: 30,
            start_timeout_secs: 60,
            redis_url: None,
            join: None,
            replica_id: None,
        }
    }
}

/// What a second launch needs to be part of the same deployment.
#[derive(Clone)]
pub struct Joined {
    pub db_prefix: String,
    pub namespace: String,
    pub data_dir: PathBuf,
    pub endpoints: BTreeMap<Role, String>,
    pub redis_url: String,
}

pub struct Stack {
    pub running: Running,
    pub admin: Credential,
    pub workspace_id: String,
    pub image: String,
    pub namespace: String,
    pub db_prefix: String,
    pub redis_url: String,
    _cleanup: Cleanup,
    _dir: Option<tempfile::TempDir>,
}

/// Removes every container the deployment's agent left behind (a failing test's leftovers).
struct Cleanup {
    agent_id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=atrium.agent_id={}", self.agent_id);
        let (_, ids) = docker_cli(&["ps", "-aq", "--filter", &filter]);
        for id in ids.split_whitespace() {
            docker_cli(&["rm", "--force", "--volumes", id]);
        }
    }
}

pub type User = atrium_integration_tests::TestUser;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (scripts/test sets it)"))
}

/// Whether Docker scenarios run here (they must under CI).
pub fn docker(test: &str) -> bool {
    atrium_service_kit::testing::docker_enabled(test)
}

pub fn docker_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

pub fn demo_image() -> String {
    atrium_integration_tests::demo_image().expect("the demo image")
}

pub fn grpc_channel_interceptor(credential: Option<&Credential>) -> OutgoingInterceptor {
    OutgoingInterceptor::new(credential).expect("interceptor")
}

impl Stack {
    pub async fn start(opts: Opts) -> Stack {
        let (dir, data_dir) = match &opts.join {
            Some(j) => (None, j.data_dir.clone()),
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let (db_prefix, namespace, redis_url) = match &opts.join {
            Some(j) => (
                j.db_prefix.clone(),
                j.namespace.clone(),
                j.redis_url.clone(),
            ),
            None => (
                format!("t{suffix}_"),
                format!("it-{suffix}"),
                opts.redis_url
                    .clone()
                    .unwrap_or_else(|| env("ATRIUM_TEST_REDIS_URL")),
            ),
        };
        // Without an agent here nothing runs it: placement needs only its name.
        let image = if opts.roles.contains(&Role::Agent) {
            demo_image()
        } else {
            "atrium/workspace-demo:latest".to_owned()
        };
        let mut config = LaunchConfig::ephemeral(&data_dir);
        config.redis_url = Some(Secret::new(redis_url.clone()));
        config.storage = Storage::Postgres {
            admin_url: Secret::new(env("ATRIUM_TEST_POSTGRES_URL")),
            prefix: db_prefix.clone(),
        };
        config.admin_password = Some(Secret::new(PASSWORD.to_owned()));
        config.wait_for_docker = opts.roles.contains(&Role::Agent);
        config.redis_namespace = namespace.clone();
        config.shutdown_deadline = Duration::from_secs(5);
        if let Some(j) = &opts.join {
            for (role, endpoint) in &j.endpoints {
                if !opts.roles.contains(role) {
                    config.external.insert(*role, endpoint.clone());
                }
            }
        }
        let ns = namespace.clone();
        let cores = opts.agent_cores;
        let agent_id = format!("agent-{}", &namespace[3..]);
        config = config.tune_agent(move |c| {
            c.redis_namespace = ns.clone();
            c.heartbeat_interval_secs = 1;
            c.agent_id = Some(agent_id.clone());
            c.stop_timeout_secs = 1;
            if let Some(cores) = cores {
                c.capacity.cores = Some(cores);
            }
        });
        let ns = namespace.clone();
        let o = opts.clone();
        config = config.tune_session_manager(move |c| {
            c.redis_namespace = ns.clone();
            c.lost_grace_secs = o.lost_grace_secs;
            c.start_timeout_secs = o.start_timeout_secs;
            c.reconcile_interval_ms = 250;
            c.reap_interval_ms = 100;
            c.orphan_grace_secs = 5;
            if let Some(id) = &o.replica_id {
                c.replica_id = id.clone();
            }
        });
        let namespace_for_cleanup = namespace.clone();
        let running = Launcher::start(config, &opts.roles)
            .await
            .expect("start the stack");
        let mut stack = Stack {
            running,
            admin: Credential::Bearer(String::new()),
            workspace_id: String::new(),
            image,
            namespace,
            db_prefix,
            redis_url,
            _cleanup: Cleanup {
                agent_id: format!("agent-{}", &namespace_for_cleanup[3..]),
            },
            _dir: dir,
        };
        if opts.join.is_none() {
            stack.admin = stack
                .running
                .login("admin", PASSWORD)
                .await
                .expect("admin login");
            stack.workspace_id = stack.workspace(0.25, 128).await;
        }
        stack
    }

    /// What a second launch needs to join this deployment.
    pub fn joined(&self) -> Joined {
        Joined {
            db_prefix: self.db_prefix.clone(),
            namespace: self.namespace.clone(),
            data_dir: self.running.data_dir().to_path_buf(),
            endpoints: self.running.endpoints().clone(),
            redis_url: self.redis_url.clone(),
        }
    }

    pub async fn sessions_as(&self, caller: &Caller) -> Sessions {
        let channel = self
            .running
            .channel(Role::SessionManager, caller)
            .await
            .expect("session-manager channel");
        let credential = match caller {
            Caller::User(c) => Some(c),
            _ => None,
        };
        SessionServiceClient::with_interceptor(channel, grpc_channel_interceptor(credential))
    }

    pub async fn sessions(&self, credential: &Credential) -> Sessions {
        self.sessions_as(&Caller::User(credential.clone())).await
    }

    pub async fn gateway(&self) -> Sessions {
        self.sessions_as(&Caller::Service(ServiceId::Gateway)).await
    }

    pub async fn policy(&self) -> atrium_launcher::PolicyClient {
        self.running
            .policy(&Caller::User(self.admin.clone()))
            .await
            .expect("policy client")
    }

    pub async fn identity(&self) -> atrium_launcher::IdentityClient {
        self.running
            .identity(&Caller::User(self.admin.clone()))
            .await
            .expect("identity client")
    }

    /// A workspace of the demo image, assigned to All Users.
    pub async fn workspace(&self, cores: f64, memory_mib: i64) -> String {
        atrium_integration_tests::demo_workspace(
            &self.running,
            &self.admin,
            &self.image,
            cores,
            memory_mib,
        )
        .await
        .expect("create workspace")
    }

    /// A user in a group of their own with `settings` (name, text value).
    pub async fn user(&self, name: &str, settings: &[(&str, &str)]) -> User {
        atrium_integration_tests::user_with_settings(&self.running, &self.admin, name, settings)
            .await
            .expect("create the user")
    }

    pub async fn launch(&self, user: &User) -> pb::Session {
        self.sessions(&user.credential)
            .await
            .request_session(pb::RequestSessionRequest {
                workspace_id: self.workspace_id.clone(),
                ..Default::default()
            })
            .await
            .expect("request session")
            .into_inner()
    }
}

/// Follows WatchSession until `done` holds; every update seen, in order.
pub async fn watch_until(
    client: &mut Sessions,
    id: &str,
    timeout: Duration,
    done: impl Fn(&pb::Session) -> bool,
) -> Vec<pb::Session> {
    let mut stream = client
        .watch_session(pb::GetSessionRequest {
            session_id: id.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut seen = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.message()).await {
            Ok(Ok(Some(s))) => {
                let finished = done(&s);
                seen.push(s);
                if finished {
                    return seen;
                }
            }
            Ok(Ok(None)) => panic!("watch ended before the condition held: {seen:#?}"),
            Ok(Err(e)) => panic!("watch failed: {e}; seen {seen:#?}"),
            Err(_) => panic!("not reached within {timeout:?}; seen {seen:#?}"),
        }
    }
}

/// Follows the session until it is in `state` (at most 90 s); every update seen.
pub async fn reach(client: &mut Sessions, id: &str, state: pb::ObservedState) -> Vec<pb::Session> {
    watch_until(client, id, Duration::from_secs(90), is(state)).await
}

/// Deletes the session and waits until the agent has confirmed it gone.
pub async fn delete_and_wait(client: &mut Sessions, id: &str) {
    client
        .delete(pb::SessionRef {
            session_id: id.into(),
        })
        .await
        .expect("delete");
    reach(client, id, pb::ObservedState::Deleted).await;
}

pub fn observed(s: &pb::Session) -> pb::ObservedState {
    pb::ObservedState::try_from(s.observed_state).unwrap_or(pb::ObservedState::Unspecified)
}

pub fn is(state: pb::ObservedState) -> impl Fn(&pb::Session) -> bool {
    move |s| observed(s) == state
}

/// Polls GetSession until `done` (for states reached without a watcher).
pub async fn eventually(
    client: &mut Sessions,
    id: &str,
    timeout: Duration,
    done: impl Fn(&pb::Session) -> bool,
) -> pb::Session {
    let deadline = Instant::now() + timeout;
    loop {
        let s = client
            .get_session(pb::GetSessionRequest {
                session_id: id.into(),
            })
            .await
            .expect("get session")
            .into_inner();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "not reached within {timeout:?}: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
