//! End-to-end tests of the `atrium` binary: each test starts a real identity server in-process
//! (SQLite) and drives the compiled CLI against it as a separate process, answering its
//! questions through stdin the way a script would, and checks exit codes and output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atrium_identity::testing::{ADMIN_PASSWORD, TestIdentity};
use atrium_service_kit::testing::Backend;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Alice's password, as the one line of stdin that `--password-stdin` reads.
const ALICE: &str = "alice-password-1\n";
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[path = "support/run.rs"]
mod run;
use run::Run;

/// One person at one keyboard: `atrium` with its own config dir, pointed at the test server.
struct Shell {
    endpoint: String,
    dir: TempDir,
}

impl Shell {
    fn new(server: &TestIdentity) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            endpoint: server.endpoint(),
            dir,
        }
    }

    /// Starts `atrium` with `args` (split on whitespace) and every stream piped.
    fn spawn(&self, args: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_atrium"))
            .args(args.split_whitespace())
            .args(["--endpoint", &self.endpoint])
            .env("ATRIUM_CONFIG_DIR", self.dir.path())
            .env("ATRIUM_CA", atrium_service_kit::testing::pki().ca_path())
            .env_remove("ATRIUM_ENDPOINT")
            .env_remove("ATRIUM_TOKEN")
            .env_remove("ATRIUM_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn atrium")
    }

    /// Runs `atrium ARGS` with `stdin` as its whole input.
    async fn run(&self, args: &str, stdin: &str) -> Run {
        let mut child = self.spawn(args);
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
    async fn json(&self, args: &str, stdin: &str) -> Value {
        self.run(&format!("{args} -o json"), stdin)
            .await
            .ok()
            .json()
    }

    /// `atrium login -u USER --password-stdin -o json EXTRA` with `stdin` (password first).
    async fn login(&self, user: &str, extra: &str, stdin: &str) -> Run {
        let args = format!("login -u {user} --password-stdin -o json {extra}");
        self.run(&args, stdin).await
    }
}

async fn start() -> (TestIdentity, Shell) {
    let server = TestIdentity::start(Backend::Sqlite).await.unwrap();
    let admin = Shell::new(&server);
    (server, admin)
}

/// A server, the admin logged in, and alice created by the admin.
async fn with_alice() -> (TestIdentity, Shell) {
    let (server, admin) = start().await;
    admin
        .login("admin", "", &format!("{ADMIN_PASSWORD}\n"))
        .await
        .ok();
    create_alice(&admin).await;
    (server, admin)
}

async fn create_alice(admin: &Shell) -> Value {
    let args = "user create alice --password-stdin --email alice@example.com";
    admin.json(args, ALICE).await
}

async fn show_alice(admin: &Shell) -> Value {
    admin.json("user show alice", "").await
}

/// The TOTP code for the current 30-second step plus `offset` steps.
fn totp(secret: &str, offset: i64) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let step = i64::try_from(now.as_secs() / 30).unwrap() + offset;
    atrium_identity::totp::code_at(&key, step)
}

/// A six-digit code the server does not accept now (none of the steps it allows).
fn wrong_totp(secret: &str) -> String {
    let valid: Vec<String> = (-2..=2).map(|d| totp(secret, d)).collect();
    let mut candidates = (0..10).map(|d| d.to_string().repeat(6));
    candidates.find(|c| !valid.contains(c)).unwrap()
}

