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

use crate::auth::AuthLayer;
use crate::shutdown::Shutdown;
use crate::telemetry::extract_context;

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
}

impl GrpcServer {
    /// Health and reflection (for every Atrium API) are registered already.
    pub fn new() -> anyhow::Result<Self> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(atrium_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("build reflection service")?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(atrium_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .context("build reflection service")?;
        let mut routes = RoutesBuilder::default();
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        Ok(Self { routes, health })
    }

    /// The health reporter: services mark themselves SERVING once their dependencies answer.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    pub fn routes_mut(&mut self) -> &mut RoutesBuilder {
        &mut self.routes
    }

    /// Serves until `shutdown` fires, then stops accepting, lets in-flight calls finish, and
    /// gives up on them after `deadline`.
    pub async fn serve(
        self,
        listener: TcpListener,
        auth: AuthLayer,
        shutdown: Shutdown,
        deadline: Duration,
    ) -> anyhow::Result<()> {
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let health = self.health.clone();
        let stopping = shutdown.clone();
        let server = Server::builder()
            .trace_fn(request_span)
            .layer(auth)
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
        tokio::select! {
            result = &mut server => result.context("serve gRPC"),
            _ = async { shutdown.wait().await; tokio::time::sleep(deadline).await } => {
                tracing::warn!(?deadline, "in-flight calls did not finish before the shutdown deadline");
                Ok(())
            }
        }
    }
}

fn request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc", method = %request.uri().path());
    if let Err(e) = span.set_parent(extract_context(request.headers())) {
        tracing::debug!(error = %e, "could not join the caller's trace");
    }
    span
}
