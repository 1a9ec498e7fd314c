//! The integration tests' sandbox: the roles a scenario needs, started in this process by the
//! launcher (the code `atrium up` runs), on ephemeral loopback ports, against real PostgreSQL
//! (fresh databases per sandbox, from `ATRIUM_TEST_POSTGRES_URL`), real Redis (the
//! `ATRIUM_TEST_REDIS_URL` server, under a key namespace of the sandbox's own) and the local
//! Docker engine, and healthy before a scenario begins. It hands out clients logged in as the
//! administrator and clients that are Atrium's services (certificates from the kit's test CA,
//! so `atrium_service_kit::testing::dialer_as` works against it too).
//!
//! Scenarios live in `tests/`; what they share about starting services lives here, not in a
//! per-file cluster.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use atrium_launcher::{
    AgentClient, Caller, IdentityClient, LaunchConfig, Launcher, PolicyClient, SessionClient,
    Storage,
};
pub use atrium_launcher::{Role, Running};
use atrium_service_kit::Secret;
use atrium_service_kit::auth::{Credential, ServiceId};
use atrium_service_kit::client::Dialer;

/// The bootstrap administrator's password in every sandbox.
pub const ADMIN_PASSWORD: &str = "sandbox-admin-password";

/// Whether a scenario that needs Docker runs here: `ATRIUM_TEST_DOCKER=1` (scripts/test sets
/// it when Docker answers). Under `CI=true` a missing Docker fails the test rather than letting
/// it pass by doing nothing.
#[track_caller]
pub fn docker_enabled(test: &str) -> bool {
    atrium_service_kit::testing::docker_enabled(test)
}

fn env(name: &str, what: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: run the tests with scripts/test, which starts {what}")
    })
}

/// A short random name part.
fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A sandbox being set up; [`SandboxBuilder::start`] starts it.
pub struct SandboxBuilder {
    roles: Vec<Role>,
    sqlite: bool,
    in_process_redis: bool,
    redis_url: Option<String>,
    join: Option<Joined>,
    adjust: Vec<Box<dyn FnOnce(LaunchConfig) -> LaunchConfig + Send>>,
}

impl SandboxBuilder {
    /// SQLite files in the sandbox's directory instead of PostgreSQL (benchmarks that measure
    /// the embedded default).
    pub fn sqlite(mut self) -> Self {
        self.sqlite = true;
        self
    }

    /// Heartbeats and keepalive deadlines in this process instead of the test Redis.
    pub fn in_process_redis(mut self) -> Self {
        self.in_process_redis = true;
        self
    }

    /// A Redis of the scenario's own instead of the test Redis (one it stops and starts).
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Joins another sandbox's deployment: the same databases, Redis namespace, data
    /// directory (its secrets) and agent id, and its endpoints for the roles not started here
    /// — a second replica, a restart, or an agent in a launch of its own.
    pub fn join(mut self, joined: Joined) -> Self {
        self.join = Some(joined);
        self
    }

    /// Changes the launch configuration after the sandbox's own settings (tuning adds up:
    /// `config.tune_identity(...)` keeps the sandbox's adjustments and applies after them).
    pub fn configure(
        mut self,
        adjust: impl FnOnce(LaunchConfig) -> LaunchConfig + Send + 'static,
    ) -> Self {
        self.adjust.push(Box::new(adjust));
        self
    }

