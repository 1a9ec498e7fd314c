//! The session proxy (`/session/<id>/…` through the gateway) against the same container reached
//! directly (its HTTPS port, with the basic-auth header the bench adds itself), in one run, on
//! one real session of the demo workspace over the local Docker engine:
//!
//! - HTTP bytes/s of 16 MiB bodies (`GET /bytes?n=16777216`), one keep-alive connection;
//! - small requests (`GET /ws/open`, a few bytes): p50/p99 latency one at a time on one
//!   connection, and requests/s over 16 connections;
//! - WebSocket echo (`/ws/echo`): 1 KiB messages/s both ways, 64 in flight, one socket.
//!
//! The gateway listens on loopback with plain HTTP (the launcher's choice there) and speaks TLS
//! to the container; the direct path speaks TLS to the container. Each measurement alternates
//! direct and proxied runs and reports the median of each.
//!
//!   scripts/bench-gateway-proxy

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atrium_integration_tests::{Role, Sandbox, demo_workspace, user_with_settings};
use atrium_launcher::Caller;
use atrium_proto::session::v1 as pb;
use atrium_service_kit::auth::ServiceId;
use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const BIG: usize = 16 << 20;
const CONNECTIONS: usize = 16;
const WS_MESSAGE: usize = 1024;
const WS_WINDOW: usize = 64;
const RUN: Duration = Duration::from_secs(4);
const ROUNDS: usize = 3;

/// One way to the container.
#[derive(Clone)]
struct Path {
    name: &'static str,
    addr: SocketAddr,
    /// TLS (direct) or plain (the gateway on loopback).
    tls: bool,
    /// Prefix of every path (`/session/<id>` through the gateway).
    prefix: String,
    host: String,
    authorization: String,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

impl Path {
    async fn stream(&self) -> Box<dyn Io> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        if !self.tls {
            return Box::new(tcp);
        }
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        let name = ServerName::try_from("localhost").unwrap();
        Box::new(connector.connect(name, tcp).await.unwrap())
    }

