//! `atrium up` end to end: the real binary, on free ports and a fresh data directory. Every
//! port speaks TLS with the local CA it makes (plaintext is refused), the CLI trusts that CA
//! without being told when ATRIUM_DATA_DIR names the directory, the administrator it prints
//! logs in, and `atrium agent status`, `atrium session list` and `atrium usage rate list` work
//! with that login (no service secret involved). The gateway on loopback speaks plain HTTP: the
//! banner names it first, it serves the OpenAPI document, the printed password logs in there,
//! and the demo workspace is in the catalogue for All Users (its image built when Docker is
//! part of the test run, `ATRIUM_TEST_DOCKER=1`; without, `atrium up` is pointed at a Docker
//! that does not answer and says so).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use atrium_service_kit::client::Dialer;
use atrium_service_kit::tls::ClientTls;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// `count` ports that were free a moment ago (bound on port 0, then released).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A metrics base port whose BASE+1 to +6 are free.
fn free_metrics_base() -> u16 {
    for _ in 0..50 {
        let base = free_ports(1)[0];
        if base > u16::MAX - 6 {
            continue;
        }
        let all_free = [1, 2, 3, 4, 5, 6]
            .iter()
            .all(|off| std::net::TcpListener::bind(("127.0.0.1", base + off)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free metrics ports");
}

fn docker() -> bool {
    std::env::var("ATRIUM_TEST_DOCKER").as_deref() == Ok("1")
}

struct Up {
    child: Child,
    password: String,
    /// What it printed on stdout up to "Stop with Ctrl-C".
    banner: String,
}

/// Starts `atrium up`; `Err` (with what it said) when it exits before printing its banner,
/// e.g. because another test took one of the ports meanwhile.
async fn start(data: &Path, ports: &[u16], metrics_base: u16) -> Result<Up, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_atrium"));
    command.arg("up");
    if !docker() {
        // Not the machine's Docker: no demo image build in a run without Docker tests.
        command.args([
            "--docker-host",
            "unix:///nonexistent/atrium-test/docker.sock",
        ]);
    }
    let mut child = command
        .arg("--data-dir")
        .arg(data)
        .args(["--identity-port", &ports[0].to_string()])
        .args(["--policy-port", &ports[1].to_string()])
        .args(["--session-manager-port", &ports[2].to_string()])
        .args(["--agent-port", &ports[3].to_string()])
        .args(["--billing-usage-port", &ports[4].to_string()])
        .args(["--gateway-port", &ports[5].to_string()])
        .args(["--metrics-base-port", &metrics_base.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn atrium up");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    // With Docker, a missing demo image is built first (a release build of atrium-workspace).
    let wait = Duration::from_secs(if docker() { 1200 } else { 120 });
    let deadline = Instant::now() + wait;
    let mut banner = String::new();
    let mut password = None;
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("atrium up printed no banner in time")
            .unwrap();
        let Some(line) = line else {
            let mut said = String::new();
            let _ = stderr.read_to_string(&mut said).await;
            return Err(said);
        };
        banner.push_str(&line);
        banner.push('\n');
        if let Some((_, printed)) = line.split_once("with password:") {
            password = Some(printed.trim().to_owned());
        }
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    let password = password.unwrap_or_else(|| panic!("no password in the banner:\n{banner}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    tokio::spawn(async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await });
    Ok(Up {
        child,
        password,
        banner,
    })
}

/// One HTTP/1.1 exchange in plain text: (status, head, body). Chunked bodies are joined.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the gateway answered in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

async fn health(dialer: &Dialer, url: &str) -> Result<i32, String> {
    let channel = dialer.connect(url).await.map_err(|e| format!("{e:#}"))?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    client
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .map(|r| r.into_inner().status)
        .map_err(|s| s.to_string())
}

/// Runs the CLI with `ATRIUM_DATA_DIR` (and no --ca), answering with `stdin`.
async fn cli(data: &Path, config: &Path, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atrium"))
        .args(args)
        .env("ATRIUM_DATA_DIR", data)
        .env("ATRIUM_CONFIG_DIR", config)
        .env_remove("ATRIUM_CA")
        .env_remove("ATRIUM_ENDPOINT")
        .env_remove("ATRIUM_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("atrium timed out")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The banner leads with the gateway; the gateway serves its OpenAPI document, logs the
/// administrator in with the printed password (cookies for a browser, tokens for a program)
/// and lists the demo workspace, launchable by All Users (the administrator among them).
async fn gateway_answers(up: &Up, port: u16) {
    let url = format!("http://127.0.0.1:{port}");
    // The services log to stdout too: the banner is what follows, the gateway before the rest.
    let open = up.banner.find(&format!("Open {url}/ in your browser"));
    let rest = ["with password:", "gRPC services", "identity "].map(|t| up.banner.find(t));
    assert!(
        open.is_some() && rest.iter().all(|at| at.is_some_and(|at| Some(at) > open)),
        "the banner does not lead with the gateway:\n{}",
        up.banner
    );
    for named in [
        format!("{url}/api/v1/openapi.json"),
        format!("{url}/api/public"),
        "Demo workspace".to_owned(),
    ] {
        assert!(
            up.banner.contains(&named),
            "{named} is not in the banner:\n{}",
            up.banner
        );
    }
    if docker() {
        assert!(!up.banner.contains("is not available"), "{}", up.banner);
    } else {
        assert!(up.banner.contains("is not available"), "{}", up.banner);
    }

    let (status, _, body) = http(port, "GET", "/api/v1/openapi.json", &[], "").await;
    assert_eq!(status, 200, "openapi.json: {body}");
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{document}"
    );

    let credentials = serde_json::json!({"username": "admin", "password": up.password}).to_string();
    let json = ["Content-Type: application/json"];
    let (status, head, body) = http(port, "POST", "/api/v1/login", &json, &credentials).await;
    assert_eq!(status, 200, "login with the printed password: {body}");
    assert!(
        head.to_ascii_lowercase().contains("set-cookie:"),
        "no cookie: {head}"
    );
    assert!(
        !body.contains("access_token\":\"ey"),
        "a browser's login answered a token: {body}"
    );

    let (status, _, body) = http(
        port,
        "POST",
        "/api/v1/login?cookie=false",
        &json,
        &credentials,
    )
    .await;
    assert_eq!(status, 200, "login for a token: {body}");
    let login: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Authorization: Bearer {token}");
    for path in ["/api/v1/workspaces", "/api/v1/me/workspaces"] {
        let (status, _, body) = http(port, "GET", path, &[&bearer], "").await;
        assert_eq!(status, 200, "{path}: {body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let demo: Vec<_> = list["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["name"] == "atrium/workspace-demo:latest")
            .collect();
        assert_eq!(demo.len(), 1, "{path}: {body}");
        assert_eq!(demo[0]["friendly_name"], "Demo workspace", "{body}");
        // The Desktop workspace comes with its image only (`atrium image build-desktop`, which
        // the desktop image test may have run on this Docker engine): what the banner says.
        let desktop = list["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| {
                w["name"] == "atrium/workspace-desktop:latest" && w["friendly_name"] == "Desktop"
            })
            .count();
        let announced = up.banner.contains("Created the workspace \"Desktop\"");
        assert_eq!(
            desktop,
            usize::from(announced),
            "{path}: {body}\n{}",
            up.banner
        );
        if !docker() {
            assert!(
                !announced,
                "a Desktop workspace without Docker:\n{}",
                up.banner
            );
        }
    }
    if docker() {
        let present = std::process::Command::new("docker")
            .args(["image", "inspect", "atrium/workspace-demo:latest"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(present, "the demo image was not built");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_speaks_tls_everywhere_and_the_cli_trusts_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    // Free ports may be taken by a parallel test before `atrium up` binds them: try again on
    // fresh ones (and a fresh data directory) when it exits early.
    let mut attempt = 0;
    let (data, ports, metrics_base, mut up) = loop {
        attempt += 1;
        let data = dir.path().join(format!("data-{attempt}"));
        let ports = free_ports(6);
        let metrics_base = free_metrics_base();
        match start(&data, &ports, metrics_base).await {
            Ok(up) => break (data, ports, metrics_base, up),
            Err(said) if attempt < 3 => eprintln!("atrium up exited early, again: {said}"),
            Err(said) => panic!("atrium up exited three times; last: {said}"),
        }
    };
    let ca = data.join("tls").join("ca.pem");
    assert!(ca.exists(), "atrium up made no CA");

    let trusting = Dialer::trusting(&ca).unwrap();
    for port in &ports[..5] {
        let url = format!("https://127.0.0.1:{port}");
        // The agent may report NOT_SERVING without Docker; either way it answers over TLS.
        health(&trusting, &url)
            .await
            .unwrap_or_else(|e| panic!("{url} over TLS: {e}"));
        let plain = health(&Dialer::plaintext(), &format!("http://127.0.0.1:{port}")).await;
        assert!(plain.is_err(), "port {port} answered plaintext gRPC");
    }
    // Every role's /metrics, the gateway's included, is served over TLS.
    for offset in [1, 2, 3, 4, 5, 6] {
        let addr = SocketAddr::from(([127, 0, 0, 1], metrics_base + offset));
        let mut stream = ClientTls::http1(&ca)
            .unwrap()
            .connect("127.0.0.1", addr.port())
            .await
            .unwrap_or_else(|e| panic!("metrics {addr} over TLS: {e}"));
        stream
            .write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{addr}: {response}");
    }

    gateway_answers(&up, ports[5]).await;

    let endpoint = format!("https://127.0.0.1:{}", ports[0]);
    let policy = format!("https://127.0.0.1:{}", ports[1]);
    let sessions = format!("https://127.0.0.1:{}", ports[2]);
    let agent = format!("https://127.0.0.1:{}", ports[3]);
    let usage = format!("https://127.0.0.1:{}", ports[4]);
    let common = [
        "--endpoint",
        endpoint.as_str(),
        "--policy-endpoint",
        policy.as_str(),
        "--session-endpoint",
        sessions.as_str(),
        "--agent-endpoint",
        agent.as_str(),
        "--usage-endpoint",
        usage.as_str(),
    ];
    let mut login = vec!["login", "-u", "admin", "--password-stdin"];
    login.extend(common);
    let (code, out) = cli(&data, &config, &login, &format!("{}\n", up.password)).await;
    assert_eq!(code, 0, "login: {out}");
    let mut status = vec!["agent", "status"];
    status.extend(common);
    let (code, out) = cli(&data, &config, &status, "").await;
    assert_eq!(code, 0, "agent status with the admin's login: {out}");
    // The session-manager runs too, and takes the same login.
    let mut sessions_list = vec!["session", "list"];
    sessions_list.extend(common);
    let (code, out) = cli(&data, &config, &sessions_list, "").await;
    assert_eq!(code, 0, "session list with the admin's login: {out}");
    // So does billing-usage.
    let mut rates = vec!["usage", "rate", "list"];
    rates.extend(common);
    let (code, out) = cli(&data, &config, &rates, "").await;
    assert_eq!(code, 0, "usage rate list with the admin's login: {out}");

    // A user without agents.view is refused by the agent, with the same kind of login.
    let mut create = vec!["user", "create", "bob", "--password-stdin"];
    create.extend(common);
    let (code, out) = cli(&data, &config, &create, "bob-password-12\n").await;
    assert_eq!(code, 0, "create bob: {out}");
    let bob_config = dir.path().join("bob-config");
    let (code, out) = cli(
        &data,
        &bob_config,
        &{
            let mut v = vec!["login", "-u", "bob", "--password-stdin"];
            v.extend(common);
            v
        },
        "bob-password-12\n",
    )
    .await;
    assert_eq!(code, 0, "bob logs in: {out}");
    let (code, out) = cli(&data, &bob_config, &status, "").await;
    assert_ne!(code, 0, "bob without agents.view read the agent: {out}");
    assert!(out.contains("agents.view"), "{out}");

    // Without the data dir's CA the CLI refuses to guess, and says how to fix it.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut whoami = vec!["whoami"];
    whoami.extend(common);
    let (code, out) = cli(elsewhere.path(), &config, &whoami, "").await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("--ca"), "{out}");
    up.child.kill().await.ok();
}
