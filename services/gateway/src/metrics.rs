//! The gateway's metrics: every HTTP request counted and timed by route (the route's pattern,
//! never the concrete path, so ids do not explode the series), method and status.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

fn histogram() -> Histogram {
    // 100 µs to about 13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl HttpMetrics {
    /// Registers the families under the kit's registry (`atrium_http_…`).
    pub fn register(registry: &mut atrium_service_kit::metrics::Metrics) -> Arc<Self> {
        let metrics = Self {
            requests: Family::default(),
            seconds: Family::new_with_constructor(histogram as fn() -> Histogram),
        };
        let r = registry.registry_mut();
        r.register(
            "http_requests",
            "HTTP requests answered by the gateway, by route pattern, method and status",
            metrics.requests.clone(),
        );
        r.register(
            "http_request_seconds",
            "Time to the response's head, by route pattern (streams and proxied bodies continue after)",
            metrics.seconds.clone(),
        );
        Arc::new(metrics)
    }
}

/// The axum middleware that records each request.
pub async fn record(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            code: response.status().as_u16(),
        })
        .inc();
    response
}
