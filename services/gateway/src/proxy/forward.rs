//! Plain HTTP through the proxy: the request streams to the container over the session's own
//! connection pool, the response streams back (never buffered, redirects never followed), and
//! a response body ends when the session stops running or nothing moves for the idle timeout.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use atrium_service_kit::http::HttpError;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{Request, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::proxy::access::{OpenGuard, Upstream};
use crate::proxy::rewrite::{self, Forwarded};

/// How long a container gets to start answering a request.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn forward(
    upstream: Arc<Upstream>,
    parts: Parts,
    body: Body,
    path: &str,
    forwarded: &Forwarded,
    idle_timeout: Duration,
) -> Response {
    match send(upstream, parts, body, path, forwarded, idle_timeout).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn send(
    upstream: Arc<Upstream>,
    parts: Parts,
    body: Body,
    path: &str,
    forwarded: &Forwarded,
    idle_timeout: Duration,
) -> Result<Response, HttpError> {
    let path_and_query = rewrite::upstream_path_and_query(path, parts.uri.query());
    let uri: Uri = format!("https://{}{path_and_query}", upstream.authority)
        .parse()
        .map_err(|_| HttpError::invalid("path", "not a valid path"))?;
    let headers = rewrite::request_headers(
        &parts.headers,
        &upstream.authority_header,
        &upstream.basic_auth,
        forwarded,
    );
    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    let guard = upstream.open();
    let sent = tokio::select! {
        () = upstream.ended.cancelled() => return Err(HttpError::not_found("session")),
        sent = tokio::time::timeout(RESPONSE_TIMEOUT, upstream.client.request(request)) => sent,
    };
    let response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::debug!(session_id = %upstream.id, error = %e, "proxy: container did not answer");
            return Err(HttpError::new(
                StatusCode::BAD_GATEWAY,
                "upstream",
                "the session's container did not answer",
            ));
        }
        Err(_) => {
            return Err(HttpError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "the session's container did not answer in time",
            ));
        }
    };
    let (mut head, incoming) = response.into_parts();
    rewrite::response_headers(
        &mut head.headers,
        &upstream.authority,
        &rewrite::prefix(upstream.id),
    );
    head.version = Version::default();
    let body = Watched {
        inner: incoming,
        ended: upstream.ended.clone().cancelled_owned(),
        idle: tokio::time::sleep(idle_timeout),
        idle_timeout,
        last: Instant::now(),
        _guard: guard,
    };
    Ok(Response::from_parts(head, Body::new(body)))
}

pin_project_lite::pin_project! {
    /// A container's response body that ends when the session stops running or no byte moves
    /// for the idle timeout.
    struct Watched {
        #[pin]
        inner: Incoming,
        #[pin]
        ended: WaitForCancellationFutureOwned,
        #[pin]
        idle: Sleep,
        idle_timeout: Duration,
        // The last frame; the timer is moved only when it fires (not on every frame).
        last: Instant,
        _guard: OpenGuard,
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if this.ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(std::io::Error::other("the session ended"))));
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            *this.last = Instant::now();
            return Poll::Ready(frame.map(|f| f.map_err(std::io::Error::other)));
        }
        loop {
            ready!(this.idle.as_mut().poll(cx));
            let deadline = *this.last + *this.idle_timeout;
            if deadline <= Instant::now() {
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no traffic for the idle timeout",
                ))));
            }
            this.idle.as_mut().reset(deadline);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
