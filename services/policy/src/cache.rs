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
//! No entry is ever served past its TTL or across a local write (the generation check).

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
    /// One gate per key being resolved after a miss: the single flight.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    resolutions: Counter,
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
    /// caller for the same key.
    pub async fn get<E, F, Fut>(&self, key: &str, resolve: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        match self.lookup(key, true) {
            Lookup::Fresh(value) => return Ok(value),
            Lookup::Refresh(current) => {
                return match self.resolve_and_store(key, resolve).await {
                    Ok(value) => Ok(value),
                    Err(_) => {
                        // The current entry is still within its TTL: serve it and let a later
                        // caller try the refresh again.
                        if let Some(entry) = lock(&self.entries).get_mut(key) {
                            entry.refreshing = false;
                        }
                        Ok(current)
                    }
                };
            }
            Lookup::Miss => {}
        }
        let gate = lock(&self.gates).entry(key.to_owned()).or_default().clone();
        let result = {
            let _turn = gate.lock().await;
            // Whoever held the gate before may have resolved it already.
            match self.lookup(key, false) {
                Lookup::Fresh(value) | Lookup::Refresh(value) => Ok(value),
                Lookup::Miss => self.resolve_and_store(key, resolve).await,
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

    async fn resolve_and_store<E, F, Fut>(&self, key: &str, resolve: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let generation = self.generation.load(Ordering::SeqCst);
        let at = Instant::now();
        self.resolutions.inc();
        let value = Arc::new(resolve().await?);
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
        Ok(value)
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
}
