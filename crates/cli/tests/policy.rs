//! End-to-end tests of the policy commands, driven through the compiled `atrium` binary.
//!
//! Most run against a policy server alone (in-process, SQLite) with `--token` (minted by the
//! test server) and `--policy-endpoint`; identity is not running, which also shows that policy
//! commands do not dial identity when users are given by id. One runs identity and policy
//! together to check the stored login: `atrium login` against identity, then policy commands
//! with that login, usernames resolved through identity and a refresh when policy refuses the
//! stored access token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use atrium_identity::testing::{ADMIN_PASSWORD, TestIdentity};
use atrium_policy::testing::TestPolicy;
use atrium_policy::{Policy, PolicyConfig};
use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::ServiceId;
use atrium_service_kit::testing::{Backend, TestDatabase};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Nothing listens here: a policy command that dialled identity would fail.
const NO_IDENTITY: &str = "https://127.0.0.1:9";

#[path = "support/run.rs"]
mod run;
use run::Run;

/// `atrium` as one caller: a token, or (without one) the login stored in its config dir.
struct Caller {
    identity: String,
    policy: String,
    token: Option<String>,
    dir: TempDir,
}

impl Caller {
    /// A caller with a token minted by a policy server running alone.
    fn new(server: &TestPolicy, user_id: &str) -> Self {
        Self {
            identity: NO_IDENTITY.to_owned(),
            policy: format!("https://{}", server.addr),
            token: Some(server.token_for(user_id)),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "").await
    }

    /// Runs `atrium ARGS` with `stdin` as its whole input.
    async fn run_with(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_atrium"));
        command.args(args).args([
            "--policy-endpoint",
            &self.policy,
            "--endpoint",
            &self.identity,
        ]);
        if let Some(token) = &self.token {
            command.args(["--token", token]);
        }
        let mut child = command
            .env("ATRIUM_CONFIG_DIR", self.dir.path())
            .env("ATRIUM_CA", atrium_service_kit::testing::pki().ca_path())
            .env_remove("ATRIUM_ENDPOINT")
            .env_remove("ATRIUM_POLICY_ENDPOINT")
            .env_remove("ATRIUM_TOKEN")
            .env_remove("ATRIUM_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn atrium");
        let mut input = child.stdin.take().unwrap();
        // A command that does not read stdin may exit first; a broken pipe is not a failure.
        let _ = input.write_all(stdin.as_bytes()).await;
        drop(input);
        let output = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output());
        let output = output.await.expect("atrium timed out").unwrap();
        Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Runs `atrium ARGS -o json`, which must succeed, and returns its JSON.
    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        self.run(&args).await.ok().json()
    }
}

fn setting<'a>(explanation: &'a Value, name: &str) -> Option<&'a Value> {
    explanation["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
}

