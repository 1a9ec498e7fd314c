//! gRPC channels to Atrium services, built one way for every caller (services, the CLI,
//! tests): TLS with the Atrium CA (and, for services, their own client certificate), a connect
//! timeout, and a request timeout on every call.

use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::{ClientTls, TlsConfig};

/// Connect and per-request timeouts every outgoing call gets unless told otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes channels to Atrium services.
#[derive(Clone)]
pub struct Dialer {
    tls: Option<ClientTls>,
    source: Option<std::net::IpAddr>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl Dialer {
    /// As a service: trusts the Atrium CA and presents the service's certificate; plaintext
    /// when the config says so.
    pub fn for_service(tls: &TlsConfig) -> anyhow::Result<Self> {
        Ok(Self::with(tls.client()?))
    }

    /// As a user's program (the CLI): trusts the CA in `ca`, presents no certificate.
    pub fn trusting(ca: &std::path::Path) -> anyhow::Result<Self> {
        Ok(Self::with(Some(ClientTls::new(ca, None)?)))
    }

    /// Without TLS: only for `insecure_plaintext` deployments and baselines.
    pub fn plaintext() -> Self {
        Self::with(None)
    }

    fn with(tls: Option<ClientTls>) -> Self {
        Self {
            tls,
            source: None,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }

    /// Every call on channels from this dialer fails with DeadlineExceeded after `timeout`
    /// (server streams are not cut: the limit covers the wait for the response to start).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Connects from the local address `source` (TLS dialers only).
    pub fn from_source(mut self, source: std::net::IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn endpoint(&self, url: &str) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .with_context(|| format!("{url}: not a valid endpoint URL"))?;
        let scheme = endpoint.uri().scheme_str().unwrap_or_default();
        match (&self.tls, scheme) {
            (Some(_), "https") | (None, "http") => {}
            (Some(_), _) => anyhow::bail!("{url}: must be an https:// URL (TLS is on)"),
            (None, _) => anyhow::bail!("{url}: must be an http:// URL (TLS is off)"),
        }
        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .tcp_nodelay(true))
    }

    /// A channel that connects on first use (and reconnects as needed).
    pub fn lazy(&self, url: &str) -> anyhow::Result<Channel> {
        let endpoint = self.endpoint(url)?;
        Ok(match &self.tls {
            None => endpoint.connect_lazy(),
            Some(tls) => endpoint.connect_with_connector_lazy(connector(tls.clone(), self.source)),
        })
    }

    /// A channel connected now.
    pub async fn connect(&self, url: &str) -> anyhow::Result<Channel> {
        let endpoint = self.endpoint(url)?;
        let channel = match &self.tls {
            None => endpoint.connect().await,
            Some(tls) => {
                endpoint
                    .connect_with_connector(connector(tls.clone(), self.source))
                    .await
            }
        };
        channel.with_context(|| format!("connect to {url}"))
    }
}

type Connecting = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = std::io::Result<
                    TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
                >,
            > + Send,
    >,
>;

fn connector(
    tls: ClientTls,
    source: Option<std::net::IpAddr>,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = std::io::Error,
    Future = Connecting,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |uri: Uri| -> Connecting {
        let tls = tls.clone();
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "endpoint has no host")
            })?;
            let port = uri.port_u16().unwrap_or(443);
            Ok(TokioIo::new(tls.connect_from(source, host, port).await?))
        })
    })
}

/// How many times in all an idempotent call is tried when the service is unavailable.
pub const IDEMPOTENT_ATTEMPTS: u32 = 3;

/// Whether a gRPC method may be repeated without changing the outcome: reads, watches,
/// explanations, and keepalives (which set a deadline from now).
pub fn is_idempotent(method: &str) -> bool {
    let name = method.rsplit('/').next().unwrap_or(method);
    [
        "Get",
        "List",
        "Watch",
        "Explain",
        "Resolve",
        "Check",
        "WhoAmI",
        "Keepalive",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// Runs `call`, and again (up to `attempts` in all, 50 ms then 100 ms apart) while it fails with
/// Unavailable: the connection could not be made or broke before an answer. Only for calls that
/// are safe to repeat ([`is_idempotent`]).
pub async fn retry_idempotent<T, F, Fut>(attempts: u32, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut pause = Duration::from_millis(50);
    let mut tried = 1;
    loop {
        match call().await {
            Err(e) if tried < attempts && e.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                tried += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_keepalives_are_idempotent_writes_are_not() {
        for m in [
            "/atrium.session.v1.SessionService/GetSession",
            "ListUsers",
            "Keepalive",
            "WatchSession",
        ] {
            assert!(is_idempotent(m), "{m}");
        }
        for m in [
            "/atrium.session.v1.SessionService/RequestSession",
            "CreateUser",
            "Delete",
            "Login",
        ] {
            assert!(!is_idempotent(m), "{m}");
        }
    }

    #[tokio::test]
    async fn unavailable_is_retried_other_errors_are_not() {
        let mut n = 0;
        let r: Result<u32, tonic::Status> = retry_idempotent(3, || {
            n += 1;
            let k = n;
            async move {
                if k < 3 {
                    Err(tonic::Status::unavailable("down"))
                } else {
                    Ok(k)
                }
            }
        })
        .await;
        assert_eq!(r.ok(), Some(3));
        let mut m = 0;
        let r: Result<u32, tonic::Status> = retry_idempotent(3, || {
            m += 1;
            async { Err(tonic::Status::not_found("x")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(m, 1);
    }
}
