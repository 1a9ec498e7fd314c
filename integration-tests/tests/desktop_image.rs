//! End to end: build the desktop image with the function behind `atrium image build-desktop`
//! (the first run debootstraps for a few minutes; later runs find the image by its recipe hash
//! and take no time), run it with exactly the hardening the agent gives session containers, and
//! check Kasm's protocol: the noVNC page and websockify's WebSocket answer only with basic auth
//! `kasm_user:$VNC_PW`, and the WebSocket carries the VNC server's RFB handshake. Runs only with
//! `ATRIUM_TEST_DOCKER=1`; building needs root and debootstrap (scripts/test installs it).

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use atrium_agent::config::HardeningConfig;
use atrium_desktop::{BuildOptions, DEFAULT_TAG, RECIPE_LABEL, build_image};
use atrium_workspace::client::{USER, connect_tls, get};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt as _;
use http::StatusCode;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// The workspace memory the agent would give it (Kasm's default for desktops).
const MEMORY_MIB: u64 = 2768;

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker").args(args).output()?;
    if !output.status.success() {
        anyhow::bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Removes the container however the test ends; the image stays, as the build cache.
struct Cleanup(Option<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(container) = &self.0 {
            if std::thread::panicking()
                && let Ok(logs) = Command::new("docker").args(["logs", container]).output()
            {
                eprintln!(
                    "container logs:\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            let _ = docker(&["rm", "--force", container]);
        }
    }
}

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// `docker run` options for the agent's default hardening, as services/agent's spec builds
/// them: every capability dropped and the configured few added back, no-new-privileges, the
/// pids limit, the /dev/shm size, memory without extra swap; read-write root file system.
fn hardened_run_args(h: &HardeningConfig) -> Vec<String> {
    let mut args = vec!["--cap-drop".to_owned(), "ALL".to_owned()];
    for cap in &h.cap_add {
        args.extend(["--cap-add".to_owned(), cap.clone()]);
    }
    args.extend([
        "--security-opt".to_owned(),
        "no-new-privileges".to_owned(),
        "--pids-limit".to_owned(),
        h.pids_limit.to_string(),
        "--shm-size".to_owned(),
        format!("{}m", h.shm_size_mib),
        "--memory".to_owned(),
        format!("{MEMORY_MIB}m"),
        "--memory-swap".to_owned(),
        format!("{MEMORY_MIB}m"),
    ]);
    args
}

fn published_port(container: &str) -> SocketAddr {
    let answer = docker(&["port", container, "6901/tcp"]).expect("docker port");
    let first = answer.lines().next().unwrap_or_default();
    first.parse().expect("docker port answers HOST:PORT")
}

/// Waits until the page answers 200 with the right credentials: Xvnc's display is up by then
/// (the entrypoint starts websockify after it).
async fn wait_ready(addr: SocketAddr, password: &str) -> Duration {
    let started = Instant::now();
    loop {
        match get(addr, "/", Some((USER, password))).await {
            Ok(reply) if reply.status == StatusCode::OK => return started.elapsed(),
            other if started.elapsed() > Duration::from_secs(60) => {
                panic!("not ready in 60s: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Opens `wss://addr/websockify`, with basic auth when given; the server's first message on
/// success, the HTTP status it refused with otherwise.
async fn websocket_first_message(
    addr: SocketAddr,
    auth: Option<(&str, &str)>,
) -> Result<Message, StatusCode> {
    let tls = connect_tls(addr).await.expect("tls connection");
    let mut request = format!("wss://localhost:{}/websockify", addr.port())
        .into_client_request()
        .expect("request");
    if let Some((user, password)) = auth {
        let value = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            value.parse().expect("header value"),
        );
    }
    match tokio_tungstenite::client_async(request, tls).await {
        Ok((mut socket, response)) => {
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("a first message within 10s")
                .expect("the socket stays open")
                .expect("a message");
            Ok(first)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
        Err(e) => panic!("websocket handshake failed otherwise: {e}"),
    }
}

#[tokio::test]
async fn desktop_image_speaks_kasm_protocol_under_the_agents_hardening() {
    if !atrium_service_kit::testing::docker_enabled("desktop_image_speaks_kasm_protocol") {
        return;
    }
    let build_started = Instant::now();
    let built = tokio::task::spawn_blocking(|| {
        build_image(&BuildOptions::new(DEFAULT_TAG), &mut |line| {
            println!("build: {line}")
        })
    })
    .await
    .expect("join")
    .expect("build the desktop image");
    println!(
        "desktop image {} ({} MiB) {} in {:?}",
        built.id,
        built.size_bytes >> 20,
        if built.cached { "found" } else { "built" },
        build_started.elapsed()
    );
    let config = docker(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{RECIPE_LABEL}\"}}}} {{{{.Config.User}}}}"),
        DEFAULT_TAG,
    ])
    .expect("inspect");
    assert_eq!(config, format!("{} 1000:1000", built.recipe_hash));

    // The same recipe again is found, not built.
    let again = tokio::task::spawn_blocking(|| {
        let started = Instant::now();
        let image = build_image(&BuildOptions::new(DEFAULT_TAG), &mut |_| {});
        (image, started.elapsed())
    })
    .await
    .expect("join");
    let (again, took) = (again.0.expect("second build"), again.1);
    assert!(
        again.cached,
        "the second build was not taken from the cache"
    );
    assert_eq!(again.id, built.id);
    assert!(
        took < Duration::from_secs(10),
        "the cached build took {took:?}"
    );

    // Without VNC_PW it refuses to start and says why.
    let refused = Command::new("docker")
        .args(["run", "--rm", DEFAULT_TAG])
        .output()
        .expect("docker run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("VNC_PW is empty or unset"));

    let password = random(24);
    let mut args: Vec<String> = vec!["run".into(), "--detach".into()];
    args.extend(hardened_run_args(&HardeningConfig::default()));
    args.extend([
        "--env".into(),
        format!("VNC_PW={password}"),
        "--publish".into(),
        "127.0.0.1::6901".into(),
        DEFAULT_TAG.into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let container = docker(&args).expect("docker run");
    let _cleanup = Cleanup(Some(container.clone()));
    let hardening = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.ReadonlyRootfs}}",
        &container,
    ])
    .expect("inspect");
    assert_eq!(hardening, "[ALL] [no-new-privileges] false");
    let addr = published_port(&container);
    let ready = wait_ready(addr, &password).await;
    println!("ready (page answers 200 with auth) {ready:?} after docker run returned");

    // The page: 401 without credentials or with a wrong password, noVNC with the right ones.
    let anonymous = get(addr, "/", None).await.expect("get /");
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .headers
            .get(http::header::WWW_AUTHENTICATE)
            .is_some_and(|v| v.to_str().is_ok_and(|v| v.starts_with("Basic"))),
        "{:?}",
        anonymous.headers
    );
    let wrong = get(addr, "/", Some((USER, "not-it"))).await.expect("get /");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let other_user = get(addr, "/", Some(("admin", &password)))
        .await
        .expect("get /");
    assert_eq!(other_user.status, StatusCode::UNAUTHORIZED);
    for path in ["/vnc.html", "/core/rfb.js"] {
        let hidden = get(addr, path, None).await.expect("get");
        assert_eq!(hidden.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let auth = Some((USER, password.as_str()));
    let index = get(addr, "/", auth).await.expect("get /");
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.body.contains("vnc.html"), "{}", index.body);
    let page = get(addr, "/vnc.html", auth).await.expect("get /vnc.html");
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<title>noVNC</title>"),
        "not noVNC's page"
    );

    // The WebSocket: refused without auth and with a wrong password; with auth, the first
    // binary frame is the VNC server's protocol version.
    assert_eq!(
        websocket_first_message(addr, None).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        websocket_first_message(addr, Some((USER, "not-it")))
            .await
            .err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let first = websocket_first_message(addr, auth)
        .await
        .expect("the websocket opens with auth");
    assert_eq!(first, Message::Binary(b"RFB 003.008\n".to_vec().into()));

    // Everything runs as uid 1000 in the session user's home.
    let who = docker(&["exec", &container, "sh", "-c", "id -u; echo $HOME; pwd"]).expect("exec");
    assert_eq!(who, "1000\n/home/kasm-user\n/home/kasm-user");

    // SIGTERM stops it promptly and cleanly.
    let started = Instant::now();
    docker(&["stop", "--time", "10", &container]).expect("docker stop");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    let exit =
        docker(&["inspect", "--format", "{{.State.ExitCode}}", &container]).expect("inspect");
    assert_eq!(exit, "0");
}
