//! Transport security for every Atrium listener and client: TLS (rustls) everywhere, and mutual
//! TLS between services. A service's certificate names it with a URI subject-alternative-name
//! (`spiffe://atrium/service/<name>`, see [`ServiceId`]); servers accept clients with or without
//! a certificate (users authenticate with tokens), and a valid certificate from the Atrium CA
//! makes the connection that service's. Certificates and keys are PEM files, re-read when they
//! change (cert-manager rotates them in place), so rotation needs no restart.
//!
//! Plaintext exists only behind [`TlsConfig::insecure_plaintext`], logged loudly.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::auth::ServiceId;

/// How a service secures its listeners and its calls to other services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the CA that signs Atrium's certificates. Servers trust client certificates it
    /// signed; clients trust servers it signed.
    pub ca: Option<PathBuf>,
    /// PEM: this service's certificate chain (its server certificate and, for calls to other
    /// services, its client certificate).
    pub cert: Option<PathBuf>,
    /// PEM: the private key of `cert`.
    pub key: Option<PathBuf>,
    /// Serve and dial WITHOUT encryption or service identities. For debugging on a trusted
    /// machine only; every start-up logs a warning.
    pub insecure_plaintext: bool,
}

impl TlsConfig {
    /// The files `atrium up` (and the test PKI) lay out for `service` under `dir`.
    pub fn in_dir(dir: &Path, service: ServiceId) -> Self {
        TlsConfig {
            ca: Some(dir.join("ca.pem")),
            cert: Some(dir.join(format!("{service}.pem"))),
            key: Some(dir.join(format!("{service}-key.pem"))),
            insecure_plaintext: false,
        }
    }

    /// Checks that the files are named (or plaintext is chosen); `field` prefixes messages.
    pub fn validate(&self, field: &str) -> anyhow::Result<()> {
        if self.insecure_plaintext {
            return Ok(());
        }
        for (name, value) in [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)] {
            if value.is_none() {
                anyhow::bail!(
                    "{field}.{name}: required (a PEM file), unless {field}.insecure_plaintext is set"
                );
            }
        }
        Ok(())
    }

    fn files(&self) -> anyhow::Result<(&Path, &Path, &Path)> {
        match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Ok((ca, cert, key)),
            _ => anyhow::bail!("tls: ca, cert and key are required unless insecure_plaintext"),
        }
    }

    /// The server side, or `None` for plaintext (warned about).
    pub fn server(&self, what: &str) -> anyhow::Result<Option<ServerTls>> {
        if self.insecure_plaintext {
            tracing::warn!(
                listener = what,
                "TLS IS OFF (tls.insecure_plaintext): traffic is unencrypted and services cannot prove who they are"
            );
            return Ok(None);
        }
        let (ca, cert, key) = self.files()?;
        ServerTls::new(ca, cert, key).map(Some)
    }

    /// The client side for calls to other services, presenting this service's certificate;
    /// `None` for plaintext.
    pub fn client(&self) -> anyhow::Result<Option<ClientTls>> {
        if self.insecure_plaintext {
            return Ok(None);
        }
        let (ca, cert, key) = self.files()?;
        ClientTls::new(ca, Some((cert, key))).map(Some)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parse certificates in {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no certificate found",
        path.display()
    );
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("read a private key from {}", path.display()))
}

