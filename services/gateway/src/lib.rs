//! The web gateway: Atrium's one public entrance.
//!
//! - `/api/v1`: JSON over the services' gRPC APIs, every route declared once in
//!   [`rest::routes`], which builds both the router and the OpenAPI document at
//!   `/api/v1/openapi.json`.
//! - `/api/public/*`: Kasm's Developer API ([`kasm`]), so Kasm integrations work unchanged.
//! - `/session/<id>/…`: the streaming proxy to the session's container ([`proxy`]).
//! - `/`, `/ui/…` and the app's paths: the browser UI ([`ui`]), built on `/api/v1` alone.
//!
//! It keeps no data: it authenticates the caller, forwards the caller's own credential to the
//! services (which authorize it) and answers. Its own service identity reaches only what the
//! proxy needs (a session's address and secret).

pub mod backends;
pub mod config;
pub mod kasm;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod rest;
mod serve;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::remote::{
    API_KEY_TTL, RemoteApiKeys, RemoteKeys, follow_revocations, identity_client,
};
use atrium_service_kit::auth::{Authenticator, KeySet};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::http::HttpError;
use atrium_service_kit::tasks::TaskSet;
use axum::Router;
use axum::extract::FromRef;
use axum::response::IntoResponse;
use tokio::net::TcpListener;

pub use crate::backends::Backends;
pub use crate::config::GatewayConfig;
use crate::limits::RateLimiter;

/// What every handler reaches.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub config: GatewayConfig,
    pub backends: Backends,
    pub authenticator: Authenticator,
    /// Logins per client address.
    pub login_limit: RateLimiter,
    /// Developer API calls per API key.
    pub public_limit: RateLimiter,
    /// Cookies carry `Secure` (the entrance serves TLS).
    pub secure_cookies: bool,
    pub proxy: proxy::Proxy,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Authenticator {
        state.inner.authenticator.clone()
    }
}

/// A ready gateway: nothing dialled yet (channels connect on first use).
pub struct Gateway {
    state: AppState,
    remote_keys: Option<Arc<RemoteKeys>>,
    identity: atrium_service_kit::auth::remote::IdentityClient,
}

impl Gateway {
    pub async fn new(config: GatewayConfig) -> anyhow::Result<Self> {
        Self::with_keys(config, None).await
    }

    /// With a key set shared in-process with identity (`atrium up`, tests).
    pub async fn with_keys(config: GatewayConfig, keys: Option<KeySet>) -> anyhow::Result<Self> {
        config.validate()?;
        let dialer = Dialer::for_service(&config.tls)?;
        let backends = Backends::new(&config, &dialer)?;
        let identity = identity_client(&config.identity_endpoint, &dialer)?;
        let api_keys = Arc::new(RemoteApiKeys::new(identity.clone(), API_KEY_TTL));
        let (keys, remote_keys) = match keys {
            Some(keys) => (keys, None),
            None => {
                let keys = KeySet::default();
                (
                    keys.clone(),
                    Some(Arc::new(RemoteKeys::new(identity.clone(), keys))),
                )
            }
        };
        let mut authenticator = Authenticator::new(keys, &config.issuer).with_api_keys(api_keys);
        if let Some(remote) = &remote_keys {
            authenticator = authenticator.with_remote_keys(remote.clone());
        }
        let login_rate = f64::from(config.login_per_minute) / 60.0;
        let public_rate = f64::from(config.public_api_per_second);
        let inner = Inner {
            login_limit: RateLimiter::new(login_rate, f64::from(config.login_per_minute)),
            public_limit: RateLimiter::new(public_rate, public_rate * 2.0),
            secure_cookies: config.public_tls.is_some(),
            proxy: proxy::Proxy::new(
                backends.clone(),
                Duration::from_secs(config.proxy_idle_timeout_secs),
            ),
            backends,
            authenticator,
            config,
        };
        Ok(Self {
            state: AppState {
                inner: Arc::new(inner),
            },
            remote_keys,
            identity,
        })
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown`.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let mut tasks = TaskSet::new();
        let stop = tasks.signal();
        if let Some(remote) = self.remote_keys.clone() {
            let stop = stop.clone();
            tasks.spawn("key-sync", async move {
                remote.run(Duration::from_secs(60), stop).await
            });
        }
        tasks.spawn(
            "revocations",
            follow_revocations(
                self.identity.clone(),
                self.state.authenticator.revocations().clone(),
                stop.clone(),
            ),
        );
        let tls = match &self.state.config.public_tls {
            Some(files) => Some(serve::acceptor(files)?),
            None => None,
        };
        let mut registry = atrium_service_kit::metrics::Metrics::new();
        let http_metrics = metrics::HttpMetrics::register(&mut registry);
        let app = router(self.state.clone()).layer(axum::middleware::from_fn_with_state(
            http_metrics,
            metrics::record,
        ));
        let deadline = Duration::from_secs(self.state.config.shutdown_deadline_secs);
        // `/metrics` over TLS with the gateway's service certificate, like every service's.
        let metrics_tls = self.state.config.tls.server("metrics")?;
        let registry = Arc::new(registry);
        let metrics = metrics.map(|l| {
            let stop = shutdown.clone();
            tokio::spawn(async move {
                atrium_service_kit::metrics::serve(l, metrics_tls, registry, stop).await;
            })
        });
        let serving = serve::serve(listener, tls, app, shutdown.clone(), deadline);
        let served = tasks.supervise(serving, &shutdown).await;
        if let Some(m) = metrics {
            m.abort();
        }
        let report = tasks.shutdown(Duration::from_secs(5)).await;
        if !report.is_clean() {
            tracing::warn!(?report, "background work did not all finish cleanly");
        }
        served
    }
}

/// Every route of the gateway.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(rest::router())
        .merge(kasm::router())
        .merge(proxy::router())
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .merge(ui::router())
        .fallback(|| async { HttpError::not_found("route").into_response() })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// The client address of a request (set per connection by the server loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
