//! The gRPC server every service runs: bound early, with `grpc.health.v1`, reflection, request
//! spans joined to the caller's trace, the auth layer, and shutdown under a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use std::sync::Arc;

use tower::ServiceBuilder;

use tower::limit::GlobalConcurrencyLimitLayer;

use crate::auth::AuthLayer;
use crate::metrics::{self, Metrics};
use crate::shutdown::Shutdown;
use crate::telemetry::extract_context;
use crate::tls::ServerTls;

/// Binds the service's port now, so a taken port fails start-up at once.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))
}

/// A gRPC server being assembled.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: HealthReporter,
    metrics: Metrics,
}

/// How a server is exposed: TLS, limits and the shutdown deadline.
#[derive(Clone)]
pub struct ServeOptions {
    /// `None` only under `tls.insecure_plaintext`.
    pub tls: Option<ServerTls>,
    /// Calls in progress at once across all connections; more wait for a slot.
    pub concurrency_limit: usize,
    /// A call that has not answered by then fails with `Cancelled`/`DeadlineExceeded`
    /// (server streams: the limit covers the wait for the stream to start).
    pub request_timeout: Duration,
    /// How long in-flight calls get after shutdown begins.
    pub shutdown_deadline: Duration,
}

impl ServeOptions {
    pub fn new(tls: Option<ServerTls>, shutdown_deadline: Duration) -> Self {
        Self {
            tls,
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_deadline,
        }
    }
}

pub const DEFAULT_CONCURRENCY_LIMIT: usize = 1024;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn reflection_builder(served: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(atrium_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for name in served {
        builder = builder.with_service_name(*name);
    }
    builder
}

impl GrpcServer {
    /// Health and reflection are registered already; reflection lists `served` (the full names
    /// of the services this port will serve) and health, nothing else.
    pub fn new(served: &[&str]) -> anyhow::Result<Self> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let reflection_v1 = reflection_builder(served)
            .build_v1()
            .context("build reflection service")?;
        let reflection_v1alpha = reflection_builder(served)
            .build_v1alpha()
            .context("build reflection service")?;
        let mut routes = RoutesBuilder::default();
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        Ok(Self {
            routes,
            health,
            metrics: Metrics::new(),
        })
    }

    /// The health reporter: services mark themselves SERVING once their dependencies answer.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    pub fn routes_mut(&mut self) -> &mut RoutesBuilder {
        &mut self.routes
    }

    /// The metrics registry, for a service's own metrics (gRPC call metrics are built in).
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// Serves until `shutdown` fires, then stops accepting, lets in-flight calls finish, and
    /// gives up on them after `deadline`. With `metrics`, serves `/metrics` there too.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        auth: AuthLayer,
        options: ServeOptions,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let deadline = options.shutdown_deadline;
        let metrics_layer = self.metrics.layer();
        let exporter = metrics.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                let scheme = if options.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                tracing::info!(%addr, "metrics at {scheme}://{addr}/metrics");
            }
            tokio::spawn(metrics::serve(
                listener,
                options.tls.clone(),
                Arc::new(self.metrics),
                shutdown.clone(),
            ))
        });
        let incoming = crate::tls::incoming(listener, options.tls.clone());
        let health = self.health.clone();
        let stopping = shutdown.clone();
        let server = Server::builder()
            .trace_fn(request_span)
            .timeout(options.request_timeout)
            // Metrics outermost, so calls the auth layer refuses (or that wait for a slot) are
            // counted too; the limit before authentication, so a flood of API-key checks waits.
            .layer(
                ServiceBuilder::new()
                    .layer(metrics_layer)
                    .layer(GlobalConcurrencyLimitLayer::new(options.concurrency_limit))
                    .layer(auth),
            )
            .add_routes(self.routes.routes())
            .serve_with_incoming_shutdown(incoming, async move {
                stopping.wait().await;
                health
                    .set_not_serving::<tonic_health::pb::health_server::HealthServer<
                        tonic_health::server::HealthService,
                    >>()
                    .await;
            });
        tokio::pin!(server);
        let served = tokio::select! {
            result = &mut server => result.context("serve gRPC"),
            _ = async { shutdown.wait().await; tokio::time::sleep(deadline).await } => {
                tracing::warn!(?deadline, "in-flight calls did not finish before the shutdown deadline");
                Ok(())
            }
        };
        if let Some(task) = exporter {
            task.abort();
        }
        served
    }
}

