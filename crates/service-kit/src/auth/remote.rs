//! For services other than identity: verification keys fetched from identity (refreshed
//! periodically and when a token names an unknown key) and API keys resolved by identity's
//! `AuthenticateApiKey` (cached briefly).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_proto::identity::v1::{AuthenticateApiKeyRequest, GetVerificationKeysRequest};
use ed25519_dalek::VerifyingKey;
use tokio::sync::Mutex as AsyncMutex;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{ApiKeyPrincipal, ApiKeyResolver, Credential, KeyEntry, KeySet};
use crate::error::ApiError;
use crate::telemetry::OutgoingInterceptor;

pub type IdentityClient = IdentityServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

/// A lazily connecting identity client presenting the service credential.
pub fn identity_client(endpoint: &str, service_token: &str) -> anyhow::Result<IdentityClient> {
    let channel = Channel::from_shared(endpoint.to_owned())
        .map_err(|e| anyhow::anyhow!("identity_endpoint {endpoint}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let interceptor =
        OutgoingInterceptor::new(Some(&Credential::Service(service_token.to_owned())))?;
    Ok(IdentityServiceClient::with_interceptor(
        channel,
        interceptor,
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

/// API keys resolved by identity, cached for a short time.
pub struct RemoteApiKeys {
    client: IdentityClient,
    ttl: Duration,
    cache: Mutex<HashMap<(String, String), (ApiKeyPrincipal, Instant)>>,
}

impl RemoteApiKeys {
    pub fn new(client: IdentityClient, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl ApiKeyResolver for RemoteApiKeys {
    async fn resolve(&self, id: &str, secret: &str) -> Result<ApiKeyPrincipal, ApiError> {
        let key = (id.to_owned(), secret.to_owned());
        if let Some((principal, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(principal.clone());
        }
        let request = AuthenticateApiKeyRequest {
            id: id.to_owned(),
            secret: secret.to_owned(),
        };
        let key_info = match self.client.clone().authenticate_api_key(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                return Err(ApiError::Unauthenticated(status.message().to_owned()));
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
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (principal.clone(), Instant::now()));
        Ok(principal)
    }
}
