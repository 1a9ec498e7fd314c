//! The resolved-policy cache: entries keyed by user, dropped wholesale on any local write and aged
//! out after a TTL (for writes made through other replicas).
//!
//! Two things keep a busy user's calls off the database:
//! - **Single flight.** When an entry is missing or stale, one caller resolves it and the
//!   others for the same user wait for that result instead of each querying the database (50
//!   callers missing together would otherwise run 50 resolutions back to back).
//! - **Refresh ahead.** Once an entry has lived three quarters of its TTL, the next caller
//!   resolves it again while every other caller keeps being served the entry, which is still
//!   within its TTL. An active user's entry is so replaced before it expires, and nobody waits.
//!
//! No entry is ever served past its TTL or across a local write (the generation check), not
//! even when a refresh fails. When a resolution fails, the callers that were waiting for it fail
//! with it at once instead of each trying again in turn.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

struct Entry<V> {
    value: Arc<V>,
    at: Instant,
    generation: u64,
    /// A caller is resolving a replacement (refresh ahead).
    refreshing: bool,
}

pub struct Cache<V> {
    ttl: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry<V>>>,
    /// One gate per key being resolved after a miss: the single flight. It holds the last
    /// attempt's outcome for the callers that waited on it.
    gates: Mutex<HashMap<String, Gate<V>>>,
    resolutions: Counter,
}

/// Where callers for one key queue after a miss.
type Gate<V> = Arc<tokio::sync::Mutex<Option<Attempt<V>>>>;

/// How the last resolution behind a gate ended, and when.
enum Attempt<V> {
    Resolved {
        value: Arc<V>,
        at: Instant,
        generation: u64,
    },
    Failed {
        at: Instant,
    },
}

/// What callers get when the resolution they waited for failed (its caller got the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolutionFailed;

impl std::fmt::Display for ResolutionFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("resolving the policy failed; try again")
    }
}

impl From<ResolutionFailed> for atrium_service_kit::ApiError {
    fn from(failed: ResolutionFailed) -> Self {
        Self::Unavailable(failed.to_string())
    }
}

#[cfg(test)]
impl From<ResolutionFailed> for String {
    fn from(failed: ResolutionFailed) -> Self {
        failed.to_string()
    }
}

/// What a lookup found.
enum Lookup<V> {
    Fresh(Arc<V>),
    /// Fresh, and this caller has been picked to refresh it ahead of expiry.
    Refresh(Arc<V>),
    Miss,
}

/// Above this many entries the map is cleared rather than grown.
const MAX_ENTRIES: usize = 100_000;

