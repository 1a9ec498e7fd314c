//! For services other than identity: verification keys fetched from identity (refreshed
//! periodically and when a token names an unknown key) and API keys resolved by identity's
//! `AuthenticateApiKey` (cached briefly).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_proto::identity::v1::{
    AuthenticateApiKeyRequest, GetVerificationKeysRequest, WatchRevocationsRequest,
};
use ed25519_dalek::VerifyingKey;
use tokio::sync::Mutex as AsyncMutex;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{ApiKeyPrincipal, ApiKeyResolver, KeyEntry, KeySet, Revocations};
use crate::client::Dialer;
use crate::error::ApiError;
use crate::telemetry::OutgoingInterceptor;

pub type IdentityClient = IdentityServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

/// A lazily connecting identity client; the service proves who it is with the dialer's client
/// certificate.
pub fn identity_client(endpoint: &str, dialer: &Dialer) -> anyhow::Result<IdentityClient> {
    let channel = dialer
        .lazy(endpoint)
        .map_err(|e| anyhow::anyhow!("identity_endpoint: {e:#}"))?;
    Ok(IdentityServiceClient::with_interceptor(
        channel,
        OutgoingInterceptor::new(None)?,
    ))
}

/// Keeps a [`KeySet`] in step with identity's published keys.
pub struct RemoteKeys {
    client: IdentityClient,
    keys: KeySet,
    /// Held while fetching: concurrent refreshes wait for one fetch instead of each making one.
    last_fetch: AsyncMutex<Option<Instant>>,
    fetches: AtomicU64,
}

/// Refreshes for unknown key ids are at most this frequent, so a stream of made-up key ids
/// cannot become a stream of calls to identity.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

