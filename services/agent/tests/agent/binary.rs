//! The `atrium-agent` binary: configuration dump, SIGTERM drains (then exits at the deadline
//! or when empty), SIGINT stops at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn agent_command() -> Command {
    let tls = atrium_service_kit::testing::tls_for(atrium_service_kit::auth::ServiceId::Agent);
    let mut command = Command::new(env!("CARGO_BIN_EXE_atrium-agent"));
    command
        .env("ATRIUM_AGENT__TLS__CA", tls.ca.unwrap_or_default())
        .env("ATRIUM_AGENT__TLS__CERT", tls.cert.unwrap_or_default())
        .env("ATRIUM_AGENT__TLS__KEY", tls.key.unwrap_or_default())
        .env(
            "ATRIUM_AGENT__REDIS_URL",
            "redis://user:hunter2@127.0.0.1:1/",
        )
        .args(["--set", "listen=127.0.0.1:0"])
        .args(["--set", "metrics_listen=127.0.0.1:0"])
        .args(["--set", "agent_id=binary-test"])
        // No engine: the agent runs unhealthy, and a drain cannot see its containers, so it
        // ends at the deadline.
        .args(["--set", "docker_host=unix:///nonexistent/docker.sock"])
        .args(["--set", "drain_deadline_secs=2"]);
    command
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Waits for the child to exit; its exit status and how long that took.
fn wait(child: &mut Child, timeout: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, start.elapsed());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("atrium-agent did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn() -> Child {
    let child = agent_command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start atrium-agent");
    // Long enough to install its signal handlers and serve.
    std::thread::sleep(Duration::from_millis(1500));
    child
}

#[test]
fn dump_config_redacts_secrets() {
    let out = agent_command().arg("--dump-config").output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["redis_url"], "[redacted]");
    assert!(!text.contains("hunter2"));
    assert!(
        json["tls"]["cert"]
            .as_str()
            .is_some_and(|p| p.ends_with("agent.pem"))
    );
    assert_eq!(json["heartbeat_interval_secs"], 5);
    assert_eq!(json["agent_id"], "binary-test");
}

#[test]
fn sigterm_drains_then_exits_at_the_deadline() {
    let mut child = spawn();
    assert!(
        child.try_wait().expect("poll").is_none(),
        "agent is running"
    );
    signal(&child, "TERM");
    let (status, took) = wait(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "drained for the deadline, took {took:?}"
    );
}

#[test]
fn sigint_stops_at_once() {
    let mut child = spawn();
    signal(&child, "INT");
    let (status, took) = wait(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
