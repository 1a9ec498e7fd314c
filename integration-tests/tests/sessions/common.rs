//! The stack every session scenario runs on: the integration tests' sandbox (identity, policy,
//! the session-manager and an agent in this process, over fresh PostgreSQL databases, the test
//! Redis under a namespace of its own, the local Docker engine) with the demo workspace, and
//! the session-manager's knobs a scenario turns.

use std::time::{Duration, Instant};

use atrium_integration_tests::{Joined, Sandbox};
use atrium_launcher::{Caller, Role};
use atrium_proto::session::v1 as pb;
use atrium_proto::session::v1::session_service_client::SessionServiceClient;
use atrium_service_kit::auth::{Credential, ServiceId};
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_session_manager::SessionManagerConfig;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Sessions = SessionServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;
pub type User = atrium_integration_tests::TestUser;

/// A change to the session-manager's configuration.
pub type TuneSessionManager = std::sync::Arc<dyn Fn(&mut SessionManagerConfig) + Send + Sync>;

/// Knobs a scenario may turn.
#[derive(Clone)]
pub struct Opts {
    pub roles: Vec<Role>,
    /// The agent's core capacity (an override); `None`: the machine's.
    pub agent_cores: Option<f64>,
    pub lost_grace_secs: u64,
    pub start_timeout_secs: u64,
    /// A Redis of the scenario's own (one it stops and starts).
    pub redis_url: Option<String>,
    /// Another stack's deployment to join (a second replica, a restart, a separate agent).
    pub join: Option<Joined>,
    pub replica_id: Option<String>,
    /// SQLite files instead of PostgreSQL databases.
    pub sqlite: bool,
    /// More session-manager settings, applied last.
    pub tune: Option<TuneSessionManager>,
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
            tune: None,
            sqlite: false,
        }
    }
}

pub struct Stack {
    pub sandbox: Sandbox,
    /// The administrator's login (empty in a stack that joined another).
    pub admin: Credential,
    pub workspace_id: String,
    pub image: String,
    pub namespace: String,
    pub db_prefix: String,
    pub redis_url: String,
}

/// Whether Docker scenarios run here (they must under CI).
pub fn docker(test: &str) -> bool {
    atrium_service_kit::testing::docker_enabled(test)
}

pub fn docker_cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

impl Stack {
    pub async fn start(opts: Opts) -> Stack {
        // Without an agent here nothing runs it: placement needs only its name.
        let image = if opts.roles.contains(&Role::Agent) {
            atrium_integration_tests::demo_image().expect("the demo image")
        } else {
            "atrium/workspace-demo:latest".to_owned()
        };
        let o = opts.clone();
        let mut builder = Sandbox::builder(&opts.roles).configure(move |config| {
            let cores = o.agent_cores;
            let o2 = o.clone();
            config
                .tune_agent(move |c| {
                    if let Some(cores) = cores {
                        c.capacity.cores = Some(cores);
                    }
                })
                .tune_session_manager(move |c| {
                    c.lost_grace_secs = o2.lost_grace_secs;
                    c.start_timeout_secs = o2.start_timeout_secs;
                    c.reconcile_interval_ms = 250;
                    c.reap_interval_ms = 100;
                    c.orphan_grace_secs = 5;
                    if let Some(id) = &o2.replica_id {
                        c.replica_id = id.clone();
                    }
                    if let Some(tune) = &o2.tune {
                        tune(c);
                    }
                })
        });
        if let Some(url) = &opts.redis_url {
            builder = builder.redis_url(url.clone());
        }
        if let Some(joined) = &opts.join {
            builder = builder.join(joined.clone());
        }
        if opts.sqlite {
            builder = builder.sqlite();
        }
        let sandbox = builder.start().await.expect("start the stack");
        let admin = sandbox
            .admin()
            .cloned()
            .unwrap_or_else(|_| Credential::Bearer(String::new()));
        let mut stack = Stack {
            namespace: sandbox.redis_namespace().to_owned(),
            db_prefix: sandbox.database_prefix().unwrap_or_default().to_owned(),
            redis_url: sandbox.redis_url().unwrap_or_default().to_owned(),
            sandbox,
            admin,
            workspace_id: String::new(),
            image,
        };
        if opts.join.is_none() {
            stack.workspace_id = stack.workspace(0.25, 128).await;
        }
        stack
    }

    /// What a second launch needs to join this deployment.
    pub fn joined(&self) -> Joined {
        self.sandbox.joined()
    }

    pub async fn sessions_as(&self, caller: &Caller) -> Sessions {
        let channel = self
            .sandbox
            .running()
            .channel(Role::SessionManager, caller)
            .await
            .expect("session-manager channel");
        let credential = match caller {
            Caller::User(c) => Some(c),
            _ => None,
        };
        SessionServiceClient::with_interceptor(
            channel,
            OutgoingInterceptor::new(credential).expect("interceptor"),
        )
    }

    pub async fn sessions(&self, credential: &Credential) -> Sessions {
        self.sessions_as(&Caller::User(credential.clone())).await
    }

    pub async fn gateway(&self) -> Sessions {
        self.sessions_as(&Caller::Service(ServiceId::Gateway)).await
    }

    pub async fn policy(&self) -> atrium_launcher::PolicyClient {
        self.sandbox
            .running()
            .policy(&Caller::User(self.admin.clone()))
            .await
            .expect("policy client")
    }

    pub async fn identity(&self) -> atrium_launcher::IdentityClient {
        self.sandbox
            .running()
            .identity(&Caller::User(self.admin.clone()))
            .await
            .expect("identity client")
    }

    /// A workspace of the demo image, assigned to All Users.
    pub async fn workspace(&self, cores: f64, memory_mib: i64) -> String {
        atrium_integration_tests::demo_workspace(
            self.sandbox.running(),
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
        atrium_integration_tests::user_with_settings(
            self.sandbox.running(),
            &self.admin,
            name,
            settings,
        )
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