#[tokio::test]
async fn an_admin_builds_a_group_and_explains_a_users_policy() {
    let server = TestPolicy::start(Backend::Sqlite).await.unwrap();
    let (admin_id, _) = server.new_user(true).await.unwrap();
    let (user_id, _) = server.new_user(false).await.unwrap();
    let admin = Caller::new(&server, &admin_id);

    let staff = admin
        .json(&["group", "create", "Staff", "--priority", "10"])
        .await;
    assert_eq!(staff["name"], "Staff");
    assert_eq!(staff["priority"], 10);

    let set = admin
        .json(&["setting", "set", "Staff", "allow_kasm_pause", "true"])
        .await;
    assert_eq!(set["name"], "allow_kasm_pause");
    assert_eq!(set["value"], true);
    assert_eq!(set["group_id"], staff["id"]);

    let added = admin.json(&["group", "add-user", "Staff", &user_id]).await;
    assert_eq!(added["user_id"], user_id.as_str());
    assert_eq!(added["source"], "manual");
    let members = admin.json(&["group", "members", "Staff"]).await;
    assert_eq!(members["members"][0]["user_id"], user_id.as_str());

    // Only what some group sets; allow_kasm_pause from Staff, overriding nothing.
    let explained = admin.json(&["policy", "explain", &user_id]).await;
    assert_eq!(explained["user_id"], user_id.as_str());
    assert_eq!(explained["groups"][0]["name"], "Staff");
    let pause = setting(&explained, "allow_kasm_pause").expect("allow_kasm_pause shown");
    assert_eq!(pause["value"], true);
    assert_eq!(pause["is_default"], false);
    assert_eq!(pause["supplied_by"][0]["name"], "Staff");
    assert_eq!(pause["overridden"], Value::Array(Vec::new()));
    let settings = explained["settings"].as_array().unwrap();
    assert!(settings.iter().all(|s| s["is_default"] == false));
    // --all adds the defaults.
    let everything = admin.json(&["policy", "explain", &user_id, "--all"]).await;
    let stop = setting(&everything, "allow_kasm_stop").expect("allow_kasm_stop with --all");
    assert_eq!(stop["is_default"], true);

    // The table a person reads.
    let table = admin.run(&["policy", "explain", &user_id]).await.ok();
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with("allow_kasm_pause"))
        .unwrap_or_else(|| panic!("no allow_kasm_pause row: {table:#?}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells, vec!["allow_kasm_pause", "true", "Staff", "-"]);

    // A stronger group overrides Staff, and the explanation says so.
    admin
        .json(&["group", "create", "Leads", "--priority", "5"])
        .await;
    admin
        .json(&["setting", "set", "Leads", "allow_kasm_pause", "false"])
        .await;
    admin.json(&["group", "add-user", "Leads", &user_id]).await;
    let table = admin.run(&["policy", "explain", &user_id]).await.ok();
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("allow_kasm_pause")
                && l.contains("Leads")
                && l.ends_with("Staff=true")),
        "{table:#?}"
    );

    // A bad value: exit 1, and the error names the setting.
    let bad = admin
        .run(&[
            "setting",
            "set",
            "Staff",
            "keepalive_expiration_action",
            "explode",
        ])
        .await;
    assert_eq!(bad.code, 1, "{bad:#?}");
    assert!(bad.stderr.starts_with("error: "), "{bad:#?}");
    assert!(
        bad.stderr.contains("keepalive_expiration_action"),
        "{bad:#?}"
    );
    let bad = admin
        .run(&[
            "setting",
            "set",
            "Staff",
            "keepalive_expiration_action",
            "explode",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(bad.code, 1);
    let error = bad.json();
    assert_eq!(error["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(error["error"]["field"], "keepalive_expiration_action");

    // Permissions and what the user then holds.
    let granted = admin
        .json(&["group", "grant", "Staff", "users.view", "groups.view"])
        .await;
    let granted = granted["permissions"].as_array().unwrap();
    assert!(granted.contains(&Value::from("users.view")));
    let held = admin.json(&["policy", "permissions", &user_id]).await;
    assert_eq!(held["administrator"], false);
    assert!(
        held["permissions"]
            .as_array()
            .unwrap()
            .contains(&Value::from("groups.view"))
    );

    // Settings and the catalogue.
    let listed = admin.json(&["setting", "list", "Staff"]).await;
    assert_eq!(listed["settings"][0]["name"], "allow_kasm_pause");
    let catalogue = admin.json(&["setting", "catalogue"]).await;
    let action = catalogue["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "keepalive_expiration_action")
        .expect("in the catalogue");
    assert_eq!(action["type"], "enum");
    assert_eq!(action["default_value"], "delete");
    let unset = admin
        .json(&["setting", "unset", "Staff", "allow_kasm_pause"])
        .await;
    assert_eq!(unset["removed"], true);
}

#[tokio::test]
async fn workspaces_are_assigned_to_groups_and_launchable() {
    let server = TestPolicy::start(Backend::Sqlite).await.unwrap();
    let (admin_id, _) = server.new_user(true).await.unwrap();
    let (user_id, _) = server.new_user(false).await.unwrap();
    let admin = Caller::new(&server, &admin_id);
    let user = Caller::new(&server, &user_id);

    let created = admin
        .json(&[
            "workspace",
            "create",
            "--image",
            "kasmweb/chrome:1.16.0",
            "--name",
            "Chrome",
            "--cores",
            "1.5",
            "--no-default-group",
        ])
        .await;
    assert_eq!(created["friendly_name"], "Chrome");
    assert_eq!(created["cores"], 1.5);
    assert_eq!(created["enabled"], true);
    let none = user.json(&["workspace", "launchable"]).await;
    assert_eq!(none["workspaces"], Value::Array(Vec::new()));

    admin
        .json(&["group", "create", "Staff", "--priority", "10"])
        .await;
    admin.json(&["group", "add-user", "Staff", &user_id]).await;
    let assigned = admin
        .json(&["workspace", "assign", "Staff", "Chrome"])
        .await;
    assert_eq!(assigned["changed"], true);
    assert_eq!(assigned["workspace_id"], created["id"]);

    let mine = user.json(&["workspace", "launchable"]).await;
    assert_eq!(mine["workspaces"][0]["id"], created["id"]);
    let theirs = admin.json(&["workspace", "launchable", &user_id]).await;
    assert_eq!(theirs["workspaces"][0]["name"], "kasmweb/chrome:1.16.0");

    // A user without permissions is refused, the way every command reports it.
    let refused = user
        .run(&["group", "create", "Mine", "--priority", "3"])
        .await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stderr.starts_with("error: "), "{refused:#?}");

    let deleted = admin
        .json(&["workspace", "delete", "kasmweb/chrome:1.16.0", "-y"])
        .await;
    assert_eq!(deleted["deleted"], true);
    let missing = admin.run(&["workspace", "show", "Chrome"]).await;
    assert_eq!(missing.code, 1, "{missing:#?}");
}

/// Identity and policy together, as `atrium up` runs them: identity announces users to policy
/// and policy verifies identity's tokens with keys fetched from identity.
struct Cluster {
    identity: TestIdentity,
    policy_addr: SocketAddr,
    shutdown: Shutdown,
    _policy_db: TestDatabase,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl Cluster {
    async fn start() -> Cluster {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = atrium_service_kit::server::bind(any_port).await.unwrap();
        let policy_addr = listener.local_addr().unwrap();
        let identity = TestIdentity::start_with(Backend::Sqlite, |c| {
            c.policy_endpoint = Some(format!("https://{policy_addr}"));
        })
        .await
        .unwrap();
        let policy_db = TestDatabase::new(Backend::Sqlite).await.unwrap();
        let config = PolicyConfig {
            listen: policy_addr,
            database_url: policy_db.url.clone(),
            identity_endpoint: identity.endpoint(),
            tls: atrium_service_kit::testing::tls_for(ServiceId::Policy),
            shutdown_deadline_secs: 1,
            ..PolicyConfig::default()
        };
        let policy = Policy::new(config).await.unwrap();
        let shutdown = Shutdown::new();
        let serving = shutdown.clone();
        tokio::spawn(async move { policy.serve(listener, None, serving).await });
        Cluster {
            identity,
            policy_addr,
            shutdown,
            _policy_db: policy_db,
        }
    }

    /// A caller with no token: it uses what `atrium login` stores.
    fn caller(&self) -> Caller {
        Caller {
            identity: self.identity.endpoint(),
            policy: format!("https://{}", self.policy_addr),
            token: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_commands_use_the_stored_identity_login() {
    let cluster = Cluster::start().await;
    let admin = cluster.caller();
    admin
        .run_with(
            &["login", "-u", "admin", "--password-stdin", "-o", "json"],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .await
        .ok();

    // The bootstrap admin reaches policy's Administrators through identity's outbox.
    let start = Instant::now();
    loop {
        let held = admin.json(&["policy", "permissions"]).await;
        if held["administrator"] == true {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{held}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    admin
        .run_with(
            &["user", "create", "alice", "--password-stdin"],
            "alice-password-1\n",
        )
        .await
        .ok();
    admin
        .json(&["group", "create", "Staff", "--priority", "10"])
        .await;
    admin
        .json(&["setting", "set", "Staff", "allow_kasm_pause", "true"])
        .await;
    // A username, resolved through identity.
    let added = admin.json(&["group", "add-user", "Staff", "alice"]).await;
    let alice_id = admin.json(&["user", "show", "alice"]).await["id"].clone();
    assert_eq!(added["user_id"], alice_id);

    // A stored access token policy refuses is refreshed against identity, and the call retried.
    let file = admin.dir.path().join("credentials.json");
    let mut stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    stored["access_token"] = Value::from("not-a-token");
    std::fs::write(&file, stored.to_string()).unwrap();
    let explained = admin.json(&["policy", "explain", "alice"]).await;
    let pause = setting(&explained, "allow_kasm_pause").expect("allow_kasm_pause shown");
    assert_eq!(pause["value"], true);
    assert_eq!(pause["supplied_by"][0]["name"], "Staff");
    let refreshed: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(refreshed["access_token"], "not-a-token");

    // Without a login, the error says how to get one.
    let stranger = cluster.caller();
    let refused = stranger.run(&["group", "list"]).await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stderr.contains("atrium login"), "{refused:#?}");
}
