//! WebSockets through the proxy. The container's socket is opened first (TLS, the session's
//! basic auth, the client's subprotocols), so a refusal reaches the client as an HTTP error and
//! the subprotocol the container chose is the one the client gets. Then frames are pumped both
//! ways, each direction on its own so a slow reader on one side never stalls the other: text,
//! binary, ping and pong as they come, up to [`MAX_MESSAGE`]. Whichever side closes, the other is
//! closed; so is everything when the session stops running or nothing moves for the idle
//! timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atrium_service_kit::http::HttpError;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt as _, Stream, StreamExt as _};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig, frame::coding};
use tokio_tungstenite::tungstenite::{self as ts, Utf8Bytes};

use crate::proxy::access::Upstream;
use crate::proxy::rewrite::{self, Forwarded};

/// The largest message (and frame) either way: a desktop's framebuffer updates can be large.
pub const MAX_MESSAGE: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long closing each side may take once the bridge ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

type UpstreamSocket = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Opens the container's socket, then answers the client's upgrade.
pub async fn bridge(
    upstream: Arc<Upstream>,
    tls: TlsConnector,
    mut upgrade: WebSocketUpgrade,
    parts: &Parts,
    path: &str,
    forwarded: &Forwarded,
    idle_timeout: Duration,
) -> Response {
    let protocols: Vec<&HeaderValue> = upgrade.requested_protocols().collect();
    let socket = match connect(&upstream, &tls, parts, path, forwarded, &protocols).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let (socket, chosen) = socket;
    if let Some(chosen) = chosen {
        upgrade.set_selected_protocol(chosen);
    }
    let guard = upstream.open();
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |client| async move {
            pump(client, socket, &upstream, idle_timeout).await;
            drop(guard);
        })
}

async fn connect(
    upstream: &Upstream,
    tls: &TlsConnector,
    parts: &Parts,
    path: &str,
    forwarded: &Forwarded,
    protocols: &[&HeaderValue],
) -> Result<(UpstreamSocket, Option<HeaderValue>), HttpError> {
    let bad_gateway = |what: &str| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            format!("the session's container {what}"),
        )
    };
    let path_and_query = rewrite::upstream_path_and_query(path, parts.uri.query());
    let mut request = format!("wss://{}{path_and_query}", upstream.authority)
        .into_client_request()
        .map_err(|_| HttpError::invalid("path", "not a valid path"))?;
    // The client's end-to-end headers (its user agent, language, the workspace's own cookies),
    // with the same stripping as plain HTTP; the handshake headers are tungstenite's.
    let mut headers = rewrite::request_headers(
        &parts.headers,
        &upstream.authority_header,
        &upstream.basic_auth,
        forwarded,
    );
    for name in [
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_EXTENSIONS,
        header::SEC_WEBSOCKET_PROTOCOL,
        header::SEC_WEBSOCKET_ACCEPT,
        header::ORIGIN,
    ] {
        headers.remove(name);
    }
    if !protocols.is_empty() {
        let joined = protocols
            .iter()
            .filter_map(|p| p.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(v) = HeaderValue::from_str(&joined) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    for (name, value) in &headers {
        request.headers_mut().insert(name, value.clone());
    }
    let server_name = ServerName::try_from(upstream.host.trim_matches(['[', ']']).to_owned())
        .map_err(|_| bad_gateway("has no valid address"))?;
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let tcp = TcpStream::connect((upstream.host.trim_matches(['[', ']']), upstream.port))
            .await
            .map_err(|_| bad_gateway("did not answer"))?;
        let _ = tcp.set_nodelay(true);
        let tls = tls
            .connect(server_name, tcp)
            .await
            .map_err(|_| bad_gateway("failed the TLS handshake"))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        tokio_tungstenite::client_async_with_config(request, tls, Some(config))
            .await
            .map_err(|e| match e {
                ts::Error::Http(response) => {
                    bad_gateway(&format!("refused the WebSocket ({})", response.status()))
                }
                _ => bad_gateway("failed the WebSocket handshake"),
            })
    });
    let (socket, response) = tokio::select! {
        () = upstream.ended.cancelled() => return Err(HttpError::not_found("session")),
        opened = opened => opened.map_err(|_| bad_gateway("did not answer in time"))??,
    };
    let chosen = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .filter(|chosen| protocols.contains(chosen))
        .cloned();
    Ok((socket, chosen))
}

/// Why a bridge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Client,
    Upstream,
    SessionEnded,
    Idle,
}

async fn pump(
    client: WebSocket,
    upstream_socket: UpstreamSocket,
    upstream: &Upstream,
    idle: Duration,
) {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (mut to_client, mut from_client) = client.split();
    let (mut to_upstream, mut from_upstream) = upstream_socket.split();
    let end = {
        let up = relay(
            &mut from_client,
            &mut to_upstream,
            &last,
            start,
            client_to_upstream,
        );
        let down = relay(
            &mut from_upstream,
            &mut to_client,
            &last,
            start,
            upstream_to_client,
        );
        tokio::select! {
            () = up => End::Client,
            () = down => End::Upstream,
            () = upstream.ended.cancelled() => End::SessionEnded,
            () = idle_for(idle, &last, start) => End::Idle,
        }
    };
    tracing::debug!(session_id = %upstream.id, ?end, "proxy: websocket closed");
    let (code, reason) = match end {
        End::SessionEnded => (coding::CloseCode::Away, "the session ended"),
        End::Idle => (coding::CloseCode::Away, "idle"),
        End::Client | End::Upstream => (coding::CloseCode::Normal, ""),
    };
    // The side that closed got its close answered by its relay; the other gets one now.
    let close_client = async {
        if end != End::Client {
            let frame = ws::CloseFrame {
                code: code.into(),
                reason: reason.into(),
            };
            let _ = to_client.send(ws::Message::Close(Some(frame))).await;
        }
        let _ = to_client.close().await;
    };
    let close_upstream = async {
        if end != End::Upstream {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = to_upstream.send(ts::Message::Close(Some(frame))).await;
        }
        let _ = to_upstream.close().await;
    };
    let _ = tokio::time::timeout(
        CLOSE_TIMEOUT,
        futures::future::join(close_client, close_upstream),
    )
    .await;
}

