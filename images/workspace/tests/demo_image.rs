//! End to end: build the demo image with the same library function `atrium image build-demo`
//! uses, run it under Docker, and talk to it like Atrium would. Runs only with
//! `ATRIUM_TEST_DOCKER=1` (scripts/test sets it when Docker answers).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use atrium_workspace::client::{USER, get, send};
use atrium_workspace::{BinarySource, BuildOptions, build_image};
use http::{Method, StatusCode};
use rand::Rng as _;
use rand::distr::Alphanumeric;

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

/// Removes the container and the image however the test ends.
struct Cleanup {
    image: String,
    container: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(container) = &self.container {
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
        let _ = docker(&["image", "rm", "--force", &self.image]);
    }
}

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// The host address Docker published the container's 6901 on.
fn published_port(container: &str) -> SocketAddr {
    let answer = docker(&["port", container, "6901/tcp"]).expect("docker port");
    let first = answer.lines().next().unwrap_or_default();
    first.parse().expect("docker port answers HOST:PORT")
}

async fn wait_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match get(addr, "/healthz", None).await {
            Ok(reply) if reply.status == StatusCode::OK => return,
            other if Instant::now() > deadline => panic!("not healthy in 30s: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn demo_image_serves_https_when_docker_is_available() {
    if !atrium_service_kit::testing::docker_enabled("demo_image_serves_https") {
        return;
    }
    let suffix = random(10).to_lowercase();
    let tag = format!("atrium/workspace-demo:test-{suffix}");
    let password = random(24);
    let hostname = format!("atrium-demo-{suffix}");

    // The binary cargo built for this test run: no release build needed here.
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_atrium-workspace"));
    let options = BuildOptions::new(tag.clone(), BinarySource::Prebuilt(binary));
    let mut cleanup = Cleanup {
        image: tag.clone(),
        container: None,
    };
    let built = build_image(&options, &mut |line| println!("{line}")).expect("build the image");
    assert!(built.id.starts_with("sha256:"), "{built:?}");
    let label = docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"atrium.demo\"}} {{.Config.User}}",
        &tag,
    ])
    .expect("inspect");
    assert_eq!(label, "1 1000:1000");

    // Without VNC_PW it refuses to start and says why.
    let refused = Command::new("docker")
        .args(["run", "--rm", &tag])
        .output()
        .expect("docker run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("VNC_PW is empty or unset"));

    let container = docker(&[
        "run",
        "--detach",
        "--hostname",
        &hostname,
        "--env",
        &format!("VNC_PW={password}"),
        "--env",
        "ATRIUM_SESSION_ID=sess-e2e",
        "--publish",
        "127.0.0.1::6901",
        &tag,
    ])
    .expect("docker run");
    cleanup.container = Some(container.clone());
    let addr = published_port(&container);
    wait_healthy(addr).await;

    let anonymous = get(addr, "/", None).await.expect("get /");
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .headers
            .contains_key(http::header::WWW_AUTHENTICATE)
    );
    let wrong = get(addr, "/", Some((USER, "not-it"))).await.expect("get /");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let auth = Some((USER, password.as_str()));
    let page = get(addr, "/", auth).await.expect("get /");
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&hostname), "page lacks the hostname");
    assert!(page.body.contains("sess-e2e"), "page lacks the session id");
    assert!(
        page.body.contains("<td>1000</td>"),
        "not running as uid 1000"
    );

    let notes = format!("written by the e2e test {suffix}");
    let saved = send(addr, Method::POST, "/notes", auth, notes.clone())
        .await
        .expect("post notes");
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.body);
    assert_eq!(get(addr, "/notes", auth).await.expect("notes").body, notes);

    // SIGTERM stops it at once with exit code 0, and the notes are on disk.
    let started = Instant::now();
    docker(&["stop", "--time", "10", &container]).expect("docker stop");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    let exit =
        docker(&["inspect", "--format", "{{.State.ExitCode}}", &container]).expect("inspect");
    assert_eq!(exit, "0");
    docker(&["start", &container]).expect("docker start");
    let addr = published_port(&container);
    wait_healthy(addr).await;
    assert_eq!(get(addr, "/notes", auth).await.expect("notes").body, notes);
}
