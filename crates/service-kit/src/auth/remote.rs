//! For services other than identity: verification keys fetched from identity (refreshed
//! periodically and when a token names an unknown key) and API keys resolved by identity's
//! `AuthenticateApiKey` (cached briefly).

use std::collections::HashMap;
use std::sync::Mutex;
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
    last_fetch: AsyncMutex<Option<Instant>>,
}

/// Refreshes are at most this frequent when tokens name unknown keys.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

impl RemoteKeys {
    pub fn new(client: IdentityClient, keys: KeySet) -> Self {
        Self {
            client,
            keys,
            last_fetch: AsyncMutex::new(None),
        }
    }

    /// Fetches the keys now.
    pub async fn fetch(&self) -> anyhow::Result<()> {
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
        *self.last_fetch.lock().await = Some(Instant::now());
        Ok(())
    }

    /// Fetches unless a fetch happened very recently (a token with an unknown key id).
    pub async fn refresh_if_stale(&self) {
        let recent = self
            .last_fetch
            .lock()
            .await
            .is_some_and(|t| t.elapsed() < MIN_REFRESH_INTERVAL);
        if !recent && let Err(e) = self.fetch().await {
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