/// Moves messages from one side to the other until the source closes or fails (a close frame
/// is passed on first).
async fn relay<S, K, A, B, E>(
    from: &mut S,
    to: &mut K,
    last: &AtomicU64,
    start: Instant,
    convert: fn(A) -> Option<(B, bool)>,
) where
    S: Stream<Item = Result<A, E>> + Unpin,
    K: Sink<B> + Unpin,
{
    while let Some(Ok(message)) = from.next().await {
        last.store(elapsed_ms(start), Ordering::Relaxed);
        let Some((message, is_close)) = convert(message) else {
            continue;
        };
        if to.send(message).await.is_err() || is_close {
            return;
        }
    }
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Resolves once nothing moved for `idle`.
async fn idle_for(idle: Duration, last: &AtomicU64, start: Instant) {
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        let since = elapsed_ms(start).saturating_sub(last.load(Ordering::Relaxed));
        if since >= idle_ms {
            return;
        }
        tokio::time::sleep(Duration::from_millis(idle_ms - since)).await;
    }
}

/// A client message for the container; `true` when it is a close.
fn client_to_upstream(message: ws::Message) -> Option<(ts::Message, bool)> {
    Some(match message {
        ws::Message::Text(text) => {
            let bytes = bytes::Bytes::from(text);
            (ts::Message::Text(Utf8Bytes::try_from(bytes).ok()?), false)
        }
        ws::Message::Binary(data) => (ts::Message::Binary(data), false),
        ws::Message::Ping(data) => (ts::Message::Ping(data), false),
        ws::Message::Pong(data) => (ts::Message::Pong(data), false),
        ws::Message::Close(frame) => (
            ts::Message::Close(frame.map(|f| CloseFrame {
                code: close_code(f.code),
                reason: Utf8Bytes::try_from(bytes::Bytes::from(f.reason)).unwrap_or_default(),
            })),
            true,
        ),
    })
}

/// A container message for the client; `true` when it is a close.
fn upstream_to_client(message: ts::Message) -> Option<(ws::Message, bool)> {
    Some(match message {
        ts::Message::Text(text) => {
            let bytes = bytes::Bytes::from(text);
            (
                ws::Message::Text(ws::Utf8Bytes::try_from(bytes).ok()?),
                false,
            )
        }
        ts::Message::Binary(data) => (ws::Message::Binary(data), false),
        ts::Message::Ping(data) => (ws::Message::Ping(data), false),
        ts::Message::Pong(data) => (ws::Message::Pong(data), false),
        ts::Message::Close(frame) => (
            ws::Message::Close(frame.map(|f| ws::CloseFrame {
                code: close_code(u16::from(f.code)).into(),
                reason: ws::Utf8Bytes::try_from(bytes::Bytes::from(f.reason)).unwrap_or_default(),
            })),
            true,
        ),
        // Raw frames only appear when writing; nothing to pass on.
        ts::Message::Frame(_) => return None,
    })
}

/// A close code that may be sent on (1005, 1006 and 1015 are never sent in a frame).
fn close_code(code: u16) -> coding::CloseCode {
    match coding::CloseCode::from(code) {
        coding::CloseCode::Status | coding::CloseCode::Abnormal | coding::CloseCode::Tls => {
            coding::CloseCode::Normal
        }
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_unchanged() {
        let big = bytes::Bytes::from(vec![7u8; 1 << 20]);
        let (m, close) = client_to_upstream(ws::Message::Binary(big.clone())).expect("some");
        assert_eq!(m, ts::Message::Binary(big.clone()));
        assert!(!close);
        let (m, _) = upstream_to_client(ts::Message::Binary(big.clone())).expect("some");
        assert_eq!(m, ws::Message::Binary(big));
        let (m, _) = client_to_upstream(ws::Message::Text("héllo".into())).expect("some");
        assert_eq!(m, ts::Message::Text("héllo".into()));
        let (m, _) = upstream_to_client(ts::Message::Text("héllo".into())).expect("some");
        assert_eq!(m, ws::Message::Text("héllo".into()));
        let (m, _) = client_to_upstream(ws::Message::Ping("p".into())).expect("some");
        assert_eq!(m, ts::Message::Ping("p".into()));
        let (m, _) = upstream_to_client(ts::Message::Pong("p".into())).expect("some");
        assert_eq!(m, ws::Message::Pong("p".into()));
    }

    #[test]
    fn closes_cross_with_their_code_and_reason() {
        let (m, close) = client_to_upstream(ws::Message::Close(Some(ws::CloseFrame {
            code: 4001,
            reason: "bye".into(),
        })))
        .expect("some");
        assert!(close);
        assert_eq!(
            m,
            ts::Message::Close(Some(CloseFrame {
                code: coding::CloseCode::from(4001),
                reason: "bye".into()
            }))
        );
        let (m, close) = upstream_to_client(ts::Message::Close(Some(CloseFrame {
            code: coding::CloseCode::Abnormal,
            reason: "".into(),
        })))
        .expect("some");
        assert!(close);
        assert_eq!(
            m,
            ws::Message::Close(Some(ws::CloseFrame {
                code: 1000,
                reason: "".into()
            }))
        );
        assert_eq!(
            upstream_to_client(ts::Message::Close(None)).expect("some"),
            (ws::Message::Close(None), true)
        );
    }
}
