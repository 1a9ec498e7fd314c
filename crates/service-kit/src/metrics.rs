//! Prometheus metrics (OpenMetrics text): every gRPC call a server handles (counted by service, method and status
//! code; timed by service and method) and whatever a service registers of its own, served as text
//! on an HTTP `/metrics`.
//!
//! Names follow the usual gRPC conventions, prefixed `atrium_`:
//! - `atrium_grpc_server_handled_total{grpc_service, grpc_method, grpc_code}`
//! - `atrium_grpc_server_handling_seconds{grpc_service, grpc_method}` (histogram, 100 µs … 13 s)
//!
//! A call's code is read from its `grpc-status` (headers or trailers); a call whose response
//! body is dropped before it ends counts as `Cancelled`. Timing ends when the response is done.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::shutdown::Shutdown;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

struct GrpcMetrics {
    handled: Family<CallLabels, Counter>,
    handling: Family<MethodLabels, Histogram, fn() -> Histogram>,
    /// Each method's series, looked up by path without allocating once seen.
    methods: RwLock<HashMap<Box<str>, Arc<MethodSeries>>>,
}

/// One method's histogram and its counters by code (created on first use), shared with the
/// families above.
struct MethodSeries {
    labels: MethodLabels,
    handling: Histogram,
    handled: [OnceLock<Counter>; 17],
}

/// More distinct paths than this share the `other` series.
const MAX_METHODS: usize = 1000;
/// The series of calls to paths that are not method paths, or beyond MAX_METHODS.
const OTHER: &str = "/other/other";

/// `/package.Service/Method`: identifier characters and dots, one slash inside, at most 200
/// bytes. Nothing that needs escaping in a label value.
fn is_method_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let Some((service, method)) = rest.split_once('/') else {
        return false;
    };
    let word = |s: &str, dots: bool| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (dots && b == b'.'))
    };
    path.len() <= 200 && word(service, true) && word(method, false)
}

impl GrpcMetrics {
    fn series(&self, path: &str) -> Arc<MethodSeries> {
        // Paths come from unauthenticated callers: only well-formed gRPC method paths get a
        // series of their own (and so reach label values), up to MAX_METHODS of them.
        let path = if is_method_path(path) { path } else { OTHER };
        {
            let methods = read(&self.methods);
            if let Some(series) = methods.get(path) {
                return series.clone();
            }
            if methods.len() >= MAX_METHODS
                && let Some(series) = methods.get(OTHER)
            {
                return series.clone();
            }
        }
        let mut methods = write(&self.methods);
        let key = if methods.len() >= MAX_METHODS && !methods.contains_key(path) {
            OTHER
        } else {
            path
        };
        methods
            .entry(key.into())
            .or_insert_with(|| {
                let (grpc_service, grpc_method) = split_path(key);
                let labels = MethodLabels {
                    grpc_service,
                    grpc_method,
                };
                Arc::new(MethodSeries {
                    handling: self.handling.get_or_create_owned(&labels),
                    labels,
                    handled: Default::default(),
                })
            })
            .clone()
    }

    fn record(&self, series: &MethodSeries, code: tonic::Code, seconds: f64) {
        series.handling.observe(seconds);
        let index = (code as usize).min(series.handled.len() - 1);
        series.handled[index]
            .get_or_init(|| {
                self.handled.get_or_create_owned(&CallLabels {
                    grpc_service: series.labels.grpc_service.clone(),
                    grpc_method: series.labels.grpc_method.clone(),
                    grpc_code: code_name(code),
                })
            })
            .inc();
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// A service's metrics registry, with the gRPC call metrics registered.
pub struct Metrics {
    registry: Registry,
    grpc: Arc<GrpcMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("atrium");
        let grpc = GrpcMetrics {
            handled: Family::default(),
            handling: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            methods: RwLock::default(),
        };
        registry.register(
            "grpc_server_handled",
            "gRPC calls completed, by method and status code",
            grpc.handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time from a gRPC call's arrival to the end of its response",
            grpc.handling.clone(),
        );
        Self {
            registry,
            grpc: Arc::new(grpc),
        }
    }

    /// Where a service registers its own metrics (under the `atrium_` prefix).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The tower layer that records every call.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer {
            grpc: self.grpc.clone(),
        }
    }

    /// The OpenMetrics text exposition of everything registered (Prometheus reads it).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Binds the metrics port (when configured) so a taken port fails start-up at once.
pub async fn bind(addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        None => Ok(None),
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .with_context(|| format!("bind metrics_listen {addr}")),
    }
}

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `GET /metrics` over HTTP/1.1 until `shutdown` fires; any other path is 404.
pub async fn serve(
    listener: TcpListener,
    tls: Option<crate::tls::ServerTls>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) {
    serve_with(listener, tls, metrics, shutdown, HEADER_TIMEOUT).await
}

