//! End-to-end tests of `atrium workspace create/update/show` with every field, driven through
//! the compiled `atrium` binary against a policy server alone (in-process, SQLite), with tokens
//! minted by the test server: every field set and read back, fields cleared, bad input refused
//! with the flag named before any call, and host-access fields kept for (and refused to) a
//! caller who cannot see them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use atrium_policy::testing::TestPolicy;
use atrium_proto::policy::v1::Zone;
use atrium_service_kit::testing::Backend;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Nothing listens here.
const NOWHERE: &str = "https://127.0.0.1:9";

#[path = "support/run.rs"]
mod run;
use run::Run;

impl Run {
    /// The `key: value` line of `workspace show`'s table.
    #[track_caller]
    fn field(&self, key: &str) -> String {
        let prefix = format!("{key}:");
        let line = self.stdout.lines().find(|l| l.starts_with(&prefix));
        let line = line.unwrap_or_else(|| panic!("no {key:?} line: {self:#?}"));
        line[prefix.len()..].trim().to_owned()
    }
}

/// `atrium` calling policy as one user (identity is not running).
struct Caller {
    policy: String,
    token: String,
    dir: TempDir,
}

impl Caller {
    fn new(server: &TestPolicy, user_id: &str) -> Self {
        Self {
            policy: server.endpoint(),
            token: server.token_for(user_id),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_atrium"))
            .args(args)
            .args(["--policy-endpoint", &self.policy, "--endpoint", NOWHERE])
            .args(["--token", &self.token])
            .env("ATRIUM_CONFIG_DIR", self.dir.path())
            .env("ATRIUM_CA", atrium_service_kit::testing::pki().ca_path())
            .env_remove("ATRIUM_ENDPOINT")
            .env_remove("ATRIUM_POLICY_ENDPOINT")
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

async fn zone(server: &TestPolicy, admin_id: &str, name: &str) -> String {
    let mut client = server.as_user(admin_id).await.unwrap();
    let zone = client
        .create_zone(Zone {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    zone.id
}

#[tokio::test]
async fn update_sets_every_field_and_clears_them() {
    let server = TestPolicy::start(Backend::Sqlite).await.unwrap();
    let (admin_id, _) = server.new_user(true).await.unwrap();
    let admin = Caller::new(&server, &admin_id);
    let east = zone(&server, &admin_id, "east").await;

    let created = admin
        .json(&[
            "workspace",
            "create",
            "--image",
            "kasmweb/chrome:1.16.0",
            "--name",
            "Chrome",
            "--session-time-limit",
            "0",
            "--exec-go-cmd",
            "open $URL",
            "--no-default-group",
        ])
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    // Zero is a limit, not "no limit".
    assert_eq!(created["session_time_limit_secs"], 0);
    assert_eq!(created["exec_config"]["go"]["cmd"], "open $URL");
    assert_eq!(created["exec_config"]["first_launch"], Value::Null);

    let files = tempfile::tempdir().unwrap();
    let run_config = files.path().join("run.json");
    std::fs::write(&run_config, r#"{"hostname": "kasm", "shm_size": "1g"}"#).unwrap();
    let exec = files.path().join("exec.json");
    std::fs::write(
        &exec,
        r#"{"first_launch": {"cmd": "setup.sh", "user": "root", "environment": {"A": "1"}}}"#,
    )
    .unwrap();
    let run_config = format!("@{}", run_config.display());
    let exec = format!("@{}", exec.display());
    let updated = admin
        .json(&[
            "workspace",
            "update",
            "Chrome",
            "--image",
            "kasmweb/chrome:1.17.0",
            "--name",
            "Chrome 17",
            "--description",
            "A browser",
            "--category",
            "Browsers",
            "--category",
            "Web",
            "--enabled",
            "false",
            "--hidden",
            "true",
            "--cores",
            "1.5",
            "--memory-mib",
            "4096",
            "--gpus",
            "1",
            "--require-gpu",
            "true",
            "--run-config",
            &run_config,
            // The file replaces every hook; the flags then edit the result.
            "--exec-config",
            &exec,
            "--exec-first-launch-workdir",
            "/home/kasm-user",
            "--exec-first-launch-privileged",
            "true",
            "--exec-assign-cmd",
            "assign.sh",
            "--exec-assign-env",
            "B=2",
            "--volume",
            "/srv/shared:/shared:ro",
            "--volume",
            "/srv/scratch:/scratch",
            "--persistent-profile-path",
            "/profiles/{username}",
            "--session-time-limit",
            "1h30m",
            "--zone",
            "east",
            "--thumbnail-url",
            "https://cdn.example.com/chrome.png",
        ])
        .await;
    let read = admin.json(&["workspace", "show", &id]).await;
    assert_eq!(read, updated);
    let expected = json!({
        "id": id,
        "name": "kasmweb/chrome:1.17.0",
        "friendly_name": "Chrome 17",
        "description": "A browser",
        "categories": ["Browsers", "Web"],
        "enabled": false,
        "hidden": true,
        "cores": 1.5,
        "memory_mib": 4096,
        "gpu_count": 1,
        "require_gpu": true,
        "run_config_json": r#"{"hostname":"kasm","shm_size":"1g"}"#,
        "exec_config": {
            "first_launch": {
                "cmd": "setup.sh",
                "user": "root",
                "environment": {"A": "1"},
                "workdir": "/home/kasm-user",
                "privileged": true,
            },
            "go": null,
            "assign": {
                "cmd": "assign.sh",
                "user": "",
                "environment": {"B": "2"},
                "workdir": "",
                "privileged": false,
            },
        },
        "volume_mappings": [
            {"host_path": "/srv/shared", "container_path": "/shared", "mode": "ro"},
            {"host_path": "/srv/scratch", "container_path": "/scratch", "mode": "rw"},
        ],
        "persistent_profile_path": "/profiles/{username}",
        "session_time_limit_secs": 5400,
        "zone_id": east,
        "thumbnail_url": "https://cdn.example.com/chrome.png",
        "host_access_withheld": false,
    });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&read[key], value, "{key}");
    }

    // The table a person reads has every field.
    let table = admin
        .run(&["workspace", "show", "kasmweb/chrome:1.17.0"])
        .await
        .ok();
    assert_eq!(table.field("categories"), "Browsers, Web");
    assert_eq!(table.field("require gpu"), "yes");
    assert_eq!(table.field("session time limit"), "5400s (1h30m)");
    assert_eq!(
        table.field("exec first_launch"),
        "setup.sh [user root, workdir /home/kasm-user, privileged, env A=1]"
    );
    assert_eq!(table.field("exec go"), "-");
    assert_eq!(
        table.field("volumes"),
        "/srv/shared:/shared:ro, /srv/scratch:/scratch:rw"
    );
    assert_eq!(table.field("zone"), east);
    assert_eq!(
        table.field("thumbnail"),
        "https://cdn.example.com/chrome.png"
    );

    // One field changes; everything else stays.
    let one = admin
        .json(&["workspace", "update", &id, "--cores", "3"])
        .await;
    for (key, value) in expected.as_object().unwrap() {
        if key != "cores" {
            assert_eq!(&one[key], value, "{key}");
        }
    }
    assert_eq!(one["cores"], 3.0);

    // Clearing.
    let cleared = admin
        .json(&[
            "workspace",
            "update",
            &id,
            "--description",
            "",
            "--no-categories",
            "--require-gpu",
            "false",
            "--run-config",
            "{}",
            "--no-exec-first-launch",
            "--exec-assign-no-env",
            "--no-volumes",
            "--persistent-profile-path",
            "",
            "--no-session-time-limit",
            "--no-zone",
            "--thumbnail-url",
            "",
        ])
        .await;
    assert_eq!(cleared["description"], "");
    assert_eq!(cleared["categories"], json!([]));
    assert_eq!(cleared["require_gpu"], false);
    assert_eq!(cleared["gpu_count"], 1);
    assert_eq!(cleared["run_config_json"], "{}");
    assert_eq!(cleared["exec_config"]["first_launch"], Value::Null);
    assert_eq!(cleared["exec_config"]["assign"]["cmd"], "assign.sh");
    assert_eq!(cleared["exec_config"]["assign"]["environment"], json!({}));
    assert_eq!(cleared["volume_mappings"], json!([]));
    assert_eq!(cleared["persistent_profile_path"], "");
    assert_eq!(cleared["session_time_limit_secs"], Value::Null);
    assert_eq!(cleared["zone_id"], "");
    assert_eq!(cleared["thumbnail_url"], "");
    let table = admin.run(&["workspace", "show", &id]).await.ok();
    assert_eq!(table.field("session time limit"), "none");

    // And back to a limit of zero, which is not "none".
    let zero = admin
        .json(&["workspace", "update", &id, "--session-time-limit", "0"])
        .await;
    assert_eq!(zero["session_time_limit_secs"], 0);
    let table = admin.run(&["workspace", "show", &id]).await.ok();
    assert_eq!(table.field("session time limit"), "0s");

    // Nothing to change is a usage error.
    let nothing = admin.run(&["workspace", "update", &id]).await;
    assert_eq!(nothing.code, 2, "{nothing:#?}");
    assert!(nothing.stderr.contains("nothing to update"), "{nothing:#?}");
    // An unknown zone name says which zones there are.
    let unknown = admin
        .run(&["workspace", "update", &id, "--zone", "west"])
        .await;
    assert_eq!(unknown.code, 2, "{unknown:#?}");
    assert!(
        unknown.stderr.contains("--zone") && unknown.stderr.contains("east"),
        "{unknown:#?}"
    );
    // A hook edited without a command, and require_gpu without GPUs.
    let hookless = admin
        .run(&["workspace", "update", &id, "--exec-go-user", "root"])
        .await;
    assert_eq!(hookless.code, 2, "{hookless:#?}");
    assert!(hookless.stderr.contains("--exec-go-cmd"), "{hookless:#?}");
    let gpuless = admin
        .run(&[
            "workspace",
            "update",
            &id,
            "--gpus",
            "0",
            "--require-gpu",
            "true",
        ])
        .await;
    assert_eq!(gpuless.code, 2, "{gpuless:#?}");
    assert!(gpuless.stderr.contains("--require-gpu"), "{gpuless:#?}");
    let after = admin.json(&["workspace", "show", &id]).await;
    assert_eq!(after, zero, "refused updates changed nothing");
}

#[tokio::test]
async fn bad_input_names_the_flag_before_any_call() {
    let server = TestPolicy::start(Backend::Sqlite).await.unwrap();
    let (admin_id, _) = server.new_user(true).await.unwrap();
    // Policy is not there either: an error naming a flag was found before any call.
    let offline = Caller {
        policy: NOWHERE.into(),
        ..Caller::new(&server, &admin_id)
    };
    let id = "00000000-0000-7000-8000-000000000001";
    for (args, flag, why) in [
        (vec!["--cores", "-1"], "--cores", "above 0"),
        (vec!["--cores", "lots"], "--cores", "number"),
        (vec!["--memory-mib", "0"], "--memory-mib", "above 0"),
        (vec!["--gpus", "-1"], "--gpus", ""),
        (
            vec!["--run-config", "{not json"],
            "--run-config",
            "not valid JSON",
        ),
        (
            vec!["--run-config", r#"{"pid_mode": "host"}"#],
            "--run-config",
            "pid_mode",
        ),
        (
            vec!["--run-config", "@/nonexistent/run.json"],
            "--run-config",
            "cannot read",
        ),
        (
            vec!["--exec-config", r#"{"go": {"user": "root"}}"#],
            "--exec-config",
            "go.cmd",
        ),
        (vec!["--volume", "/srv"], "--volume", "HOST:CONTAINER"),
        (vec!["--volume", "srv:/data"], "--volume", "absolute"),
        (vec!["--volume", "/srv:/data:rx"], "--volume", "ro or rw"),
        (
            vec!["--session-time-limit", "-60"],
            "--session-time-limit",
            "negative",
        ),
        (
            vec!["--session-time-limit", "10", "--no-session-time-limit"],
            "--no-session-time-limit",
            "",
        ),
        (
            vec!["--thumbnail-url", "chrome.png"],
            "--thumbnail-url",
            "URL",
        ),
        (
            vec!["--persistent-profile-path", "/profiles"],
            "--persistent-profile-path",
            "{username}",
        ),
        (
            vec!["--exec-go-env", "NOVALUE"],
            "--exec-go-env",
            "NAME=VALUE",
        ),
        (
            vec!["--exec-go-workdir", "home"],
            "--exec-go-workdir",
            "absolute",
        ),
        (vec!["--zone", ""], "--zone", "--no-zone"),
        (
            vec!["--no-exec-go", "--exec-go-cmd", "x"],
            "--no-exec-go",
            "",
        ),
        (
            vec!["--no-volumes", "--volume", "/a:/b"],
            "--no-volumes",
            "",
        ),
    ] {
        let mut command = vec!["workspace", "update", id];
        command.extend(&args);
        let run = offline.run(&command).await;
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(
            run.stderr.contains(flag) && run.stderr.contains(why),
            "{args:?}: {run:#?}"
        );
    }
    let run = offline
        .run(&["workspace", "create", "--image", "x", "--cores", "0"])
        .await;
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("--cores"), "{run:#?}");
}

#[tokio::test]
async fn a_caller_without_host_access_keeps_it_and_cannot_change_it() {
    let server = TestPolicy::start(Backend::Sqlite).await.unwrap();
    let (admin_id, _) = server.new_user(true).await.unwrap();
    let (editor_id, _) = server.new_user(false).await.unwrap();
    let admin = Caller::new(&server, &admin_id);
    let editor = Caller::new(&server, &editor_id);
    admin
        .json(&["group", "create", "Editors", "--priority", "10"])
        .await;
    admin
        .json(&[
            "group",
            "grant",
            "Editors",
            "workspaces.view",
            "workspaces.modify",
        ])
        .await;
    admin
        .json(&["group", "add-user", "Editors", &editor_id])
        .await;
    let created = admin
        .json(&[
            "workspace",
            "create",
            "--image",
            "kasmweb/desktop:1",
            "--volume",
            "/srv:/srv",
            "--run-config",
            r#"{"hostname": "desk"}"#,
            "--no-default-group",
        ])
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    // The editor sees it without host access, changes what they may, and the rest is kept.
    let seen = editor.json(&["workspace", "show", &id]).await;
    assert_eq!(seen["host_access_withheld"], true);
    assert_eq!(seen["volume_mappings"], json!([]));
    let table = editor.run(&["workspace", "show", &id]).await.ok();
    assert!(table.field("host access").starts_with("withheld"));
    editor
        .json(&["workspace", "update", &id, "--cores", "1"])
        .await;
    let kept = admin.json(&["workspace", "show", &id]).await;
    assert_eq!(kept["cores"], 1.0);
    assert_eq!(kept["volume_mappings"], created["volume_mappings"]);
    assert_eq!(kept["run_config_json"], r#"{"hostname":"desk"}"#);

    // Asking to change host access is refused, naming the flag, and nothing changes.
    for args in [
        vec!["--no-volumes"],
        vec!["--run-config", "{}"],
        vec!["--exec-go-cmd", "x"],
    ] {
        let mut command = vec!["workspace", "update", id.as_str(), "--cores", "2"];
        command.extend(&args);
        let refused = editor.run(&command).await;
        assert_eq!(refused.code, 1, "{args:?}: {refused:#?}");
        assert!(
            refused.stderr.contains("only administrators"),
            "{refused:#?}"
        );
    }
    let after = admin.json(&["workspace", "show", &id]).await;
    assert_eq!(after["cores"], 1.0);
    assert_eq!(after["volume_mappings"], created["volume_mappings"]);
}
