//! End-to-end tests of `atrium usage ...`, driven through the compiled `atrium` binary against
//! identity, policy and billing-usage started in this process by the launcher (SQLite, the
//! launch's own CA). The test sets the scene through the services' gRPC APIs — users, a group
//! with a usage_limit, a workspace, and session lifecycle events delivered to billing-usage as
//! the session-manager (by its certificate) — and then checks what the CLI shows: rates set,
//! listed and deleted; a user's allowance with and without a usage_limit; a report as CSV;
//! bad input refused with the flag named before any call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use atrium_launcher::{
    Caller, IdentityClient, LaunchConfig, Launcher, PolicyClient, Role, Running,
};
use atrium_proto::identity::v1 as id;
use atrium_proto::policy::v1 as pol;
use atrium_proto::usage::v1 as usage;
use atrium_service_kit::Secret;
use atrium_service_kit::auth::{Credential, ServiceId};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tempfile::TempDir;
use tokio::process::Command;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "usage-admin-password";
/// Nothing listens here.
const NOWHERE: &str = "https://127.0.0.1:9";

#[path = "support/run.rs"]
mod run;
use run::Run;

impl Run {
    /// The `key: value` line of a `show` table.
    #[track_caller]
    fn field(&self, key: &str) -> String {
        let prefix = format!("{key}:");
        let line = self.stdout.lines().find(|l| l.starts_with(&prefix));
        let line = line.unwrap_or_else(|| panic!("no {key:?} line: {self:#?}"));
        line[prefix.len()..].trim().to_owned()
    }
}

/// `atrium` pointed at the given endpoints, calling with a token.
struct Cli {
    identity: String,
    policy: String,
    usage: String,
    ca: std::path::PathBuf,
    token: String,
    config: TempDir,
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_atrium"))
            .args(args)
            .args(["--endpoint", &self.identity])
            .args(["--policy-endpoint", &self.policy])
            .args(["--usage-endpoint", &self.usage])
            .args(["--token", &self.token])
            .env("ATRIUM_CONFIG_DIR", self.config.path())
            .env("ATRIUM_CA", &self.ca)
            .env_remove("ATRIUM_ENDPOINT")
            .env_remove("ATRIUM_POLICY_ENDPOINT")
            .env_remove("ATRIUM_USAGE_ENDPOINT")
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

    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        self.run(&args).await.ok().json()
    }
}

/// Identity, policy and billing-usage, the administrator's CLI, and the scene's ids.
struct Stack {
    running: Running,
    cli: Cli,
    admin: Credential,
    alice: String,
    bob: String,
    carol: String,
    students: String,
    demo: String,
    _data: TempDir,
}

async fn create_user(identity: &mut IdentityClient, name: &str) -> String {
    let request = id::CreateUserRequest {
        username: name.into(),
        password: format!("{name}-password-123"),
        ..Default::default()
    };
    identity.create_user(request).await.unwrap().into_inner().id
}

