//! Brute-force and exhaustion guards around sign-in: argon2 work runs under a concurrency limit
//! (so a flood of logins queues instead of exhausting CPU and memory), and `Login` is rate
//! limited per account and per source address with token buckets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use atrium_service_kit::{ApiError, ApiResult};
use tokio::sync::Semaphore;

use crate::config::IdentityConfig;
use crate::password;

/// Buckets kept per limiter before idle ones are dropped.
const MAX_BUCKETS: usize = 100_000;

/// Token buckets by key: `per_minute` tokens a minute, bursts up to `per_minute`.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_minute` = 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`; false when its bucket is empty.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            // Full buckets are the same as no bucket: forget them.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < capacity
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The guards sign-in passes through.
pub struct LoginGuard {
    hashing: Semaphore,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    per_account: RateLimiter,
    per_source: RateLimiter,
}

impl LoginGuard {
    pub fn new(config: &IdentityConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let permits = match config.password_hash_concurrency {
            0 => cores,
            n => usize::try_from(n).unwrap_or(cores),
        };
        Self {
            hashing: Semaphore::new(permits),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            per_account: RateLimiter::new(config.login_attempts_per_account_per_minute),
            per_source: RateLimiter::new(config.login_attempts_per_source_per_minute),
        }
    }

    /// Refuses a login attempt over the account's or the source's rate.
    pub fn admit_login(&self, username: &str, source: Option<IpAddr>) -> ApiResult<()> {
        let now = Instant::now();
        if let Some(ip) = source
            && !self.per_source.allow(&ip.to_string(), now)
        {
            return Err(ApiError::ResourceExhausted(
                "too many sign-in attempts from this address; wait a minute and try again".into(),
            ));
        }
        if !self.per_account.allow(&username.to_lowercase(), now) {
            return Err(ApiError::ResourceExhausted(
                "too many sign-in attempts for this account; wait a minute and try again".into(),
            ));
        }
        Ok(())
    }

    /// Verifies a password under the concurrency limit.
    pub async fn verify(&self, password: String, hash: String) -> ApiResult<bool> {
        let _permit = self.permit().await?;
        self.counted(password::verify(password, hash)).await
    }

    /// Hashes a password under the concurrency limit.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        let _permit = self.permit().await?;
        self.counted(password::hash(password)).await
    }

    /// The most argon2 computations that ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    async fn permit(&self) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
        self.hashing
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("the service is shutting down".into()))
    }

    async fn counted<T>(&self, work: impl Future<Output = T>) -> T {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        let result = work.await;
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn buckets_refill_over_time_and_keys_are_separate() {
        let limiter = RateLimiter::new(3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow("bob", t0)));
        assert!(!limiter.allow("bob", t0));
        assert!(limiter.allow("carol", t0));
        // One token back every 20 s.
        assert!(limiter.allow("bob", t0 + Duration::from_secs(21)));
        assert!(!limiter.allow("bob", t0 + Duration::from_secs(22)));
        assert!(RateLimiter::new(0).allow("anyone", t0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn argon2_runs_under_the_limit() {
        let config = IdentityConfig {
            password_hash_concurrency: 1,
            ..IdentityConfig::default()
        };
        let guard = Arc::new(LoginGuard::new(&config));
        let hash = guard.hash("some password here".into()).await.unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (guard, hash) = (guard.clone(), hash.clone());
                tokio::spawn(async move { guard.verify("wrong password".into(), hash).await })
            })
            .collect();
        for task in tasks {
            assert!(!task.await.unwrap().unwrap());
        }
        assert_eq!(guard.peak_concurrency(), 1);
    }
}
