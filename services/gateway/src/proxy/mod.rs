//! `/session/<id>/…`: the streaming proxy to a session's container (its port 6901, HTTPS with
//! a self-signed certificate and Kasm's basic auth). HTTP and WebSocket traffic pass through to
//! the container's `/…`, with the per-session secret injected; the browser never sees it.
//!
//! Who may open a session is the session-manager's decision (its owner, or a holder of
//! `sessions.view`), asked with the caller's own credential and remembered briefly
//! ([`access`]). A session the caller may not see, a deleted one and a malformed id all answer
//! the same 404. A session that exists but does not run (starting, paused, stopped) answers 409
//! to those who may see it. Proxied traffic is not a keepalive: the UI calls `Keepalive`.
//!
//! Authentication and CSRF: the proxy authenticates like every route (the `Authorization`
//! header, else the access cookie) but does not ask for the CSRF header, which a workspace's own
//! pages (noVNC, a notes form) cannot know to send. Cross-site use of the cookie is refused by
//! other means: the cookie is `SameSite=Strict` (no other site's page or form sends it), and a
//! cookie-authenticated request that is not a safe method, or that opens a WebSocket, must come
//! from the gateway's own origin when it names one (`Origin`, which browsers always send there).
//!
//! What is not here: the session's lifecycle (the session-manager) and keepalive (the UI).

pub mod access;
mod forward;
pub mod rewrite;
mod tls;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use atrium_service_kit::http::{HttpError, Via, presented};
use axum::Router;
use axum::extract::{FromRequestParts as _, Request, State, WebSocketUpgrade};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use http::{HeaderValue, Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::backends::Backends;
use crate::proxy::access::Access;
use crate::proxy::rewrite::{Forwarded, Target};
use crate::{AppState, ClientAddr};

/// How long connecting to a container may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Proxy {
    /// `Err` if TLS toward containers could not be set up: then every proxied request answers
    /// 500 and the log says why.
    ready: Result<Ready, String>,
    idle_timeout: Duration,
}

struct Ready {
    access: Arc<Access>,
    /// TLS toward containers for WebSockets (HTTP/1.1).
    ws_tls: tokio_rustls::TlsConnector,
}

impl Proxy {
    pub fn new(backends: Backends, idle_timeout: Duration) -> Self {
        let ready = tls::client_config(&[b"http/1.1"])
            .map(|config| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(CONNECT_TIMEOUT));
                let ws_tls = tokio_rustls::TlsConnector::from(Arc::new(config.clone()));
                // hyper-rustls sets ALPN itself (and refuses a config that already has it).
                let mut config = config;
                config.alpn_protocols.clear();
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only()
                    .enable_http1()
                    .wrap_connector(http);
                Ready {
                    access: Arc::new(Access::new(backends, https)),
                    ws_tls,
                }
            })
            .map_err(|e| format!("TLS toward containers: {e}"));
        Self {
            ready,
            idle_timeout,
        }
    }

    /// The sessions the proxy currently holds an upstream for.
    pub fn upstream_count(&self) -> usize {
        self.ready.as_ref().map_or(0, |r| r.access.upstream_count())
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session/{id}", any(handle))
        .route("/session/{id}/", any(handle))
        .route("/session/{id}/{*rest}", any(handle))
}

async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match serve(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(state: &AppState, request: Request) -> Result<Response, HttpError> {
    let path = request.uri().path().to_owned();
    let (id, upstream_path) = match rewrite::target(&path) {
        Target::Upstream { id, path } => (id, path.to_owned()),
        Target::AddSlash(id) => {
            let mut to = format!("{}/", rewrite::prefix(id));
            if let Some(q) = request.uri().query() {
                to.push('?');
                to.push_str(q);
            }
            return Ok(Redirect::permanent(&to).into_response());
        }
        Target::NotASession => return Err(HttpError::not_found("session")),
    };
    let proxy = &state.proxy;
    let ready = proxy.ready.as_ref().map_err(|e| {
        tracing::error!(error = %e, "proxy: cannot reach containers");
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })?;
    let (mut parts, body) = request.into_parts();
    let (credential, via) = presented(&parts.headers)?
        .ok_or_else(|| HttpError::unauthenticated("authentication required"))?;
    let websocket = rewrite::is_websocket(&parts.headers);
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if via == Via::Cookie
        && (websocket || unsafe_method)
        && !rewrite::same_origin(&parts.headers, parts.uri.authority().map(|a| a.as_str()))
    {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "origin: a session is opened only from the gateway's own pages",
        ));
    }
    state.authenticator.authenticate(&credential).await?;
    let (upstream, own_idle) = ready.access.upstream(id, &credential).await?;
    // The gateway's limit, or the caller's idle_disconnect when that is shorter.
    let idle_timeout = own_idle.map_or(proxy.idle_timeout, |own| own.min(proxy.idle_timeout));
    let forwarded = Forwarded {
        client_ip: parts.extensions.get::<ClientAddr>().map(|a| a.0.ip()),
        proto: if state.secure_cookies {
            "https"
        } else {
            "http"
        },
        host: parts.headers.get(http::header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        }),
        prefix: rewrite::prefix(id),
    };
    if websocket {
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| HttpError::invalid("", e.body_text()))?;
        return Ok(ws::bridge(
            upstream,
            ready.ws_tls.clone(),
            upgrade,
            &parts,
            &upstream_path,
            &forwarded,
            idle_timeout,
        )
        .await);
    }
    Ok(forward::forward(
        upstream,
        parts,
        body,
        &upstream_path,
        &forwarded,
        idle_timeout,
    )
    .await)
}
