//! Rate limits: a token bucket per key (a client address for logins, an API key for the
//! Developer API), refilled evenly, answered with 429 and Retry-After when empty.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atrium_service_kit::http::HttpError;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

pub struct RateLimiter {
    /// Tokens added per second.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Buckets kept before full ones are forgotten (a full bucket is the same as no bucket).
const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: f64) -> Self {
        Self {
            rate: rate_per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// The 429 answer, in the API's error shape, with Retry-After.
pub fn too_many(wait: Duration, what: &str) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "resource_exhausted",
        format!("too many {what}; try again in {secs} s"),
    )
    .into_response();
    if let Ok(value) = secs.to_string().parse() {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_then_refill() {
        let limiter = RateLimiter::new(1000.0, 3.0);
        for _ in 0..3 {
            assert!(limiter.take("a").is_ok());
        }
        let wait = limiter.take("a").expect_err("empty");
        assert!(wait <= Duration::from_millis(2), "{wait:?}");
        assert!(limiter.take("b").is_ok(), "keys are separate");
        std::thread::sleep(Duration::from_millis(5));
        assert!(limiter.take("a").is_ok());
    }
}