impl RemoteKeys {
    pub fn new(client: IdentityClient, keys: KeySet) -> Self {
        Self {
            client,
            keys,
            last_fetch: AsyncMutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// Fetches the keys now.
    pub async fn fetch(&self) -> anyhow::Result<()> {
        let mut last = self.last_fetch.lock().await;
        self.fetch_locked(&mut last).await
    }

    async fn fetch_locked(&self, last: &mut Option<Instant>) -> anyhow::Result<()> {
        let response = self
            .client
            .clone()
            .get_verification_keys(GetVerificationKeysRequest {})
            .await?
            .into_inner();
        let mut entries = Vec::with_capacity(response.keys.len());
        for key in response.keys {
            let bytes: [u8; 32] =
                key.public_key.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!("identity published a key that is not 32 bytes")
                })?;
            entries.push(KeyEntry {
                kid: key.key_id,
                key: VerifyingKey::from_bytes(&bytes)?,
                valid_until: key.valid_until.map(|t| t.seconds),
            });
        }
        self.keys.replace(entries);
        *last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A token named a key id not yet known: fetch the keys, unless another caller fetched
    /// while this one waited. At most one fetch per [`MIN_REFRESH_INTERVAL`]; a caller within it
    /// waits for the interval to pass, so a freshly rotated key is still found.
    pub async fn refresh_if_stale(&self) {
        let seen = self.fetches.load(Ordering::SeqCst);
        let mut last = self.last_fetch.lock().await;
        if self.fetches.load(Ordering::SeqCst) != seen {
            return;
        }
        if let Some(at) = *last {
            let elapsed = at.elapsed();
            if elapsed < MIN_REFRESH_INTERVAL {
                tokio::time::sleep(MIN_REFRESH_INTERVAL - elapsed).await;
            }
        }
        if let Err(e) = self.fetch_locked(&mut last).await {
            tracing::warn!(error = %e, "fetching verification keys from identity failed");
        }
    }

    /// Refreshes every `period` until `shutdown` fires.
    pub async fn run(&self, period: Duration, shutdown: crate::Shutdown) {
        loop {
            if let Err(e) = self.fetch().await {
                tracing::warn!(error = %e, "fetching verification keys from identity failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

/// API keys resolved by identity, cached for a short time: answers (either way) are reused for
/// [`API_KEY_TTL`], so a revoked key, or one whose owner lost the rights, stops working within
/// that time, and a flood of bad keys costs identity one lookup per key and TTL.
pub struct RemoteApiKeys {
    client: IdentityClient,
    ttl: Duration,
    cache: Mutex<HashMap<(String, String), CachedAnswer>>,
}

/// What identity answered for a key and secret (a principal, or why it was refused), and when.
type CachedAnswer = (Result<ApiKeyPrincipal, String>, Instant);

/// Entries a key cache holds before it drops expired ones (and, if still full, all).
const CACHE_CAP: usize = 10_000;

/// Inserts into a cache of timed answers, keeping it bounded: a flood of distinct made-up keys
/// cannot grow it without limit.
fn insert_bounded<V>(
    cache: &mut HashMap<(String, String), (V, Instant)>,
    key: (String, String),
    value: V,
    ttl: Duration,
) {
    if cache.len() > CACHE_CAP {
        cache.retain(|_, (_, at)| at.elapsed() < ttl);
        if cache.len() > CACHE_CAP {
            cache.clear();
        }
    }
    cache.insert(key, (value, Instant::now()));
}

/// How long an API-key answer is reused (revocation reaches every service within it).
pub const API_KEY_TTL: Duration = Duration::from_secs(3);

impl RemoteApiKeys {
    pub fn new(client: IdentityClient, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, key: (String, String), answer: Result<ApiKeyPrincipal, String>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        insert_bounded(&mut cache, key, answer, self.ttl);
    }
}

#[async_trait]
impl ApiKeyResolver for RemoteApiKeys {
    async fn resolve(&self, id: &str, secret: &str) -> Result<ApiKeyPrincipal, ApiError> {
        let key = (id.to_owned(), secret.to_owned());
        if let Some((answer, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < self.ttl
        {
            return answer.clone().map_err(ApiError::Unauthenticated);
        }
        let request = AuthenticateApiKeyRequest {
            id: id.to_owned(),
            secret: secret.to_owned(),
        };
        let key_info = match self.client.clone().authenticate_api_key(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                let message = status.message().to_owned();
                self.remember(key, Err(message.clone()));
                return Err(ApiError::Unauthenticated(message));
            }
            Err(status) => {
                tracing::warn!(error = %status, "identity could not check an API key");
                return Err(ApiError::Unavailable(
                    "cannot check API keys right now".into(),
                ));
            }
        };
        let principal = ApiKeyPrincipal {
            key_id: key_info.id,
            name: key_info.name,
            read_only: key_info.read_only,
            permissions: key_info.permissions,
        };
        self.remember(key, Ok(principal.clone()));
        Ok(principal)
    }
}

/// Keeps `revocations` in step with identity's `WatchRevocations` stream, reconnecting (from
/// the last cursor) whenever the stream breaks, until `shutdown`.
pub async fn follow_revocations(
    client: IdentityClient,
    revocations: Revocations,
    shutdown: crate::Shutdown,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let request = WatchRevocationsRequest {
            after: revocations.cursor(),
        };
        let mut caller = client.clone();
        let stream = tokio::select! {
            _ = shutdown.wait() => return,
            answer = caller.watch_revocations(request) => answer,
        };
        match stream {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    let next = tokio::select! {
                        _ = shutdown.wait() => return,
                        next = stream.message() => next,
                    };
                    match next {
                        Ok(Some(batch)) => {
                            backoff = Duration::from_millis(100);
                            apply(&revocations, batch);
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(error = %status, "revocation stream from identity broke");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::warn!(error = %status, "cannot follow identity's revocations");
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Applies one batch from the feed and forgets entries that no longer matter.
pub fn apply(revocations: &Revocations, batch: atrium_proto::identity::v1::RevocationBatch) {
    let now = chrono::Utc::now().timestamp();
    for revocation in batch.revocations {
        let forget_after = revocation
            .forget_after
            .map(|t| t.seconds)
            .unwrap_or(now + 24 * 3600);
        if forget_after > now {
            revocations.revoke(&revocation.login_session_id, forget_after);
        }
    }
    revocations.advance(batch.cursor);
    revocations.prune(now);
}

/// Remembers refused API keys for a short time in front of any resolver, so a flood of bad keys
/// costs one lookup (and one audit row) per key and `ttl`, not one per request. Accepted keys
/// are not cached here: the resolver answers them fresh, so a revocation takes effect at once.
pub struct RefusalCache<R> {
    inner: R,
    ttl: Duration,
    refused: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl<R> RefusalCache<R> {
    pub fn new(inner: R, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            refused: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl<R: ApiKeyResolver> ApiKeyResolver for RefusalCache<R> {
    async fn resolve(&self, id: &str, secret: &str) -> Result<ApiKeyPrincipal, ApiError> {
        let key = (id.to_owned(), secret.to_owned());
        if let Some((message, at)) = self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < self.ttl
        {
            return Err(ApiError::Unauthenticated(message.clone()));
        }
        let answer = self.inner.resolve(id, secret).await;
        if let Err(ApiError::Unauthenticated(message)) = &answer {
            let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            insert_bounded(&mut refused, key, message.clone(), self.ttl);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    struct Counting(AtomicUsize);

    #[async_trait]
    impl ApiKeyResolver for Counting {
        async fn resolve(&self, id: &str, _: &str) -> Result<ApiKeyPrincipal, ApiError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if id == "good" {
                Ok(ApiKeyPrincipal {
                    key_id: id.into(),
                    name: String::new(),
                    read_only: false,
                    permissions: Vec::new(),
                })
            } else {
                Err(ApiError::Unauthenticated("unknown API key".into()))
            }
        }
    }

    #[tokio::test]
    async fn a_flood_of_bad_keys_costs_one_lookup_each() {
        let cache = RefusalCache::new(Counting(AtomicUsize::new(0)), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(cache.resolve("bad", "s").await.is_err());
        }
        assert_eq!(cache.inner.0.load(Ordering::SeqCst), 1);
        for _ in 0..3 {
            assert!(cache.resolve("good", "s").await.is_ok());
        }
        assert_eq!(
            cache.inner.0.load(Ordering::SeqCst),
            4,
            "accepted keys are not cached"
        );
    }
}