fn read_roots(path: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .with_context(|| format!("{}: not a usable CA certificate", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// A value built from files, rebuilt when any of them changes (checked at most once a second).
struct Reloading<T> {
    files: Vec<PathBuf>,
    build: Box<dyn Fn() -> anyhow::Result<T> + Send + Sync>,
    current: RwLock<(Arc<T>, Vec<Option<SystemTime>>)>,
    checked: Mutex<Instant>,
}

const RELOAD_CHECK: Duration = Duration::from_secs(1);

fn mtimes(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

impl<T> Reloading<T> {
    fn new(
        files: Vec<PathBuf>,
        build: impl Fn() -> anyhow::Result<T> + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let stamps = mtimes(&files);
        let value = build()?;
        Ok(Self {
            files,
            build: Box::new(build),
            current: RwLock::new((Arc::new(value), stamps)),
            checked: Mutex::new(Instant::now()),
        })
    }

    fn get(&self) -> Arc<T> {
        let due = {
            let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            if checked.elapsed() >= RELOAD_CHECK {
                *checked = Instant::now();
                true
            } else {
                false
            }
        };
        if due {
            self.reload_if_changed();
        }
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    fn reload_if_changed(&self) {
        let stamps = mtimes(&self.files);
        if self.current.read().unwrap_or_else(|p| p.into_inner()).1 == stamps {
            return;
        }
        match (self.build)() {
            Ok(value) => {
                tracing::info!(files = ?self.files, "TLS files changed: reloaded");
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    (Arc::new(value), stamps);
            }
            Err(e) => {
                // Half-written files during a rotation: keep serving the old ones, retry later.
                tracing::warn!(error = %format!("{e:#}"), "TLS files changed but do not load; keeping the previous ones");
            }
        }
    }
}

/// The server side of TLS: certificate, key, and the CA that client certificates must chain to.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<Reloading<Arc<ServerConfig>>>,
}

impl ServerTls {
    pub fn new(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let (ca_p, cert_p, key_p) = (ca.to_owned(), cert.to_owned(), key.to_owned());
        let build = move || -> anyhow::Result<Arc<ServerConfig>> {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(read_roots(&ca_p)?, provider())
                    .allow_unauthenticated()
                    .build()
                    .context("build the client-certificate verifier")?;
            let mut config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .context("choose TLS versions")?
                .with_client_cert_verifier(verifier)
                .with_single_cert(read_certs(&cert_p)?, read_key(&key_p)?)
                .context("load the server certificate and key")?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        };
        Ok(Self {
            config: Arc::new(Reloading::new(
                vec![ca.to_owned(), cert.to_owned(), key.to_owned()],
                build,
            )?),
        })
    }

    /// An acceptor with the current files.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.get().as_ref().clone())
    }
}

/// The client side of TLS: the CA servers must chain to, and optionally a client certificate.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<Reloading<Arc<ClientConfig>>>,
}

impl ClientTls {
    /// For gRPC (HTTP/2).
    pub fn new(ca: &Path, identity: Option<(&Path, &Path)>) -> anyhow::Result<Self> {
        Self::with_alpn(ca, identity, b"h2")
    }

    /// For HTTP/1.1 (`/metrics`), trusting `ca`.
    pub fn http1(ca: &Path) -> anyhow::Result<Self> {
        Self::with_alpn(ca, None, b"http/1.1")
    }

    fn with_alpn(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        alpn: &'static [u8],
    ) -> anyhow::Result<Self> {
        let ca_p = ca.to_owned();
        let id_p = identity.map(|(c, k)| (c.to_owned(), k.to_owned()));
        let mut files = vec![ca.to_owned()];
        if let Some((c, k)) = &id_p {
            files.push(c.clone());
            files.push(k.clone());
        }
        let build = move || -> anyhow::Result<Arc<ClientConfig>> {
            let builder = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .context("choose TLS versions")?
                .with_root_certificates(read_roots(&ca_p)?);
            let mut config = match &id_p {
                Some((cert, key)) => builder
                    .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
                    .context("load the client certificate and key")?,
                None => builder.with_no_client_auth(),
            };
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(Arc::new(config))
        };
        Ok(Self {
            config: Arc::new(Reloading::new(files, build)?),
        })
    }

    /// Opens a TLS connection to `host:port`, verifying the server's name against `host`.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        self.connect_from(None, host, port).await
    }

    /// As [`ClientTls::connect`], from the local address `source` when given (a test's
    /// second loopback address, a multi-homed host).
    pub async fn connect_from(
        &self,
        source: Option<std::net::IpAddr>,
        host: &str,
        port: u16,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tcp = match source {
            None => TcpStream::connect((host, port)).await?,
            Some(source) => {
                let target = tokio::net::lookup_host((host, port))
                    .await?
                    .find(|a| a.is_ipv4() == source.is_ipv4())
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "no address of that family")
                    })?;
                let socket = if source.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(source, 0))?;
                socket.connect(target).await?
            }
        };
        tcp.set_nodelay(true)?;
        TlsConnector::from(self.config.get().as_ref().clone())
            .connect(name, tcp)
            .await
    }
}

/// Who is on the other end of a server connection: its address and, when it presented a valid
/// certificate naming one, the Atrium service it is. A request extension on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub remote_addr: Option<SocketAddr>,
    pub service: Option<ServiceId>,
    pub tls: bool,
}

/// The caller's address, as the server saw it.
pub fn peer_addr<T>(request: &tonic::Request<T>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.remote_addr)
}

/// The service named by a DER certificate's URI SANs, if any.
pub fn service_of(cert: &[u8]) -> Option<ServiceId> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => ServiceId::from_uri(uri),
        _ => None,
    })
}

/// An accepted server connection, encrypted or (only when configured) not.
pub enum Conn {
    Plain(TcpStream, PeerInfo),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>, PeerInfo),
}

