//! What a streaming proxy in front of the workspace is tested and measured with:
//! `GET /ws/echo` (a WebSocket that sends every text and binary message back, choosing the first
//! subprotocol the client offers, as websockify does with `binary`), `GET /ws/open` (how many
//! echo sockets are open now) and `GET /bytes?n=<n>` (n bytes, at most [`MAX_BYTES`], without
//! copying).

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{SinkExt as _, StreamExt as _};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The largest `/bytes` body.
pub const MAX_BYTES: usize = 16 << 20;
/// The largest echoed message.
pub const MAX_MESSAGE: usize = 64 << 20;

static BYTES: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(vec![b'x'; MAX_BYTES]));

/// Open echo sockets.
#[derive(Debug, Default, Clone)]
pub struct OpenSockets(Arc<AtomicUsize>);

impl OpenSockets {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

struct Open(OpenSockets);

impl Drop for Open {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `GET /bytes?n=<n>`; `None`: `n` missing, not a number or too large.
pub fn bytes(query: Option<&str>) -> Option<Bytes> {
    let n: usize = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("n="))?
        .parse()
        .ok()?;
    (n <= MAX_BYTES).then(|| BYTES.slice(..n))
}

/// Answers a WebSocket handshake on `/ws/echo` and echoes on the upgraded connection;
/// `Err(status)` for a request that is not a WebSocket handshake.
pub fn upgrade(
    mut request: Request<Incoming>,
    open: &OpenSockets,
) -> Result<Response<Full<Bytes>>, StatusCode> {
    let headers = request.headers();
    let is_upgrade = headers
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        && headers
            .get(SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY).filter(|_| is_upgrade) else {
        return Err(StatusCode::BAD_REQUEST);
    };
    let accept = derive_accept_key(key.as_bytes());
    let protocol = headers
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, "websocket")
        .header(SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(p) = protocol
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        response = response.header(SEC_WEBSOCKET_PROTOCOL, p);
    }
    let response = response
        .body(Full::new(Bytes::new()))
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let on_upgrade = hyper::upgrade::on(&mut request);
    open.0.fetch_add(1, Ordering::AcqRel);
    let guard = Open(open.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let mut socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        while let Some(Ok(message)) = socket.next().await {
            if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
                break;
            }
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_takes_n_up_to_the_limit() {
        assert_eq!(bytes(Some("n=5")).map(|b| b.len()), Some(5));
        assert_eq!(bytes(Some("a=1&n=0")).map(|b| b.len()), Some(0));
        assert_eq!(
            bytes(Some(&format!("n={MAX_BYTES}"))).map(|b| b.len()),
            Some(MAX_BYTES)
        );
        assert!(bytes(Some(&format!("n={}", MAX_BYTES + 1))).is_none());
        assert!(bytes(Some("n=x")).is_none());
        assert!(bytes(None).is_none());
    }
}
