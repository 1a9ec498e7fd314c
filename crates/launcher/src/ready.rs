//! Waiting for roles to be ready: each asked `grpc.health.v1.Health/Check` over TLS (trusting
//! the launch's CA) until it answers SERVING, while watching that none stops meanwhile.

use std::time::Duration;

use anyhow::Context as _;
use atrium_service_kit::client::Dialer;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::role::Role;
use crate::running::Running;

/// What `role`'s health check says for the server as a whole.
pub(crate) async fn check(dialer: &Dialer, endpoint: &str) -> anyhow::Result<ServingStatus> {
    let channel = dialer.connect(endpoint).await?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .context("health check")?;
    Ok(answer.into_inner().status())
}

/// The gateway's `/healthz` over HTTP (or HTTPS trusting the launch's CA): SERVING on 200.
pub(crate) async fn http_health(
    ca: &std::path::Path,
    endpoint: &str,
) -> anyhow::Result<ServingStatus> {
    let url = url::Url::parse(endpoint).context("gateway endpoint")?;
    let host = url
        .host_str()
        .context("gateway endpoint has no host")?
        .to_owned();
    let port = url
        .port_or_known_default()
        .context("gateway endpoint has no port")?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = match url.scheme() {
        "https" => {
            let tls = atrium_service_kit::tls::ClientTls::http1(ca)?;
            let stream = tls.connect(&host, port).await?;
            exchange(stream, &request).await?
        }
        _ => {
            exchange(
                tokio::net::TcpStream::connect((host.as_str(), port)).await?,
                &request,
            )
            .await?
        }
    };
    Ok(if answer.starts_with("HTTP/1.1 200") {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    })
}

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await??;
    Ok(String::from_utf8_lossy(&buffer[..n]).into_owned())
}

/// How long an agent gets to report SERVING before start-up goes on without its container
/// engine (its first heartbeat checks Docker at once).
const AGENT_GRACE: Duration = Duration::from_secs(3);

/// Polls `role` until it is ready: SERVING, or for the agent without `wait_for_docker`, any
/// answer after [`AGENT_GRACE`] (its health follows Docker, which `atrium up` does not
/// require).
async fn until_ready(
    dialer: &Dialer,
    ca: &std::path::Path,
    role: Role,
    endpoint: &str,
    wait_for_docker: bool,
) {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let answer = match role {
            Role::Gateway => http_health(ca, endpoint).await,
            _ => check(dialer, endpoint).await,
        };
        match answer {
            Ok(ServingStatus::Serving) => return,
            Ok(_) if role == Role::Agent && !wait_for_docker && started.elapsed() > AGENT_GRACE => {
                tracing::warn!(%role, "the agent's container engine does not answer (yet)");
                return;
            }
            Ok(status) => tracing::debug!(%role, ?status, "not serving yet"),
            Err(e) => tracing::debug!(%role, error = %format!("{e:#}"), "not answering yet"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Returns `running` once every role it started is ready, or stops them all and fails: when a
/// role stops meanwhile (its error), or when `timeout` passes.
pub(crate) async fn wait(
    mut running: Running,
    timeout: Duration,
    wait_for_docker: bool,
) -> anyhow::Result<Running> {
    let dialer = Dialer::trusting(running.ca_path())?.request_timeout(Duration::from_secs(5));
    let ca = running.ca_path().to_owned();
    let targets: Vec<(Role, String)> = running
        .roles()
        .iter()
        .filter_map(|role| Some((*role, running.endpoint(*role)?)))
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    let all_ready = async {
        for (role, endpoint) in &targets {
            let ready = until_ready(&dialer, &ca, *role, endpoint, wait_for_docker);
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                anyhow::bail!("{role} did not report SERVING within {timeout:?}");
            }
            tracing::debug!(%role, %endpoint, "ready");
        }
        anyhow::Ok(())
    };
    let outcome = tokio::select! {
        ready = all_ready => match ready {
            Ok(()) => return Ok(running),
            Err(e) => Err(e),
        },
        exit = running.next_exit() => match exit {
            Some(exit) => Err(exit.into_error().context("a role stopped during start-up")),
            None => Err(anyhow::anyhow!("every role stopped during start-up")),
        },
    };
    let stopped = running.stop().await;
    if let Err(e) = stopped {
        tracing::warn!(error = %format!("{e:#}"), "stopping after a failed start-up");
    }
    outcome
}