impl Conn {
    pub fn peer(&self) -> &PeerInfo {
        match self {
            Conn::Plain(_, p) | Conn::Tls(_, p) => p,
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer().clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s, _) => s.is_write_vectored(),
            Conn::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener`, completing TLS handshakes off the accept loop (a slow or
/// silent client holds up no one), until the returned stream is dropped. Failed handshakes are
/// logged at debug and skipped.
pub fn incoming(
    listener: TcpListener,
    tls: Option<ServerTls>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tx.closed() => return,
            };
            let (tcp, remote) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            let Some(tls) = &tls else {
                let peer = PeerInfo {
                    remote_addr: Some(remote),
                    service: None,
                    tls: false,
                };
                if tx.send(Ok(Conn::Plain(tcp, peer))).await.is_err() {
                    return;
                }
                continue;
            };
            let acceptor = tls.acceptor();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let service = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .and_then(|leaf| service_of(leaf));
                        let peer = PeerInfo {
                            remote_addr: Some(remote),
                            service,
                            tls: true,
                        };
                        let _ = tx.send(Ok(Conn::Tls(Box::new(stream), peer))).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;
    use crate::pki::LocalCa;

    /// Serves TLS on a fresh port; each accepted connection's peer info goes to the channel.
    async fn serve(tls: ServerTls) -> (SocketAddr, tokio::sync::mpsc::Receiver<PeerInfo>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut incoming = incoming(listener, Some(tls));
            while let Some(Ok(conn)) = incoming.next().await {
                let _ = tx.send(conn.peer().clone()).await;
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn peers_are_named_by_their_certificates() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = LocalCa::ensure(dir.path()).expect("ca");
        let server = ca
            .tls_config(ServiceId::Policy)
            .server("test")
            .expect("tls");
        let (addr, mut peers) = serve(server.expect("tls on")).await;
        let identity = ca.tls_config(ServiceId::Identity).client().expect("client");
        identity
            .expect("tls on")
            .connect("127.0.0.1", addr.port())
            .await
            .expect("handshake with a client certificate");
        let peer = peers.recv().await.expect("peer");
        assert_eq!(peer.service, Some(ServiceId::Identity));
        assert!(peer.tls);
        ClientTls::new(&ca.ca_path(), None)
            .expect("anonymous client")
            .connect("127.0.0.1", addr.port())
            .await
            .expect("handshake without a client certificate");
        assert_eq!(peers.recv().await.expect("peer").service, None);
        // A certificate from another CA is refused at the handshake.
        let other_dir = tempfile::tempdir().expect("dir");
        let other = LocalCa::ensure(other_dir.path()).expect("other ca");
        let (ca_path, cert, key) = (
            ca.ca_path(),
            other.tls_config(ServiceId::Identity).cert.expect("cert"),
            other.tls_config(ServiceId::Identity).key.expect("key"),
        );
        let forged = ClientTls::new(&ca_path, Some((&cert, &key))).expect("client");
        let attempt = forged.connect("127.0.0.1", addr.port()).await;
        // TLS 1.3 reports a refused client certificate on the first read, not the handshake.
        if let Ok(mut stream) = attempt {
            use tokio::io::AsyncReadExt as _;
            let mut buf = [0u8; 1];
            assert!(
                stream.read(&mut buf).await.is_err()
                    || stream.read(&mut buf).await.is_ok_and(|n| n == 0)
            );
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), peers.recv())
                .await
                .is_err(),
            "a foreign certificate got through"
        );
    }

    #[tokio::test]
    async fn rotated_files_are_served_without_a_restart() {
        let old_dir = tempfile::tempdir().expect("dir");
        let new_dir = tempfile::tempdir().expect("dir");
        let old = LocalCa::ensure(old_dir.path()).expect("old ca");
        let new = LocalCa::ensure(new_dir.path()).expect("new ca");
        // The server reads its files from a third place, as cert-manager's mount would be.
        let live = tempfile::tempdir().expect("dir");
        let install = |from: &LocalCa| {
            let tls = from.tls_config(ServiceId::Policy);
            for (src, name) in [
                (from.ca_path(), "ca.pem"),
                (tls.cert.expect("cert"), "policy.pem"),
                (tls.key.expect("key"), "policy-key.pem"),
            ] {
                std::fs::copy(src, live.path().join(name)).expect("copy");
            }
        };
        install(&old);
        let config = TlsConfig::in_dir(live.path(), ServiceId::Policy);
        let (addr, _peers) = serve(config.server("test").expect("tls").expect("on")).await;
        let trusting = |ca: &LocalCa| ClientTls::new(&ca.ca_path(), None).expect("client");
        trusting(&old)
            .connect("127.0.0.1", addr.port())
            .await
            .expect("the old certificate is served");
        // Rotate; file times have a coarse grain on some filesystems, so wait past a check.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        install(&new);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if trusting(&new)
                .connect("127.0.0.1", addr.port())
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the new certificate was never served"
            );
        }
        assert!(
            trusting(&old)
                .connect("127.0.0.1", addr.port())
                .await
                .is_err(),
            "the old CA still verifies the rotated server"
        );
    }
}
