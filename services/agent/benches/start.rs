//! Session start latency through the agent against a plain `docker run` of the same image in
//! the same run, and the agent's idle memory.
//!
//! `cargo bench -p atrium-agent --bench start` (needs Docker). Builds the demo workspace image
//! once from the release `atrium-workspace` (`cargo build --release`, as `atrium image
//! build-demo` does from a checkout), then alternates N times:
//! - agent: CreateSession over loopback gRPC (cores 1, 512 MiB, the hardened defaults) until
//!   `/healthz` answers 200 over HTTPS on the published port; RemoveSession (not timed);
//! - plain: `docker run -d -p 127.0.0.1::6901 -e VNC_PW=x <image>`, `docker port`, the same
//!   `/healthz` wait; `docker rm -f` (not timed).
//!
//! Then starts the release `atrium-agent` binary, leaves it idle for 5 s and reads its VmRSS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atrium_agent::runtime::docker::DockerRuntime;
use atrium_agent::testing::{TestAgent, new_session_id, session_spec, test_config};
use atrium_heartbeat::MemoryHeartbeats;
use atrium_proto::agent::v1 as pb;
use atrium_workspace::{BinarySource, BuildOptions, build_image};

const N: usize = 10;
const POLL: Duration = Duration::from_millis(20);

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes the image and every container the agent made, however the run ends.
struct Cleanup {
    image: String,
    agent_id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=atrium.agent_id={}", self.agent_id);
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker ps -aq --filter {filter} | xargs -r docker rm -f -v >/dev/null; \
                 docker image rm -f {} >/dev/null",
                self.image
            ))
            .status();
    }
}

/// One `GET /healthz` over HTTPS; true on a 200.
async fn healthy_once(addr: SocketAddr) -> bool {
    let probe = atrium_workspace::client::get(addr, "/healthz", None);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(reply)) if reply.status == http::StatusCode::OK
    )
}

async fn wait_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy_once(addr).await {
        assert!(Instant::now() < deadline, "{addr} not healthy in 30s");
        tokio::time::sleep(POLL).await;
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The release `atrium-agent` idle for 5 s: its VmRSS in KiB.
fn idle_rss_kib() -> u64 {
    let tls = atrium_service_kit::testing::tls_for(atrium_service_kit::auth::ServiceId::Agent);
    let mut child = Command::new(env!("CARGO_BIN_EXE_atrium-agent"))
        .env("ATRIUM_AGENT__TLS__CA", tls.ca.unwrap_or_default())
        .env("ATRIUM_AGENT__TLS__CERT", tls.cert.unwrap_or_default())
        .env("ATRIUM_AGENT__TLS__KEY", tls.key.unwrap_or_default())
        .args(["--set", "listen=127.0.0.1:0"])
        .args(["--set", "metrics_listen=127.0.0.1:0"])
        .args(["--set", "agent_id=bench-idle-rss"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start atrium-agent");
    std::thread::sleep(Duration::from_secs(5));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    let status = status.expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[tokio::main]
async fn main() {
    let config = test_config();
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let tag = format!("atrium/workspace-demo:bench-{suffix}");
    let _cleanup = Cleanup {
        image: tag.clone(),
        agent_id: config.agent_id.clone().unwrap(),
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root");
    let options = BuildOptions::new(
        tag.clone(),
        BinarySource::Cargo {
            workspace_root: root,
        },
    );
    let built = tokio::task::spawn_blocking(move || build_image(&options, &mut |_| {}))
        .await
        .unwrap()
        .expect("build the demo image");
    println!(
        "image {} from {} ({:.1} MiB)",
        built.tag,
        built.binary.display(),
        built.size_bytes as f64 / 1048576.0
    );

    let runtime = Arc::new(
        DockerRuntime::connect(&config.docker_host, None, Duration::from_secs(30)).unwrap(),
    );
    let agent = TestAgent::start(config, runtime, Arc::new(MemoryHeartbeats::new()))
        .await
        .expect("start the agent");
    let mut client = agent.service().await.unwrap();

    let mut through_agent = Vec::with_capacity(N);
    let mut plain = Vec::with_capacity(N);
    // Alternate the two so that machine noise hits both alike.
    for _ in 0..N {
        let session_id = new_session_id();
        let spec = pb::SessionSpec {
            cores: 1.0,
            memory_mib: 512,
            ..session_spec(&session_id, &tag)
        };
        let start = Instant::now();
        let created = client
            .create_session(pb::CreateSessionRequest { spec: Some(spec) })
            .await
            .expect("create session")
            .into_inner();
        let addr: SocketAddr = format!("{}:{}", created.host, created.port)
            .parse()
            .unwrap();
        wait_healthy(addr).await;
        through_agent.push(start.elapsed());
        client
            .remove_session(pb::SessionRef { session_id })
            .await
            .expect("remove session");

        let start = Instant::now();
        let container = docker(&["run", "-d", "-p", "127.0.0.1::6901", "-e", "VNC_PW=x", &tag]);
        let port = docker(&["port", &container, "6901/tcp"]);
        let addr: SocketAddr = port.lines().next().unwrap().parse().unwrap();
        wait_healthy(addr).await;
        plain.push(start.elapsed());
        docker(&["rm", "-f", "-v", &container]);
    }
    agent.stop().await.unwrap();

    let (a50, a90) = (
        percentile(&mut through_agent, 0.5),
        percentile(&mut through_agent, 0.9),
    );
    let (p50, p90) = (percentile(&mut plain, 0.5), percentile(&mut plain, 0.9));
    println!("session start until /healthz answers, {N} of each, alternated:");
    println!(
        "  plain docker run  p50 {:8.1} ms  p90 {:8.1} ms",
        ms(p50),
        ms(p90)
    );
    println!(
        "  agent Create      p50 {:8.1} ms  p90 {:8.1} ms",
        ms(a50),
        ms(a90)
    );
    println!(
        "  ratio agent/plain p50 {:.3}  p90 {:.3}  (goal p50 <= 1.05)",
        a50.as_secs_f64() / p50.as_secs_f64(),
        a90.as_secs_f64() / p90.as_secs_f64()
    );
    let rss = tokio::task::spawn_blocking(idle_rss_kib).await.unwrap();
    println!(
        "idle atrium-agent (release, 5 s, no Redis): VmRSS {:.1} MiB",
        rss as f64 / 1024.0
    );
}