async fn serve_with(
    listener: TcpListener,
    tls: Option<crate::tls::ServerTls>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    header_timeout: std::time::Duration,
) {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tokio_stream::StreamExt as _;
    let mut incoming = crate::tls::incoming(listener, tls);
    loop {
        let stream = tokio::select! {
            _ = shutdown.wait() => return,
            accepted = incoming.next() => match accepted {
                Some(Ok(stream)) => stream,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    continue;
                }
                None => return,
            },
        };
        let metrics = metrics.clone();
        let service = hyper::service::service_fn(move |request: http::Request<_>| {
            let metrics = metrics.clone();
            async move { Ok::<_, std::convert::Infallible>(respond(&request, &metrics)) }
        });
        tokio::spawn(async move {
            // A client that never finishes its request headers is dropped.
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

fn respond<B>(request: &http::Request<B>, metrics: &Metrics) -> http::Response<String> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => (
            http::StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        (_, "/metrics") => (
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
        _ => (
            http::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

#[derive(Clone)]
pub struct MetricsLayer {
    grpc: Arc<GrpcMetrics>,
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            grpc: self.grpc.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    grpc: Arc<GrpcMetrics>,
}

impl<S> Service<http::Request<Body>> for MetricsService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let recorder = Recorder {
            series: self.grpc.series(request.uri().path()),
            grpc: self.grpc.clone(),
            start: Instant::now(),
            code: None,
            ended: false,
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            let mut recorder = recorder;
            recorder.code = response.headers().get("grpc-status").map(code_of);
            Ok(response.map(|inner| Body::new(Recorded { inner, recorder })))
        })
    }
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
fn split_path(path: &str) -> (String, String) {
    let trimmed = path.trim_start_matches('/');
    match trimmed.split_once('/') {
        Some((service, method)) => (service.to_owned(), method.to_owned()),
        None => (trimmed.to_owned(), String::new()),
    }
}

/// Records one call when its response body is dropped (sent, or abandoned).
struct Recorder {
    series: Arc<MethodSeries>,
    grpc: Arc<GrpcMetrics>,
    start: Instant,
    code: Option<tonic::Code>,
    ended: bool,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let code = match (self.code, self.ended) {
            (Some(code), _) => code,
            (None, true) => tonic::Code::Unknown,
            (None, false) => tonic::Code::Cancelled,
        };
        self.grpc
            .record(&self.series, code, self.start.elapsed().as_secs_f64());
    }
}

pin_project_lite::pin_project! {
    struct Recorded {
        #[pin]
        inner: Body,
        recorder: Recorder,
    }
}

impl HttpBody for Recorded {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(status) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    this.recorder.code = Some(code_of(status));
                }
            }
            Poll::Ready(None) => this.recorder.ended = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn code_of(value: &http::HeaderValue) -> tonic::Code {
    value
        .to_str()
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .map_or(tonic::Code::Unknown, tonic::Code::from_i32)
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn start(
        header_timeout: Duration,
        tls: Option<crate::tls::ServerTls>,
    ) -> (SocketAddr, Shutdown) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let metrics = Arc::new(Metrics::new());
        tokio::spawn(serve_with(
            listener,
            tls,
            metrics,
            shutdown.clone(),
            header_timeout,
        ));
        (addr, shutdown)
    }

    #[test]
    fn only_method_paths_get_a_series_of_their_own() {
        let metrics = Metrics::new();
        let grpc = &metrics.grpc;
        let ok = grpc.series("/atrium.policy.v1.PolicyService/ListGroups");
        assert_eq!(ok.labels.grpc_method, "ListGroups");
        for hostile in [
            "/a\"b/x",
            "/a\\b/x",
            "/svc/method/extra",
            "/svc/",
            "nope",
            &format!("/{}/m", "s".repeat(300)),
        ] {
            let series = grpc.series(hostile);
            assert_eq!(series.labels.grpc_service, "other", "{hostile}");
        }
        for i in 0..MAX_METHODS + 10 {
            grpc.series(&format!("/svc.S/M{i}"));
        }
        assert!(read(&grpc.methods).len() <= MAX_METHODS + 1);
        assert_eq!(grpc.series("/svc.S/Late").labels.grpc_method, "other");
        grpc.record(&ok, tonic::Code::Ok, 0.001);
        let text = metrics.render();
        assert!(
            text.contains("grpc_method=\"ListGroups\",grpc_code=\"OK\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("a\"b"),
            "hostile label escaped into the exposition"
        );
    }

    #[tokio::test]
    async fn serves_the_exposition_and_404_elsewhere() {
        let tls = crate::testing::tls_for(crate::auth::ServiceId::Policy)
            .server("metrics")
            .unwrap();
        let (addr, shutdown) = start(HEADER_TIMEOUT, tls).await;
        let (status, body) = crate::testing::http_get(addr, "/metrics").await.unwrap();
        assert_eq!(status, 200);
        // OpenMetrics text; families without samples yet print nothing.
        assert!(body.trim_end().ends_with("# EOF"), "{body:?}");
        let (status, _) = crate::testing::http_get(addr, "/other").await.unwrap();
        assert_eq!(status, 404);
        shutdown.trigger();
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_dropped() {
        // Plaintext: the timeout under test is HTTP's, not the TLS handshake's.
        let (addr, shutdown) = start(Duration::from_millis(200), None).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the connection is still open after 3 s");
        shutdown.trigger();
    }
}