    async fn connection(&self) -> SendRequest<Empty<Bytes>> {
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(self.stream().await))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    }

    /// `GET path`; the body's length (read, not kept).
    async fn get(&self, sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> usize {
        sender.ready().await.unwrap();
        let request = http::Request::get(format!("{}{path}", self.prefix))
            .header("host", &self.host)
            .header("authorization", &self.authorization)
            .body(Empty::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert!(
            response.status().is_success(),
            "{}: {}",
            self.name,
            response.status()
        );
        let mut body = response.into_body();
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.unwrap().data_ref() {
                n += data.len();
            }
        }
        n
    }

    async fn bytes_per_sec(&self) -> f64 {
        let mut sender = self.connection().await;
        let path = format!("/bytes?n={BIG}");
        let start = Instant::now();
        let mut total = 0usize;
        while start.elapsed() < RUN {
            total += self.get(&mut sender, &path).await;
        }
        total as f64 / start.elapsed().as_secs_f64()
    }

    /// (p50, p99) of one small request at a time.
    async fn latency(&self) -> (Duration, Duration) {
        let mut sender = self.connection().await;
        let mut samples = Vec::new();
        let start = Instant::now();
        while start.elapsed() < RUN {
            let t = Instant::now();
            self.get(&mut sender, "/ws/open").await;
            samples.push(t.elapsed());
        }
        samples.sort();
        (
            samples[samples.len() / 2],
            samples[samples.len() * 99 / 100],
        )
    }

    async fn requests_per_sec(&self, path: &'static str) -> f64 {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut sender = me.connection().await;
                let mut n = 0u64;
                while start.elapsed() < RUN {
                    me.get(&mut sender, path).await;
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / start.elapsed().as_secs_f64()
    }

    /// Echoed messages per second (each crosses both ways), `WS_WINDOW` in flight.
    async fn ws_messages_per_sec(&self) -> f64 {
        let scheme = if self.tls { "wss" } else { "ws" };
        let mut request = format!("{scheme}://{}{}/ws/echo", self.host, self.prefix)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", self.authorization.parse().unwrap());
        let (socket, _) = tokio_tungstenite::client_async(request, self.stream().await)
            .await
            .unwrap();
        let (mut tx, mut rx) = socket.split();
        let payload = Bytes::from(vec![0x5a; WS_MESSAGE]);
        let (credit_tx, mut credit_rx) = tokio::sync::mpsc::channel::<()>(WS_WINDOW);
        for _ in 0..WS_WINDOW {
            credit_tx.send(()).await.unwrap();
        }
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            while credit_rx.recv().await.is_some() && start.elapsed() < RUN {
                tx.send(Message::Binary(payload.clone())).await.unwrap();
            }
            tx
        });
        let mut received = 0u64;
        let give_up = tokio::time::Instant::from_std(start + RUN + Duration::from_secs(1));
        while start.elapsed() < RUN {
            let Ok(next) = tokio::time::timeout_at(give_up, rx.next()).await else {
                break;
            };
            match next {
                Some(Ok(Message::Binary(data))) => {
                    assert_eq!(data.len(), WS_MESSAGE);
                    received += 1;
                    let _ = credit_tx.send(()).await;
                }
                Some(Ok(_)) => {}
                other => panic!("{}: websocket ended: {other:?}", self.name),
            }
        }
        let rate = received as f64 / start.elapsed().as_secs_f64();
        drop(credit_tx);
        let mut tx = sender.await.unwrap();
        let _ = tx.close().await;
        rate
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_d(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn proxy() {
    let image = atrium_integration_tests::demo_image().expect("the demo image");
    let sandbox = Sandbox::start(&[
        Role::Identity,
        Role::Policy,
        Role::SessionManager,
        Role::Agent,
        Role::Gateway,
    ])
    .await
    .unwrap();
    let admin = sandbox.admin().unwrap().clone();
    let workspace = demo_workspace(sandbox.running(), &admin, &image, 1.0, 512)
        .await
        .unwrap();
    let user = user_with_settings(sandbox.running(), &admin, "proxy-bench", &[])
        .await
        .unwrap();
    let mut own = sandbox
        .running()
        .session(&Caller::User(user.credential.clone()))
        .await
        .unwrap();
    let id = own
        .request_session(pb::RequestSessionRequest {
            workspace_id: workspace,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let deadline = Instant::now() + Duration::from_secs(90);
    while own
        .get_session(pb::GetSessionRequest {
            session_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .observed_state
        != pb::ObservedState::Running as i32
    {
        assert!(Instant::now() < deadline, "the session did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The container's address and password, as the gateway reads them.
    let secret = sandbox
        .running()
        .session(&Caller::Service(ServiceId::Gateway))
        .await
        .unwrap()
        .get_session_secret(pb::SessionRef {
            session_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let container: SocketAddr = tokio::net::lookup_host((secret.host.as_str(), secret.port as u16))
        .await
        .unwrap()
        .next()
        .unwrap();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", secret.username, secret.password));
    let direct = Path {
        name: "direct",
        addr: container,
        tls: true,
        prefix: String::new(),
        host: format!("{}:{}", secret.host, secret.port),
        authorization: format!("Basic {basic}"),
    };
    let gateway_url = sandbox.endpoint(Role::Gateway).unwrap();
    let gateway_host = gateway_url.trim_start_matches("http://").to_owned();
    let proxied = Path {
        name: "gateway",
        addr: gateway_host.parse().unwrap(),
        tls: false,
        prefix: format!("/session/{id}"),
        host: gateway_host,
        authorization: user.credential.header_value(),
    };

    // The gateway's own HTTP stack with nothing behind it, for reference.
    let gateway_alone = Path {
        name: "gateway /healthz",
        prefix: String::new(),
        ..proxied.clone()
    };
    // Warm both (connections, the gateway's grant and upstream).
    for p in [&direct, &proxied] {
        let mut s = p.connection().await;
        for _ in 0..50 {
            p.get(&mut s, "/ws/open").await;
        }
    }
    let (mut bd, mut bp) = (Vec::new(), Vec::new());
    let (mut ld, mut lp, mut l99d, mut l99p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut rd, mut rp, mut rh) = (Vec::new(), Vec::new(), Vec::new());
    let (mut wd, mut wp) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        bd.push(direct.bytes_per_sec().await);
        bp.push(proxied.bytes_per_sec().await);
        let (p50, p99) = direct.latency().await;
        ld.push(p50);
        l99d.push(p99);
        let (p50, p99) = proxied.latency().await;
        lp.push(p50);
        l99p.push(p99);
        rd.push(direct.requests_per_sec("/ws/open").await);
        rp.push(proxied.requests_per_sec("/ws/open").await);
        rh.push(gateway_alone.requests_per_sec("/healthz").await);
        wd.push(direct.ws_messages_per_sec().await);
        wp.push(proxied.ws_messages_per_sec().await);
    }
    let mib = |b: f64| b / f64::from(1u32 << 20);
    let (bd, bp) = (median(bd), median(bp));
    let (ld, lp, l99d, l99p) = (median_d(ld), median_d(lp), median_d(l99d), median_d(l99p));
    let (rd, rp, rh) = (median(rd), median(rp), median(rh));
    let (wd, wp) = (median(wd), median(wp));
    println!(
        "session proxy, one demo-workspace session, medians of {ROUNDS} alternating runs of {RUN:?}:"
    );
    println!("                                      direct       gateway     ratio / added");
    println!(
        "  16 MiB bodies, MiB/s               {:>9.1}     {:>9.1}     {:.3}   (target ≥ 0.8)",
        mib(bd),
        mib(bp),
        bp / bd
    );
    println!(
        "  small GET, p50 one at a time       {:>9.3?}   {:>9.3?}   +{:.3?} (target ≤ 1 ms)",
        ld,
        lp,
        lp.saturating_sub(ld)
    );
    println!(
        "  small GET, p99 one at a time       {:>9.3?}   {:>9.3?}   +{:.3?}",
        l99d,
        l99p,
        l99p.saturating_sub(l99d)
    );
    println!(
        "  small GET/s, {CONNECTIONS} connections        {:>9.0}     {:>9.0}     {:.3}   (target ≥ 0.8)",
        rd,
        rp,
        rp / rd
    );
    println!(
        "  (reference) gateway GET /healthz/s, {CONNECTIONS} connections, no upstream: {rh:.0}"
    );
    println!(
        "  WebSocket 1 KiB echoes/s           {:>9.0}     {:>9.0}     {:.3}   (target ≥ 0.8)",
        wd,
        wp,
        wp / wd
    );
    own.delete(pb::SessionRef { session_id: id }).await.unwrap();
    sandbox.stop().await.ok();
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The container's certificate is self-signed: accepted, handshake signatures still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["proxy"];
    let chosen: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for which in chosen {
        match which {
            "proxy" => proxy().await,
            other => panic!("unknown benchmark {other}; one of {all:?}"),
        }
    }
}