/// The next line the running CLI prints.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    let line = tokio::time::timeout(RUN_TIMEOUT, lines.next_line()).await;
    line.expect("atrium printed nothing in time")
        .unwrap()
        .expect("stdout ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_logs_in_and_manages_users() {
    let (server, admin) = start().await;
    let login = admin
        .login("admin", "", &format!("{ADMIN_PASSWORD}\n"))
        .await;
    let login = login.ok().json();
    assert_eq!(login["status"], "success");
    assert_eq!(login["user"]["username"], "admin");
    assert_eq!(login["endpoint"], server.endpoint());
    assert!(
        login.get("access_token").is_none(),
        "tokens stay in the file: {login}"
    );
    assert!(admin.dir.path().join("credentials.json").exists());

    let me = admin.json("whoami", "").await;
    assert_eq!(me["kind"], "user");
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_admin"], true);
    let table = admin.run("whoami", "").await.ok();
    assert!(table.stdout.contains("username:    admin"), "{table:#?}");

    let alice = create_alice(&admin).await;
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "alice@example.com");

    let list = admin.json("user list", "").await;
    let users = list["users"].as_array().unwrap();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"alice") && names.contains(&"admin"),
        "{names:?}"
    );

    let shown = show_alice(&admin).await;
    assert_eq!(shown["id"], alice["id"]);
    assert_eq!(shown["email"], "alice@example.com");
    assert_eq!(shown["realm"], "local");
    assert_eq!(shown["is_admin"], false);
    assert_eq!(shown["locked"], false);
    assert_eq!(shown["two_factor_enrolled"], false);
    assert_eq!(shown["failed_login_count"], 0);

    // A bad email: exit code 1 and the error names the field, for people and for programs.
    let bad = "user create bob --password-stdin --email not-an-email";
    let run = admin.run(bad, "bob-password-1\n").await.fails(1, "email");
    assert!(run.stderr.starts_with("error: email: "), "{run:#?}");
    let run = admin
        .run(&format!("{bad} -o json"), "bob-password-1\n")
        .await;
    let err = run.fails(1, "email").json();
    assert_eq!(err["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(err["error"]["field"], "email");
    admin.run("user show bob", "").await.fails(1, "not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_lock_the_account_until_an_admin_unlocks_it() {
    let (server, admin) = with_alice().await;
    let alice = Shell::new(&server);
    for attempt in 1..=5 {
        let run = alice.login("alice", "", "wrong-password\n").await;
        let err = run.fails(1, "invalid username or password").json();
        assert_eq!(err["error"]["code"], "UNAUTHENTICATED");
        // Not even the locking attempt says so, nor does the right password after it.
        let locked = err["error"]["message"].as_str().unwrap().contains("locked");
        assert!(!locked, "attempt {attempt}: {err}");
    }
    alice
        .login("alice", "", ALICE)
        .await
        .fails(1, "invalid username or password");
    assert!(!alice.dir.path().join("credentials.json").exists());
    assert_eq!(show_alice(&admin).await["locked"], true);

    let run = admin.run("user unlock alice", "").await.ok();
    assert!(run.stdout.contains("unlocked user alice"), "{run:#?}");
    let shown = show_alice(&admin).await;
    assert_eq!(shown["locked"], false);
    assert_eq!(shown["failed_login_count"], 0);
    let login = alice.login("alice", "", ALICE).await.ok().json();
    assert_eq!(login["user"]["username"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_reset_is_answered_with_a_new_password_on_stdin() {
    let (server, admin) = with_alice().await;
    let force = "user update alice --force-password-reset true";
    assert_eq!(admin.json(force, "").await["force_password_reset"], true);

    let alice = Shell::new(&server);
    const NEW: &str = "alice-new-password-2\n";
    let login = alice
        .login("alice", "", &format!("{ALICE}{NEW}"))
        .await
        .ok()
        .json();
    assert_eq!(login["status"], "success");
    assert_eq!(login["user"]["force_password_reset"], false);
    let me = alice.json("whoami", "").await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["scope"], "full");

    let old = alice.login("alice", "", ALICE).await;
    old.fails(1, "invalid username or password");
    alice.login("alice", "", NEW).await.ok();
    assert_eq!(show_alice(&admin).await["force_password_reset"], false);

    // Without a line for the new password the change cannot be answered: a usage error.
    admin.json(force, "").await;
    let run = alice.login("alice", "", NEW).await;
    let err = run.fails(2, "stdin ended before the new password").json();
    assert_eq!(err["error"]["reason"], "usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_user_needs_a_totp_code() {
    let (server, admin) = with_alice().await;
    let alice = Shell::new(&server);
    alice.login("alice", "", ALICE).await.ok();

    let enrolment = alice.json("2fa enroll", "").await;
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Atrium:alice?") && uri.contains(&secret),
        "{uri}"
    );
    let wrong = wrong_totp(&secret);
    let run = alice.run(&format!("2fa confirm {wrong}"), "").await;
    run.fails(1, "code: does not match");
    let confirmed = alice
        .json(&format!("2fa confirm {}", totp(&secret, 0)), "")
        .await;
    assert_eq!(confirmed["two_factor_enrolled"], true);
    assert_eq!(show_alice(&admin).await["two_factor_enrolled"], true);

    // Only the password on stdin: the code is asked for, and stdin has ended.
    let run = alice.login("alice", "", ALICE).await;
    run.fails(2, "stdin ended before the TOTP code was given");
    // The next step's code (allowed as clock drift) is one the confirmation did not use.
    let next = totp(&secret, 1);
    let login = alice
        .login("alice", &format!("--totp-code {next}"), ALICE)
        .await;
    let login = login.ok().json();
    assert_eq!(login["status"], "success");
    assert_eq!(login["user"]["two_factor_enrolled"], true);
    let run = alice
        .login("alice", &format!("--totp-code {wrong}"), ALICE)
        .await;
    let err = run.fails(1, "invalid two-factor code").json();
    assert_eq!(err["error"]["code"], "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_walks_an_unenrolled_user_through_enrolment() {
    // Policy (a fake here) says alice needs 2FA; the plain CLI asks for nothing special, and
    // the server sends her to enrolment all the same.
    let (server, policy, _policy) =
        atrium_identity::testing::fake_policy::start_identity_with_policy(Backend::Sqlite, |_| {})
            .await
            .unwrap();
    let admin = Shell::new(&server);
    admin
        .login("admin", "", &format!("{ADMIN_PASSWORD}\n"))
        .await
        .ok();
    let created = create_alice(&admin).await;
    let alice_id = created["id"].as_str().expect("alice's id").to_owned();
    policy.update(&alice_id, |u| u.require_2fa = true);
    let alice = Shell::new(&server);
    let args = "login -u alice --password-stdin -o json";
    let mut child = alice.spawn(args);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    stdin.write_all(ALICE.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();

    // The secret is printed before the code is asked for; answer with a code for it.
    let enrolment: Value = serde_json::from_str(&next_line(&mut stdout).await).unwrap();
    let enrolment = &enrolment["totp_enrollment"];
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&secret),
        "{uri}"
    );
    let code = format!("{}\n", totp(&secret, 0));
    stdin.write_all(code.as_bytes()).await.unwrap();
    drop(stdin);

    let line = next_line(&mut stdout).await;
    let status = tokio::time::timeout(RUN_TIMEOUT, child.wait()).await;
    let status = status.expect("atrium timed out").unwrap();
    assert!(status.success(), "{status:?}; last line {line}");
    let login: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(login["status"], "success");
    assert_eq!(login["user"]["username"], "alice");
    assert_eq!(login["user"]["two_factor_enrolled"], true);

    let me = alice.json("whoami", "").await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["scope"], "full");
    assert_eq!(show_alice(&admin).await["two_factor_enrolled"], true);
    // From now on the code is required.
    alice.login("alice", "", ALICE).await.fails(2, "TOTP code");
    let next = totp(&secret, 1);
    alice
        .login("alice", &format!("--totp-code {next}"), ALICE)
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_carry_their_permissions_until_revoked() {
    let (server, admin) = with_alice().await;
    let created = admin
        .json("apikey create bot --permission users.view", "")
        .await;
    let id = created["api_key"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(created["api_key"]["name"], "bot");
    assert_eq!(created["api_key"]["permissions"], json!(["users.view"]));
    assert_eq!(created["authorization"], format!("ApiKey {id}:{secret}"));
    let key = format!("--api-key {id}:{secret}");

    // A shell with no login of its own: only the key authenticates it.
    let bot = Shell::new(&server);
    let me = bot.json(&format!("whoami {key}"), "").await;
    assert_eq!(me["kind"], "api_key");
    assert_eq!(me["api_key_id"], id.as_str());
    assert_eq!(me["permissions"], json!(["users.view"]));
    let list = bot.json(&format!("user list {key}"), "").await;
    let users = list["users"].as_array().unwrap();
    assert!(users.iter().any(|u| u["username"] == "alice"), "{list}");
    let create = format!("user create mallory --password-stdin {key} -o json");
    let err = bot
        .run(&create, "mallory-password\n")
        .await
        .fails(1, "users.create")
        .json();
    assert_eq!(err["error"]["code"], "PERMISSION_DENIED", "{err}");

    let revoked = admin.json(&format!("apikey revoke {id}"), "").await;
    assert_eq!(revoked["revoked"], true);
    let listed = admin.json("apikey list", "").await;
    assert!(
        listed["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != id.as_str())
    );
    let listed = admin.json("apikey list --include-revoked", "").await;
    assert!(
        listed["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );

    let run = bot.run(&format!("user list {key} -o json"), "").await;
    let err = run.fails(1, "revoked").json();
    assert_eq!(err["error"]["code"], "UNAUTHENTICATED", "{err}");
}

#[tokio::test]
async fn up_refuses_a_metrics_base_port_without_room_and_creates_nothing() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_atrium"))
        .args(["up", "--metrics-base-port", "65533", "--data-dir"])
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The gateway is BASE+6, the highest.
    assert!(
        stderr.contains("--metrics-base-port: at most 65529 (the gateway's is BASE+6)"),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing is created for a refused start");
}