/// How often services check the dependencies their health reports on (the database).
pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps `service`'s health (and the server's overall status, "") SERVING while `probe` answers
/// within `interval`, and NOT_SERVING otherwise. The first check runs before this returns (so a
/// server starts with a true status); then a task checks every `interval` until `shutdown`.
/// Transitions are logged, once each.
pub async fn watch_health<P, Fut>(
    health: HealthReporter,
    service: &'static str,
    interval: Duration,
    shutdown: Shutdown,
    mut probe: P,
) -> tokio::task::JoinHandle<()>
where
    P: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let mut last = None;
    check_health(&health, service, interval, &mut probe, &mut last).await;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            check_health(&health, service, interval, &mut probe, &mut last).await;
        }
    })
}

/// [`watch_health`] on a database: SERVING while it answers a ping.
pub async fn watch_database(
    health: HealthReporter,
    service: &'static str,
    db: sea_orm::DatabaseConnection,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    watch_health(
        health,
        service,
        HEALTH_CHECK_INTERVAL,
        shutdown,
        move || {
            let db = db.clone();
            async move { Ok(db.ping().await?) }
        },
    )
    .await
}

async fn check_health<P, Fut>(
    health: &HealthReporter,
    service: &'static str,
    interval: Duration,
    probe: &mut P,
    last: &mut Option<bool>,
) where
    P: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use tonic_health::ServingStatus;
    let outcome = match tokio::time::timeout(interval, probe()).await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("no answer within {interval:?}")),
    };
    let healthy = outcome.is_ok();
    if *last == Some(healthy) {
        return;
    }
    match (&outcome, *last) {
        (Err(e), _) => tracing::warn!(
            service,
            error = %format!("{e:#}"),
            "dependency check failed: NOT_SERVING"
        ),
        (Ok(()), Some(false)) => tracing::info!(service, "dependency check passes again: SERVING"),
        (Ok(()), _) => {}
    }
    let status = if healthy {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status(service, status).await;
    health.set_service_status("", status).await;
    *last = Some(healthy);
}

fn request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc", method = %request.uri().path());
    if let Err(e) = span.set_parent(extract_context(request.headers())) {
        tracing::debug!(error = %e, "could not join the caller's trace");
    }
    span
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_server::Health;
    use tonic_health::server::HealthService;

    use super::*;

    const UP: u8 = 0;
    const DOWN: u8 = 1;
    const HANGING: u8 = 2;

    async fn status(service: &HealthService, name: &str) -> i32 {
        service
            .check(tonic::Request::new(HealthCheckRequest {
                service: name.into(),
            }))
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1)
    }

    #[tokio::test]
    async fn health_follows_the_probe() {
        let (reporter, _) = tonic_health::server::health_reporter();
        let service = HealthService::from_health_reporter(reporter.clone());
        let state = Arc::new(AtomicU8::new(DOWN));
        let interval = Duration::from_millis(40);
        let shutdown = Shutdown::new();
        let probe = {
            let state = state.clone();
            move || {
                let state = state.clone();
                async move {
                    match state.load(Ordering::SeqCst) {
                        UP => Ok(()),
                        DOWN => Err(anyhow::anyhow!("refused")),
                        _ => std::future::pending().await,
                    }
                }
            }
        };
        let task = watch_health(reporter, "x.v1.X", interval, shutdown.clone(), probe).await;
        let not_serving = ServingStatus::NotServing as i32;
        // Checked before returning: down from the start, for the service and the server.
        assert_eq!(status(&service, "x.v1.X").await, not_serving);
        assert_eq!(status(&service, "").await, not_serving);

        let settle = || tokio::time::sleep(interval * 4);
        for (to, expected) in [
            (UP, ServingStatus::Serving),
            (HANGING, ServingStatus::NotServing),
            (UP, ServingStatus::Serving),
        ] {
            state.store(to, Ordering::SeqCst);
            settle().await;
            assert_eq!(status(&service, "x.v1.X").await, expected as i32, "{to}");
            assert_eq!(status(&service, "").await, expected as i32, "{to}");
        }
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the watcher stops on shutdown")
            .expect("the watcher does not panic");
    }
}