    /// Starts the roles and waits until every one reports SERVING (the agent's Docker too,
    /// when `ATRIUM_TEST_DOCKER=1`), then logs the administrator in when identity runs.
    pub async fn start(self) -> anyhow::Result<Sandbox> {
        let dir = tempfile::tempdir().context("create the sandbox directory")?;
        let id = suffix();
        let (namespace, agent_id, data_dir) = match &self.join {
            Some(j) => (j.namespace.clone(), j.agent_id.clone(), j.data_dir.clone()),
            None => (
                format!("sandbox-{id}"),
                format!("sandbox-agent-{id}"),
                dir.path().to_path_buf(),
            ),
        };
        let mut config = LaunchConfig {
            admin_password: Some(Secret::new(ADMIN_PASSWORD)),
            // One CA per test process: the kit's testing dialers work against the sandbox.
            ca_dir: Some(atrium_service_kit::testing::pki().dir().to_path_buf()),
            redis_namespace: namespace.clone(),
            wait_for_docker: self.roles.contains(&Role::Agent)
                && std::env::var("ATRIUM_TEST_DOCKER").as_deref() == Ok("1"),
            ..LaunchConfig::ephemeral(&data_dir)
        };
        if let Some(j) = &self.join {
            for (role, endpoint) in &j.endpoints {
                if !self.roles.contains(role) {
                    config.external.insert(*role, endpoint.clone());
                }
            }
        }
        let with_database = self.roles.iter().any(|r| r.has_database());
        let mut db_prefix = None;
        if with_database && !self.sqlite {
            let prefix = match self.join.as_ref().and_then(|j| j.db_prefix.clone()) {
                Some(prefix) => prefix,
                None => format!("sandbox_{id}_"),
            };
            config.storage = Storage::Postgres {
                admin_url: Secret::new(env("ATRIUM_TEST_POSTGRES_URL", "PostgreSQL")?),
                prefix: prefix.clone(),
            };
            db_prefix = Some(prefix);
        }
        let with_redis = self
            .roles
            .iter()
            .any(|r| matches!(r, Role::Agent | Role::SessionManager));
        let mut redis_url = None;
        if with_redis && !self.in_process_redis {
            let url = match self
                .redis_url
                .clone()
                .or(self.join.as_ref().and_then(|j| j.redis_url.clone()))
            {
                Some(url) => url,
                None => env("ATRIUM_TEST_REDIS_URL", "Redis")?,
            };
            config.redis_url = Some(Secret::new(url.clone()));
            redis_url = Some(url);
        }
        let sandbox_agent_id = agent_id.clone();
        config = config
            // Scenarios sign in often from one address; rate-limit tests turn these on.
            .tune_identity(|c| {
                c.login_attempts_per_account_per_minute = 0;
                c.login_attempts_per_source_per_minute = 0;
            })
            .tune_agent(move |c| {
                c.agent_id = Some(sandbox_agent_id.clone());
                c.heartbeat_interval_secs = 1;
                c.stop_timeout_secs = 1;
            });
        for adjust in self.adjust {
            config = adjust(config);
        }
        let running = Launcher::start(config, &self.roles)
            .await
            .context("start the sandbox")?;
        let admin = match running.endpoint(Role::Identity) {
            Some(_) => Some(
                running
                    .login("admin", ADMIN_PASSWORD)
                    .await
                    .context("log the administrator in")?,
            ),
            None => None,
        };
        Ok(Sandbox {
            running,
            admin,
            namespace,
            db_prefix,
            redis_url,
            // Only the launch that runs the agent cleans up after it.
            _containers: Containers {
                agent_id: self.roles.contains(&Role::Agent).then(|| agent_id.clone()),
            },
            deployment_agent_id: agent_id,
            _dir: dir,
        })
    }
}

/// Roles running for one scenario. Dropping it stops them (abruptly); [`Sandbox::stop`] stops
/// them in order and says whether every one stopped cleanly.
pub struct Sandbox {
    running: Running,
    admin: Option<Credential>,
    namespace: String,
    db_prefix: Option<String>,
    redis_url: Option<String>,
    /// The agent id of the deployment (this launch's agent, or the one it joined).
    deployment_agent_id: String,
    _containers: Containers,
    _dir: tempfile::TempDir,
}

/// What another launch needs to join a sandbox's deployment ([`SandboxBuilder::join`]).
#[derive(Debug, Clone)]
pub struct Joined {
    pub db_prefix: Option<String>,
    pub namespace: String,
    pub agent_id: String,
    pub data_dir: std::path::PathBuf,
    pub endpoints: std::collections::BTreeMap<Role, String>,
    pub redis_url: Option<String>,
}

/// Removes whatever containers the deployment's agent left behind (a failing scenario's),
/// when the sandbox goes.
struct Containers {
    agent_id: Option<String>,
}

impl Drop for Containers {
    fn drop(&mut self) {
        use std::process::Command;
        let Some(agent_id) = &self.agent_id else {
            return;
        };
        let filter = format!("label=atrium.agent_id={agent_id}");
        let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("docker")
                .args(["rm", "--force", "--volumes", id])
                .output();
        }
    }
}

impl Sandbox {
    pub fn builder(roles: &[Role]) -> SandboxBuilder {
        SandboxBuilder {
            roles: roles.to_vec(),
            sqlite: false,
            in_process_redis: false,
            redis_url: None,
            join: None,
            adjust: Vec::new(),
        }
    }

    /// `roles` with the sandbox's defaults.
    pub async fn start(roles: &[Role]) -> anyhow::Result<Sandbox> {
        Self::builder(roles).start().await
    }

    /// The launch: endpoints, the CA, clients as any caller, health.
    pub fn running(&self) -> &Running {
        &self.running
    }

    /// `https://host:port` of `role`.
    pub fn endpoint(&self, role: Role) -> anyhow::Result<String> {
        self.running
            .endpoint(role)
            .with_context(|| format!("{role} does not run in this sandbox"))
    }

