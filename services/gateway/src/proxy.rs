//! `/session/<id>/…`: the streaming proxy to a session's container.

use std::time::Duration;

use axum::Router;

use crate::AppState;
use crate::backends::Backends;

pub struct Proxy {
    #[allow(dead_code)]
    backends: Backends,
    #[allow(dead_code)]
    idle_timeout: Duration,
}

impl Proxy {
    pub fn new(backends: Backends, idle_timeout: Duration) -> Self {
        Self {
            backends,
            idle_timeout,
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
}
