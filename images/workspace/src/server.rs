//! The HTTPS server: TLS with a certificate made at start, basic auth, and the routes —
//! `GET /healthz` (no auth, for readiness probes), `GET /` (the page), `GET /notes` and
//! `POST /notes`, and for proxies in front of it `GET /ws/echo`, `GET /ws/open` and
//! `GET /bytes?n=` ([`crate::echo`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::auth::{CHALLENGE, is_authorized};
use crate::config::Config;
use crate::echo::{self, OpenSockets};
use crate::notes::{MAX_NOTES_BYTES, NotesError, NotesStore, check_declared_length, read_text};
use crate::page::{PageInfo, render};

/// How long a client gets to finish the TLS handshake, and to send request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

type Reply = Response<Full<Bytes>>;

/// A running workspace: its settings, its certificate and its notes.
#[derive(Debug)]
pub struct Workspace {
    config: Config,
    hostname: String,
    uid: Option<String>,
    started: Instant,
    notes: NotesStore,
    tls: Arc<ServerConfig>,
    sockets: OpenSockets,
}

impl Workspace {
    /// Makes a self-signed certificate for `localhost`, `127.0.0.1` and the hostname.
    pub fn new(config: Config) -> anyhow::Result<Arc<Self>> {
        let hostname = hostname();
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if !names.contains(&hostname) {
            names.push(hostname.clone());
        }
        let certified = rcgen::generate_simple_self_signed(names.clone())
            .or_else(|_| rcgen::generate_simple_self_signed(names[..2].to_vec()))
            .context("generate a self-signed certificate")?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("choose TLS versions")?
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .context("load the certificate")?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Self {
            notes: NotesStore::new(&config.home),
            config,
            hostname,
            uid: own_uid(),
            started: Instant::now(),
            tls: Arc::new(tls),
            sockets: OpenSockets::default(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Echo WebSockets open now.
    pub fn open_sockets(&self) -> usize {
        self.sockets.count()
    }
}

/// Serves connections from `listener` until `shutdown` completes; connections still open then
/// are dropped (containers must stop fast).
pub async fn serve(
    listener: TcpListener,
    workspace: Arc<Workspace>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    eprintln!("atrium-workspace: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(workspace.clone(), tcp, peer));
    }
}

async fn connection(workspace: Arc<Workspace>, tcp: TcpStream, peer: SocketAddr) {
    let acceptor = TlsAcceptor::from(workspace.tls.clone());
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        // Probes and clients that refuse the self-signed certificate end up here; not worth
        // more than a line.
        Ok(Err(e)) => return eprintln!("atrium-workspace: tls handshake with {peer} failed: {e}"),
        Err(_) => return,
    };
    let service = service_fn(move |request| {
        let workspace = workspace.clone();
        async move { Ok::<_, Infallible>(route(&workspace, request).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades()
        .await;
    if let Err(e) = served
        && !e.is_incomplete_message()
        && !e.is_timeout()
    {
        eprintln!("atrium-workspace: connection from {peer} failed: {e}");
    }
}

async fn route(workspace: &Workspace, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if path == "/healthz" {
        return match method {
            Method::GET | Method::HEAD => text(StatusCode::OK, "ok\n"),
            _ => not_allowed("GET, HEAD"),
        };
    }
    if !is_authorized(
        request.headers().get(http::header::AUTHORIZATION),
        &workspace.config.password,
    ) {
        let mut reply = text(StatusCode::UNAUTHORIZED, "authentication required\n");
        reply
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        return reply;
    }
    match (path.as_str(), method) {
        ("/", Method::GET | Method::HEAD) => page(workspace).await,
        ("/", _) => not_allowed("GET, HEAD"),
        ("/notes", Method::GET | Method::HEAD) => match workspace.notes.load().await {
            Ok(notes) => text(StatusCode::OK, notes),
            Err(e) => internal("read notes", &e),
        },
        ("/notes", Method::POST) => save_notes(workspace, request).await,
        ("/notes", _) => not_allowed("GET, HEAD, POST"),
        ("/ws/echo", Method::GET) => match echo::upgrade(request, &workspace.sockets) {
            Ok(reply) => reply,
            Err(status) => text(status, "a WebSocket handshake is expected here\n"),
        },
        ("/ws/echo", _) => not_allowed("GET"),
        ("/ws/open", Method::GET) => {
            text(StatusCode::OK, format!("{}\n", workspace.open_sockets()))
        }
        ("/ws/open", _) => not_allowed("GET"),
        ("/bytes", Method::GET | Method::HEAD) => match echo::bytes(request.uri().query()) {
            Some(bytes) => {
                let mut reply = text(StatusCode::OK, bytes);
                reply.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                reply
            }
            None => text(
                StatusCode::BAD_REQUEST,
                format!("n: a number of bytes up to {}\n", echo::MAX_BYTES),
            ),
        },
        ("/bytes", _) => not_allowed("GET, HEAD"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn page(workspace: &Workspace) -> Reply {
    let notes = match workspace.notes.load().await {
        Ok(notes) => notes,
        Err(e) => return internal("read notes", &e),
    };
    let c = &workspace.config;
    let optional = [
        ("KASM_USER", &c.kasm_user),
        ("KASM_USER_ID", &c.kasm_user_id),
        ("ATRIUM_SESSION_ID", &c.session_id),
        ("ATRIUM_WORKSPACE_ID", &c.workspace_id),
    ];
    let mut facts: Vec<(&'static str, String)> = optional
        .into_iter()
        .filter_map(|(label, value)| value.clone().map(|v| (label, v)))
        .collect();
    if let Some(uid) = &workspace.uid {
        facts.push(("process uid", uid.clone()));
    }
    facts.push(("HOME", c.home.display().to_string()));
    facts.push(("port", c.port.to_string()));
    let html = render(&PageInfo {
        hostname: &workspace.hostname,
        facts,
        uptime: workspace.started.elapsed(),
        notes: &notes,
    });
    let mut reply = text(StatusCode::OK, html);
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    reply
}

async fn save_notes(workspace: &Workspace, request: Request<Incoming>) -> Reply {
    let body = request.into_body();
    let text_result = match check_declared_length(body.size_hint().exact(), MAX_NOTES_BYTES) {
        Ok(()) => read_text(body, MAX_NOTES_BYTES).await,
        Err(e) => Err(e),
    };
    let notes = match text_result {
        Ok(notes) => notes,
        Err(e @ NotesError::TooLarge { .. }) => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n"));
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    match workspace.notes.save(&notes).await {
        Ok(()) => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::new()))
            .unwrap_or_default(),
        Err(e) => internal("save notes", &e),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(body.into()))
        .unwrap_or_default()
}

fn not_allowed(allow: &'static str) -> Reply {
    let mut reply = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    reply
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    reply
}

fn internal(what: &str, error: &std::io::Error) -> Reply {
    eprintln!("atrium-workspace: {what} failed: {error}");
    text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

/// The container's hostname (the kernel's, which Docker sets), else `$HOSTNAME`.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The real user id of this process, from `/proc/self/status`.
fn own_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1).map(str::to_owned)
}