    /// The administrator's login (identity must run).
    pub fn admin(&self) -> anyhow::Result<&Credential> {
        self.admin
            .as_ref()
            .context("no administrator: identity does not run in this sandbox")
    }

    fn as_admin(&self) -> anyhow::Result<Caller> {
        Ok(Caller::User(self.admin()?.clone()))
    }

    /// Logs `username` in through identity.
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<Credential> {
        self.running.login(username, password).await
    }

    pub async fn identity_as_admin(&self) -> anyhow::Result<IdentityClient> {
        self.running.identity(&self.as_admin()?).await
    }

    pub async fn policy_as_admin(&self) -> anyhow::Result<PolicyClient> {
        self.running.policy(&self.as_admin()?).await
    }

    pub async fn session_as_admin(&self) -> anyhow::Result<SessionClient> {
        self.running.session(&self.as_admin()?).await
    }

    pub async fn agent_as_admin(&self) -> anyhow::Result<AgentClient> {
        self.running.agent(&self.as_admin()?).await
    }

    /// Identity as a user's program presenting `credential`.
    pub async fn identity_as(&self, credential: &Credential) -> anyhow::Result<IdentityClient> {
        self.running
            .identity(&Caller::User(credential.clone()))
            .await
    }

    /// Policy as a user's program presenting `credential`.
    pub async fn policy_as(&self, credential: &Credential) -> anyhow::Result<PolicyClient> {
        self.running.policy(&Caller::User(credential.clone())).await
    }

    /// Identity with no credential (login, public calls).
    pub async fn identity_anonymous(&self) -> anyhow::Result<IdentityClient> {
        self.running.identity(&Caller::Anonymous).await
    }

    /// The agent as `service` (the session-manager, its one service caller).
    pub async fn agent_as_service(&self, service: ServiceId) -> anyhow::Result<AgentClient> {
        self.running.agent(&Caller::Service(service)).await
    }

    /// Dials as `service` (the same certificates as the kit's `testing::dialer_as`).
    pub fn dialer_as(&self, service: ServiceId) -> anyhow::Result<Dialer> {
        self.running.dialer_as(service)
    }

    /// The agent's id, when this launch runs the agent (its containers carry it in the
    /// `atrium.agent_id` label).
    pub fn agent_id(&self) -> Option<&str> {
        self._containers.agent_id.as_deref()
    }

    /// What another launch needs to join this sandbox's deployment.
    pub fn joined(&self) -> Joined {
        Joined {
            db_prefix: self.db_prefix.clone(),
            namespace: self.namespace.clone(),
            agent_id: self.deployment_agent_id.clone(),
            data_dir: self.running.data_dir().to_path_buf(),
            endpoints: self.running.endpoints().clone(),
            redis_url: self.redis_url.clone(),
        }
    }

    /// The Redis this sandbox uses (`None`: in-process).
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref()
    }

    /// This sandbox's Redis key namespace.
    pub fn redis_namespace(&self) -> &str {
        &self.namespace
    }

    /// The prefix of this sandbox's PostgreSQL databases (`None` on SQLite).
    pub fn database_prefix(&self) -> Option<&str> {
        self.db_prefix.as_deref()
    }

    /// The sandbox's directory (data, SQLite files).
    pub fn dir(&self) -> &Path {
        self.running.data_dir()
    }

    /// Stops every role in order; an error says which did not stop cleanly.
    pub async fn stop(self) -> anyhow::Result<()> {
        tokio::time::timeout(Duration::from_secs(60), self.running.stop())
            .await
            .context("the sandbox did not stop within 60 s")?
    }
}

/// A user made for a scenario: in a group of their own that sets the scenario's settings.
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub group_id: String,
    pub credential: Credential,
}

/// The password of every [`TestUser`].
pub const USER_PASSWORD: &str = "correct horse battery staple";