/// A group with `member` and a usage_limit (its JSON form).
async fn limited_group(
    policy: &mut PolicyClient,
    name: &str,
    priority: i32,
    limit: &str,
    member: &str,
) -> String {
    let group = policy
        .create_group(pol::CreateGroupRequest {
            name: name.into(),
            priority,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    policy
        .set_group_setting(pol::SetGroupSettingRequest {
            group_id: group.id.clone(),
            name: "usage_limit".into(),
            value: None,
            raw_value: limit.into(),
        })
        .await
        .unwrap();
    policy
        .add_group_member(pol::GroupMemberRequest {
            group_id: group.id.clone(),
            user_id: member.into(),
        })
        .await
        .unwrap();
    group.id
}

fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

impl Stack {
    async fn start() -> Stack {
        let data = tempfile::tempdir().unwrap();
        let config = LaunchConfig {
            admin_password: Some(Secret::new(PASSWORD)),
            ..LaunchConfig::ephemeral(data.path())
        }
        .tune_identity(|c| {
            c.login_attempts_per_account_per_minute = 0;
            c.login_attempts_per_source_per_minute = 0;
        });
        let running = Launcher::start(config, &[Role::Identity, Role::Policy, Role::BillingUsage])
            .await
            .unwrap();
        let admin = running.admin().await.unwrap();
        let Credential::Bearer(token) = &admin else {
            panic!("a login gives a bearer token");
        };
        let cli = Cli {
            identity: running.endpoint(Role::Identity).unwrap(),
            policy: running.endpoint(Role::Policy).unwrap(),
            usage: running.endpoint(Role::BillingUsage).unwrap(),
            ca: running.ca_path().to_path_buf(),
            token: token.clone(),
            config: tempfile::tempdir().unwrap(),
        };
        let as_admin = Caller::User(admin.clone());
        let mut identity = running.identity(&as_admin).await.unwrap();
        let alice = create_user(&mut identity, "alice").await;
        let bob = create_user(&mut identity, "bob").await;
        let carol = create_user(&mut identity, "carol").await;

        let mut policy = running.policy(&as_admin).await.unwrap();
        let students = limited_group(
            &mut policy,
            "Students",
            10,
            r#"{"type": "per_user", "interval": "total", "hours": 10}"#,
            &alice,
        )
        .await;
        limited_group(
            &mut policy,
            "Tight",
            20,
            r#"{"type": "per_user", "interval": "total", "hours": 1}"#,
            &carol,
        )
        .await;
        let demo = policy
            .create_workspace(pol::CreateWorkspaceRequest {
                workspace: Some(pol::Workspace {
                    name: "atrium/workspace-demo:latest".into(),
                    friendly_name: "Demo".into(),
                    cores: 0.5,
                    memory_mib: 256,
                    enabled: true,
                    ..Default::default()
                }),
                assign_to_all_users: Some(true),
            })
            .await
            .unwrap()
            .into_inner()
            .id;

        Stack {
            running,
            cli,
            admin,
            alice,
            bob,
            carol,
            students,
            demo,
            _data: data,
        }
    }

    /// A session of `user` on Demo from `hours_ago` for `hours`, delivered as the
    /// session-manager delivers its lifecycle events.
    async fn session(&self, user: (&str, &str), groups: &[&str], hours_ago: f64, hours: f64) {
        let now = Utc::now();
        let created = now - chrono::Duration::milliseconds((hours_ago * 3_600_000.0) as i64);
        let deleted = created + chrono::Duration::milliseconds((hours * 3_600_000.0) as i64);
        let session_id = uuid::Uuid::now_v7().to_string();
        let event = |kind: &str, at: DateTime<Utc>| usage::SessionEvent {
            id: uuid::Uuid::now_v7().to_string(),
            session_id: session_id.clone(),
            kind: kind.into(),
            at: Some(ts(at)),
            user_id: user.0.into(),
            username: user.1.into(),
            workspace_id: self.demo.clone(),
            agent_id: "agent-1".into(),
            zone_id: String::new(),
            group_ids: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        let events = vec![
            event("created", created),
            event("running", created),
            event("deleted", deleted),
        ];
        let answer = self
            .running
            .usage(&Caller::Service(ServiceId::SessionManager))
            .await
            .unwrap()
            .ingest_events(usage::IngestEventsRequest { events })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.accepted, 3);
    }

    async fn stop(self) {
        let _ = self.admin;
        self.running.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_rates_are_set_listed_and_deleted() {
    let stack = Stack::start().await;
    let cli = &stack.cli;

    let set = cli
        .run(&[
            "usage",
            "rate",
            "set",
            "Demo",
            "--per-hour",
            "0.50",
            "--currency",
            "eur",
        ])
        .await
        .ok();
    assert!(set.stdout.contains("0.50 EUR per hour"), "{set:#?}");
    assert!(set.stdout.contains(&stack.demo), "{set:#?}");

    let listed = cli.json(&["usage", "rate", "list"]).await;
    let rates = listed["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 1, "{listed}");
    assert_eq!(rates[0]["workspace_id"], stack.demo.as_str());
    assert_eq!(rates[0]["workspace"], "Demo");
    assert_eq!(rates[0]["per_hour"], 0.5);
    assert_eq!(rates[0]["currency"], "EUR");
    let table = cli.run(&["usage", "rate", "list"]).await.ok();
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&stack.demo))
        .unwrap_or_else(|| panic!("no rate line: {table:#?}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[1..], ["Demo", "0.50", "EUR"], "{table:#?}");

    // Replacing it, by id this time.
    cli.run(&[
        "usage",
        "rate",
        "set",
        &stack.demo,
        "--per-hour",
        "2",
        "--currency",
        "USD",
    ])
    .await
    .ok();
    let listed = cli.json(&["usage", "rate", "list"]).await;
    assert_eq!(listed["rates"][0]["per_hour"], 2.0, "{listed}");
    assert_eq!(listed["rates"][0]["currency"], "USD", "{listed}");

    let deleted = cli.run(&["usage", "rate", "delete", "Demo"]).await.ok();
    assert!(deleted.stdout.contains("deleted the rate"), "{deleted:#?}");
    let listed = cli.json(&["usage", "rate", "list"]).await;
    assert_eq!(
        listed["rates"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );

    // A workspace nobody has: refused before billing-usage is asked.
    cli.run(&[
        "usage",
        "rate",
        "set",
        "Nope",
        "--per-hour",
        "1",
        "--currency",
        "EUR",
    ])
    .await
    .fails(1, "no workspace");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_show_tells_a_limited_user_from_an_unmetered_one() {
    let stack = Stack::start().await;
    let cli = &stack.cli;
    let all_users = "00000000-0000-7000-8000-000000000002";
    stack
        .session(
            (&stack.alice, "alice"),
            &[&stack.students, all_users],
            3.0,
            2.0,
        )
        .await;
    stack
        .session((&stack.carol, "carol"), &[all_users], 4.0, 1.5)
        .await;

    // alice: 2 of her own 10 hours (total: never resets) used.
    let alice = cli.json(&["usage", "show", "alice", "--days", "2"]).await;
    assert_eq!(alice["user_id"], stack.alice.as_str(), "{alice}");
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["limited"], true, "{alice}");
    assert_eq!(alice["spent"], false, "{alice}");
    assert_eq!(alice["limit"]["type"], "per_user");
    assert_eq!(alice["limit"]["interval"], "total");
    assert_eq!(alice["limit"]["hours"], 10.0);
    assert_eq!(alice["group_name"], "Students");
    assert_eq!(alice["group_id"], stack.students.as_str());
    let used = alice["used_seconds"].as_f64().unwrap();
    assert!((used - 7200.0).abs() < 5.0, "{alice}");
    let remaining = alice["remaining_seconds"].as_f64().unwrap();
    assert!((remaining - 28_800.0).abs() < 5.0, "{alice}");
    let history = alice["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{alice}");
    let by_day: f64 = history.iter().filter_map(|d| d["seconds"].as_f64()).sum();
    assert!((by_day - 7200.0).abs() < 5.0, "{alice}");

    let table = cli.run(&["usage", "show", &stack.alice]).await.ok();
    assert_eq!(
        table.field("limit"),
        "10 hours in total, per user",
        "{table:#?}"
    );
    assert!(table.field("set by group").starts_with("Students"));
    assert_eq!(table.field("used"), "2.00 h");
    assert_eq!(table.field("remaining"), "8.00 h");
    assert_eq!(table.field("spent"), "no");
    assert_eq!(table.field("open sessions"), "0");
    assert!(table.stdout.contains("DATE"), "{table:#?}");

    // carol: 1.5 hours of a 1-hour allowance: spent.
    let carol = cli.json(&["usage", "show", "carol"]).await;
    assert_eq!(carol["spent"], true, "{carol}");
    assert_eq!(carol["allowed"], false, "{carol}");
    assert_eq!(carol["remaining_seconds"], 0.0, "{carol}");
    let table = cli.run(&["usage", "show", "carol"]).await.ok();
    assert_eq!(table.field("spent"), "yes");

    // bob: no group sets usage_limit.
    let bob = cli.json(&["usage", "show", "bob"]).await;
    assert_eq!(bob["limited"], false, "{bob}");
    assert_eq!(bob["spent"], false, "{bob}");
    assert_eq!(bob["limit"], Value::Null, "{bob}");
    let table = cli.run(&["usage", "show", "bob"]).await.ok();
    assert!(table.field("limit").starts_with("none"), "{table:#?}");
    assert_eq!(table.field("spent"), "no");

    cli.run(&["usage", "show", "nobody"])
        .await
        .fails(1, "user nobody");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_report_csv_has_a_header_and_a_row_per_key() {
    let stack = Stack::start().await;
    let cli = &stack.cli;
    let all_users = "00000000-0000-7000-8000-000000000002";
    stack
        .session(
            (&stack.alice, "alice"),
            &[&stack.students, all_users],
            3.0,
            2.0,
        )
        .await;
    stack
        .session((&stack.bob, "bob"), &[all_users], 2.0, 0.5)
        .await;
    cli.run(&[
        "usage",
        "rate",
        "set",
        "Demo",
        "--per-hour",
        "2",
        "--currency",
        "EUR",
    ])
    .await
    .ok();
    let from = (Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();

    let csv = cli
        .run(&[
            "usage",
            "report",
            "--by",
            "workspace",
            "--from",
            &from,
            "--csv",
        ])
        .await
        .ok();
    let lines: Vec<&str> = csv.stdout.split_terminator("\r\n").collect();
    assert_eq!(
        lines.first().copied(),
        Some("key,name,hours,sessions,cost_EUR,unpriced_hours"),
        "{csv:#?}"
    );
    let demo = lines
        .iter()
        .find(|l| l.starts_with(&stack.demo))
        .unwrap_or_else(|| panic!("no Demo row: {csv:#?}"));
    assert_eq!(
        *demo,
        format!("{},Demo,2.5000,2,5.00,0.0000", stack.demo),
        "{csv:#?}"
    );
    assert_eq!(lines.last().copied(), Some("total,,2.5000,2,5.00,0.0000"));

    // By user, one row per page: every page is followed; usernames come with the rows.
    let by_user = cli
        .json(&[
            "usage",
            "report",
            "--by",
            "user",
            "--from",
            &from,
            "--page-size",
            "1",
        ])
        .await;
    let mut names: Vec<&str> = by_user["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"], "{by_user}");
    assert_eq!(by_user["total"]["seconds"], 9000.0, "{by_user}");

    // By group: names through policy.
    let table = cli
        .run(&["usage", "report", "--by", "group", "--from", &from])
        .await
        .ok();
    let students = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&stack.students))
        .unwrap_or_else(|| panic!("no Students row: {table:#?}"));
    assert!(students.contains("Students"), "{table:#?}");
    assert!(table.stdout.contains("All Users"), "{table:#?}");
    stack.stop().await;
}

/// Checked before any call: nothing listens at the endpoints.
#[tokio::test]
async fn usage_bad_input_is_refused_naming_the_flag() {
    let cli = Cli {
        identity: NOWHERE.into(),
        policy: NOWHERE.into(),
        usage: NOWHERE.into(),
        ca: atrium_service_kit::testing::pki().ca_path(),
        token: "unused".into(),
        config: tempfile::tempdir().unwrap(),
    };
    let report = |from: &'static str, to: &'static str| {
        let args = [
            "usage", "report", "--by", "user", "--from", from, "--to", to,
        ];
        let cli = &cli;
        async move { cli.run(&args).await }
    };
    report("2025-02-01", "2025-01-01").await.fails(
        2,
        "--from: 2025-02-01T00:00:00Z is not before --to 2025-01-01T00:00:00Z",
    );
    report("2025-01-01", "2025-01-01").await.fails(2, "--from");
    report("2025-13-01", "2025-01-01").await.fails(2, "--from");
    report("2025-01-01", "next tuesday").await.fails(2, "--to");
    cli.run(&["usage", "report", "--by", "planet", "--from", "1d"])
        .await
        .fails(2, "--by");
    cli.run(&[
        "usage",
        "rate",
        "set",
        "Demo",
        "--per-hour",
        "-0.5",
        "--currency",
        "EUR",
    ])
    .await
    .fails(2, "--per-hour")
    .fails(2, "more than 0");
    cli.run(&[
        "usage",
        "rate",
        "set",
        "Demo",
        "--per-hour",
        "abc",
        "--currency",
        "EUR",
    ])
    .await
    .fails(2, "--per-hour");
    cli.run(&[
        "usage",
        "rate",
        "set",
        "Demo",
        "--per-hour",
        "1",
        "--currency",
        "EURO",
    ])
    .await
    .fails(2, "--currency")
    .fails(2, "ISO 4217");
    cli.run(&["usage", "show", "alice", "--days", "0"])
        .await
        .fails(2, "--days");
    // JSON errors for programs, too.
    let run = cli
        .run(&[
            "usage",
            "report",
            "--by",
            "user",
            "--from",
            "2025-02-01",
            "--to",
            "2025-01-01",
            "-o",
            "json",
        ])
        .await
        .fails(2, "--from");
    assert_eq!(run.json()["error"]["code"], "INVALID_ARGUMENT");
}