impl<V> Cache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            resolutions: Counter::default(),
        }
    }

    /// Forget every entry: call after any write that can change one. A resolution that started
    /// before the call is not cached when it finishes.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.entries).clear();
    }

    /// How many times `get` has run its resolver.
    pub fn resolutions(&self) -> u64 {
        self.resolutions.get()
    }

    /// The same count, as a metric to register.
    pub fn resolutions_metric(&self) -> Counter {
        self.resolutions.clone()
    }

    /// The cached value for `key`, or the one `resolve` produces, shared with every concurrent
    /// caller for the same key. Callers that waited for a resolution that failed get
    /// `E::from(ResolutionFailed)` at once rather than each trying again in turn.
    pub async fn get<E, F, Fut>(&self, key: &str, resolve: F) -> Result<Arc<V>, E>
    where
        E: From<ResolutionFailed>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        match self.lookup(key, true) {
            Lookup::Fresh(value) => return Ok(value),
            Lookup::Refresh(current) => {
                let (result, _) = self.resolve_and_store(key, resolve).await;
                return match result {
                    Ok(value) => Ok(value),
                    // The current entry, if it is still valid (same generation, within its
                    // TTL), is served, and a later caller tries the refresh again.
                    Err(e) => self.still_valid(key, &current).ok_or(e),
                };
            }
            Lookup::Miss => {}
        }
        let arrived = Instant::now();
        let gate = lock(&self.gates).entry(key.to_owned()).or_default().clone();
        let result = {
            let mut turn = gate.lock().await;
            match self.lookup(key, false) {
                Lookup::Fresh(value) | Lookup::Refresh(value) => Ok(value),
                // An attempt that finished while this caller waited answers it too.
                Lookup::Miss => match &*turn {
                    Some(Attempt::Failed { at }) if *at >= arrived => {
                        Err(E::from(ResolutionFailed))
                    }
                    Some(Attempt::Resolved {
                        value,
                        at,
                        generation,
                    }) if *at >= arrived
                        && *generation == self.generation.load(Ordering::SeqCst) =>
                    {
                        Ok(value.clone())
                    }
                    _ => {
                        let (result, generation) = self.resolve_and_store(key, resolve).await;
                        let at = Instant::now();
                        *turn = Some(match &result {
                            Ok(value) => Attempt::Resolved {
                                value: value.clone(),
                                at,
                                generation,
                            },
                            Err(_) => Attempt::Failed { at },
                        });
                        result
                    }
                },
            }
        };
        let mut gates = lock(&self.gates);
        // Drop the gate once nobody else holds it (the map's copy and ours are the last two).
        if gates
            .get(key)
            .is_some_and(|g| Arc::ptr_eq(g, &gate) && Arc::strong_count(g) == 2)
        {
            gates.remove(key);
        }
        result
    }

    /// `current` if it is still the entry for `key`, of this generation and within its TTL;
    /// clears its refreshing mark so that a later caller refreshes it.
    fn still_valid(&self, key: &str, current: &Arc<V>) -> Option<Arc<V>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(key)?;
        entry.refreshing = false;
        (Arc::ptr_eq(&entry.value, current)
            && entry.generation == generation
            && entry.at.elapsed() < self.ttl)
            .then(|| current.clone())
    }

    fn lookup(&self, key: &str, may_refresh: bool) -> Lookup<V> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut entries = lock(&self.entries);
        let Some(entry) = entries.get_mut(key) else {
            return Lookup::Miss;
        };
        let age = entry.at.elapsed();
        if entry.generation != generation || age >= self.ttl {
            return Lookup::Miss;
        }
        if may_refresh && !entry.refreshing && age >= self.ttl / 4 * 3 {
            entry.refreshing = true;
            return Lookup::Refresh(entry.value.clone());
        }
        Lookup::Fresh(entry.value.clone())
    }

    /// Resolves and caches (unless a write raced with it); also returns the generation the
    /// resolution started in.
    async fn resolve_and_store<E, F, Fut>(&self, key: &str, resolve: F) -> (Result<Arc<V>, E>, u64)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let generation = self.generation.load(Ordering::SeqCst);
        let at = Instant::now();
        self.resolutions.inc();
        let value = match resolve().await {
            Ok(value) => Arc::new(value),
            Err(e) => return (Err(e), generation),
        };
        let mut entries = lock(&self.entries);
        // A write that raced with this resolution bumped the generation: don't cache stale data.
        if self.generation.load(Ordering::SeqCst) == generation {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
                entries.clear();
            }
            entries.insert(
                key.to_owned(),
                Entry {
                    value: value.clone(),
                    at,
                    generation,
                    refreshing: false,
                },
            );
        }
        (Ok(value), generation)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that counts its calls and takes `delay` to answer `value`.
    async fn slow(delay: Duration, value: u32) -> Result<u32, String> {
        tokio::time::sleep(delay).await;
        Ok(value)
    }

    #[tokio::test]
    async fn concurrent_misses_resolve_once() {
        let cache = Arc::new(Cache::new(Duration::from_secs(60)));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    cache
                        .get("u", || slow(Duration::from_millis(50), 7))
                        .await
                        .map(|v| *v)
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(cache.resolutions(), 1);
        assert!(lock(&cache.gates).is_empty(), "gates are dropped after use");
    }

    #[tokio::test]
    async fn different_keys_resolve_separately() {
        let cache = Cache::new(Duration::from_secs(60));
        let (a, b) = tokio::join!(
            cache.get("a", || slow(Duration::from_millis(10), 1)),
            cache.get("b", || slow(Duration::from_millis(10), 2)),
        );
        assert_eq!((*a.unwrap(), *b.unwrap()), (1, 2));
        assert_eq!(cache.resolutions(), 2);
    }

    #[tokio::test]
    async fn a_failed_resolution_is_not_cached_and_the_next_caller_retries() {
        let cache = Cache::<u32>::new(Duration::from_secs(60));
        let err = cache
            .get("u", || async { Err::<u32, _>("down".to_owned()) })
            .await;
        assert_eq!(err, Err("down".to_owned()));
        let ok = cache.get("u", || slow(Duration::ZERO, 3)).await;
        assert_eq!(ok.map(|v| *v), Ok(3));
        assert_eq!(cache.resolutions(), 2);
    }

    #[tokio::test]
    async fn one_caller_refreshes_ahead_while_the_others_are_served() {
        let ttl = Duration::from_millis(400);
        let cache = Arc::new(Cache::new(ttl));
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 1)).await.unwrap(),
            1
        );
        // Within the first three quarters: served from cache, no resolution.
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 9)).await.unwrap(),
            1
        );
        assert_eq!(cache.resolutions(), 1);

        tokio::time::sleep(ttl / 4 * 3 + Duration::from_millis(20)).await;
        let refresher = {
            let cache = cache.clone();
            tokio::spawn(async move {
                *cache
                    .get("u", || slow(Duration::from_millis(60), 2))
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // While the refresh runs, others get the old value at once and resolve nothing.
        let started = Instant::now();
        for _ in 0..10 {
            assert_eq!(
                *cache.get("u", || slow(Duration::ZERO, 9)).await.unwrap(),
                1
            );
        }
        assert!(started.elapsed() < Duration::from_millis(30));
        assert_eq!(refresher.await.unwrap(), 2);
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 9)).await.unwrap(),
            2
        );
        assert_eq!(cache.resolutions(), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_serving_the_entry_until_its_ttl() {
        let ttl = Duration::from_millis(200);
        let cache = Cache::new(ttl);
        cache.get("u", || slow(Duration::ZERO, 1)).await.unwrap();
        tokio::time::sleep(ttl / 4 * 3 + Duration::from_millis(10)).await;
        let served = cache
            .get("u", || async { Err::<u32, _>("down".to_owned()) })
            .await;
        assert_eq!(served.map(|v| *v), Ok(1));
        // The next caller may try again.
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 2)).await.unwrap(),
            2
        );
    }

    #[tokio::test]
    async fn expired_entries_are_never_served() {
        let ttl = Duration::from_millis(50);
        let cache = Cache::new(ttl);
        cache.get("u", || slow(Duration::ZERO, 1)).await.unwrap();
        tokio::time::sleep(ttl + Duration::from_millis(10)).await;
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 2)).await.unwrap(),
            2
        );
    }

    #[tokio::test]
    async fn invalidation_drops_entries_and_discards_racing_resolutions() {
        let cache = Arc::new(Cache::new(Duration::from_secs(60)));
        cache.get("u", || slow(Duration::ZERO, 1)).await.unwrap();
        cache.invalidate();
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 2)).await.unwrap(),
            2
        );

        // A resolution in flight while a write lands returns its answer but is not cached.
        cache.invalidate();
        let racing = {
            let cache = cache.clone();
            tokio::spawn(async move {
                *cache
                    .get("u", || slow(Duration::from_millis(50), 3))
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        cache.invalidate();
        assert_eq!(racing.await.unwrap(), 3);
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 4)).await.unwrap(),
            4
        );
    }

    async fn failing(delay: Duration) -> Result<u32, String> {
        tokio::time::sleep(delay).await;
        Err("down".to_owned())
    }

    #[tokio::test]
    async fn a_failed_refresh_never_serves_an_entry_past_its_ttl_or_a_write() {
        let ttl = Duration::from_millis(200);
        let cache = Cache::new(ttl);
        cache.get("u", || slow(Duration::ZERO, 1)).await.unwrap();
        tokio::time::sleep(ttl / 4 * 3 + Duration::from_millis(10)).await;
        // The refresh fails after the entry's TTL has run out: an error, not the old value.
        let late = cache.get("u", || failing(Duration::from_millis(100))).await;
        assert_eq!(late, Err("down".to_owned()));

        let cache = Arc::new(Cache::new(ttl));
        cache.get("u", || slow(Duration::ZERO, 1)).await.unwrap();
        tokio::time::sleep(ttl / 4 * 3 + Duration::from_millis(10)).await;
        let refresh = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get("u", || failing(Duration::from_millis(20)))
                    .await
                    .map(|v| *v)
            })
        };
        // A write lands while the refresh runs: the old value is not served either.
        cache.invalidate();
        assert_eq!(refresh.await.unwrap(), Err("down".to_owned()));
    }

    #[tokio::test]
    async fn callers_waiting_on_a_failed_resolution_fail_with_it_at_once() {
        let cache = Arc::new(Cache::<u32>::new(Duration::from_secs(60)));
        let started = Instant::now();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    cache
                        .get("u", || failing(Duration::from_millis(100)))
                        .await
                        .map(|v| *v)
                })
            })
            .collect();
        let mut errors = Vec::new();
        for task in tasks {
            errors.push(task.await.unwrap().unwrap_err());
        }
        // One attempt, not twenty in a row.
        assert_eq!(cache.resolutions(), 1);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(errors.iter().filter(|e| *e == "down").count(), 1);
        assert!(
            errors
                .iter()
                .all(|e| e == "down" || e.contains("try again")),
            "{errors:?}"
        );
        // The next caller, arriving after the failure, tries again.
        assert_eq!(
            *cache.get("u", || slow(Duration::ZERO, 5)).await.unwrap(),
            5
        );
    }

    #[tokio::test]
    async fn with_no_ttl_concurrent_callers_still_share_one_resolution() {
        let cache = Arc::new(Cache::new(Duration::ZERO));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    *cache
                        .get("u", || slow(Duration::from_millis(50), 1))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 1);
        }
        assert_eq!(cache.resolutions(), 1);
        // Nothing is cached: the next caller resolves again.
        cache.get("u", || slow(Duration::ZERO, 2)).await.unwrap();
        assert_eq!(cache.resolutions(), 2);
    }
}