/// Creates `name` (made unique) with a group of priority 10 setting `settings` (name, text
/// value), and logs them in. `admin` must be allowed to create users, groups and settings.
pub async fn user_with_settings(
    running: &Running,
    admin: &Credential,
    name: &str,
    settings: &[(&str, &str)],
) -> anyhow::Result<TestUser> {
    use atrium_proto::identity::v1 as id_pb;
    use atrium_proto::policy::v1 as pol;
    let username = format!("{name}-{}", &suffix()[..6]);
    let admin = Caller::User(admin.clone());
    let user = running
        .identity(&admin)
        .await?
        .create_user(id_pb::CreateUserRequest {
            username: username.clone(),
            password: USER_PASSWORD.into(),
            ..Default::default()
        })
        .await
        .context("create the user")?
        .into_inner();
    let mut policy = running.policy(&admin).await?;
    let group = policy
        .create_group(pol::CreateGroupRequest {
            name: format!("{username}-group"),
            description: String::new(),
            priority: 10,
        })
        .await
        .context("create the user's group")?
        .into_inner();
    for (setting, value) in settings {
        policy
            .set_group_setting(pol::SetGroupSettingRequest {
                group_id: group.id.clone(),
                name: (*setting).into(),
                value: None,
                raw_value: (*value).into(),
            })
            .await
            .with_context(|| format!("set {setting}={value}"))?;
    }
    policy
        .add_group_member(pol::GroupMemberRequest {
            group_id: group.id.clone(),
            user_id: user.id.clone(),
        })
        .await
        .context("add the user to the group")?;
    let credential = running.login(&username, USER_PASSWORD).await?;
    Ok(TestUser {
        id: user.id,
        username,
        group_id: group.id,
        credential,
    })
}

/// A workspace of `image` assigned to All Users.
pub async fn demo_workspace(
    running: &Running,
    admin: &Credential,
    image: &str,
    cores: f64,
    memory_mib: i64,
) -> anyhow::Result<String> {
    use atrium_proto::policy::v1 as pol;
    let created = running
        .policy(&Caller::User(admin.clone()))
        .await?
        .create_workspace(pol::CreateWorkspaceRequest {
            workspace: Some(pol::Workspace {
                name: image.into(),
                friendly_name: format!("Demo {}", suffix()),
                enabled: true,
                cores,
                memory_mib,
                ..Default::default()
            }),
            assign_to_all_users: Some(true),
        })
        .await
        .context("create the workspace")?
        .into_inner();
    Ok(created.id)
}

/// The debug `atrium-workspace` binary of this checkout, built (or found up to date) by cargo:
/// a test of another package has no `CARGO_BIN_EXE_` for it.
pub fn workspace_binary() -> anyhow::Result<std::path::PathBuf> {
    cargo_binary("atrium-workspace", "atrium-workspace")
}

/// The debug binary `bin` of `package` in this checkout: the one the test run built beside
/// this test (`cargo nextest run --workspace` builds every package's binaries), else built
/// by cargo now.
pub fn cargo_binary(package: &str, bin: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::path::PathBuf;
    use std::process::Command;
    // target/<profile>/deps/<test> → target/<profile>/<bin>
    if let Some(candidate) = std::env::current_exe()
        .ok()
        .and_then(|me| Some(me.parent()?.parent()?.join(bin)))
        .filter(|c| c.is_file())
    {
        return Ok(candidate);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            package,
            "--bin",
            bin,
        ])
        .output()
        .context("run cargo build")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo build -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo named no {bin} executable"))
}

/// The demo workspace image of this checkout (`atrium image build-demo`'s recipe), tagged by
/// a hash of its binary: built once, reused by every scenario and benchmark after.
pub fn demo_image() -> anyhow::Result<String> {
    use std::process::Command;
    let binary = workspace_binary()?;
    let bytes = std::fs::read(&binary).context("read the workspace binary")?;
    let digest = {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(&bytes);
        hash.iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let tag = format!("atrium/workspace-demo:it-{digest}");
    let present = Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        let options = atrium_workspace::BuildOptions::new(
            tag.clone(),
            atrium_workspace::BinarySource::Prebuilt(binary),
        );
        atrium_workspace::build_image(&options, &mut |_| {}).context("build the demo image")?;
    }
    Ok(tag)
}

/// Writes a heartbeat for an agent that does not exist — labelled *simulated* wherever it is
/// used — with room for many sessions and an address where nothing listens (every call to it
/// fails and is retried). For scale benchmarks and scenarios that need placement but no
/// containers.
pub async fn simulated_agent(
    redis_url: &str,
    namespace: &str,
    agent_id: &str,
) -> anyhow::Result<()> {
    use atrium_heartbeat::{AgentStatus, Capacity, HeartbeatStore, RedisHeartbeats};
    let store = RedisHeartbeats::with_namespace(redis_url, namespace)?;
    let status = AgentStatus {
        agent_id: agent_id.into(),
        zone: "default".into(),
        state: "active".into(),
        capacity: Some(Capacity {
            cores: 100_000.0,
            memory_mib: 1 << 40,
            gpus: 0,
        }),
        allocated: Some(Capacity::default()),
        address: "127.0.0.1:9".into(),
        updated_at: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp(),
            nanos: 0,
        }),
        ..Default::default()
    };
    store.put(&status, Duration::from_secs(3600)).await?;
    Ok(())
}
