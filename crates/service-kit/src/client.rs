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
