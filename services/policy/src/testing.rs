//! Starts a real policy server on an ephemeral port over a fresh database, for tests and
//! benchmarks. Access tokens are minted here with a test signing key that the server trusts
//! (identity is not needed; API keys, which identity resolves, are not available).

use std::net::SocketAddr;

use atrium_proto::policy::v1::UserLifecycleRequest;
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::{AccessClaims, Credential, KeyEntry, KeySet, Scope, ServiceId, jwt};
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_service_kit::testing::{Backend, TestDatabase};
use ed25519_dalek::SigningKey;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Policy, PolicyConfig};

pub type Client = PolicyServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

const KID: &str = "test-key";

/// A running policy server. Stops when dropped.
pub struct TestPolicy {
    pub addr: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    pub core: crate::core::SharedCore,
    key: SigningKey,
    shutdown: Shutdown,
    _db: TestDatabase,
}

impl Drop for TestPolicy {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl TestPolicy {
    pub async fn start(backend: Backend) -> anyhow::Result<Self> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut PolicyConfig),
    ) -> anyhow::Result<Self> {
        let db = TestDatabase::new(backend).await?;
        let mut config = PolicyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: db.url.clone(),
            // Keys are shared in-process and tests use no API keys; only the revocation feed
            // dials it (and retries quietly).
            identity_endpoint: "https://127.0.0.1:9".into(),
            tls: atrium_service_kit::testing::tls_for(ServiceId::Policy),
            shutdown_deadline_secs: 1,
            ..PolicyConfig::default()
        };
        tweak(&mut config);
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let keys = KeySet::default();
        keys.replace(vec![KeyEntry {
            kid: KID.into(),
            key: key.verifying_key(),
            valid_until: None,
        }]);
        let listener = atrium_service_kit::server::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let metrics =
            atrium_service_kit::server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let metrics_addr = metrics.local_addr()?;
        let policy = Policy::with_keys(config, keys).await?;
        let core = policy.core();
        let shutdown = Shutdown::new();
        let serving = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = policy.serve(listener, Some(metrics), serving).await {
                tracing::error!(error = %format!("{e:#}"), "test policy server failed");
            }
        });
        Ok(Self {
            addr,
            metrics_addr,
            core,
            key,
            shutdown,
            _db: db,
        })
    }

    /// The test database, for tests that take it away.
    pub fn database(&self) -> &TestDatabase {
        &self._db
    }

    /// The test database's URL, for tests that check rows directly.
    pub fn database_url(&self) -> &str {
        &self.core.config.database_url
    }

    /// The gRPC endpoint, for clients other than the policy client (health, reflection).
    pub fn endpoint(&self) -> String {
        if self.core.config.tls.insecure_plaintext {
            format!("http://{}", self.addr)
        } else {
            format!("https://{}", self.addr)
        }
    }

    /// A full-scope access token for `user_id`, as identity would issue it.
    pub fn token_for(&self, user_id: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "atrium".into(),
            sub: user_id.into(),
            name: format!("user-{}", &user_id[..8.min(user_id.len())]),
            realm: "local".into(),
            sid: uuid::Uuid::new_v4().to_string(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now,
            exp: now + 3600,
            scope: Scope::Full,
        };
        jwt::sign(&claims, KID, &self.key)
    }

    pub async fn client(&self, credential: Option<Credential>) -> anyhow::Result<Client> {
        Self::client_on(self.channel().await?, credential.as_ref())
    }

    /// A new HTTP/2 connection to the server.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        atrium_service_kit::testing::channel(&self.endpoint()).await
    }

    /// A client that is `service`, proven by its certificate.
    pub async fn as_service(&self, service: ServiceId) -> anyhow::Result<Client> {
        let channel = atrium_service_kit::testing::dialer_as(service)
            .connect(&self.endpoint())
            .await?;
        Self::client_on(channel, None)
    }

    /// A client on an existing connection; clients on one channel multiplex their calls.
    pub fn client_on(channel: Channel, credential: Option<&Credential>) -> anyhow::Result<Client> {
        Ok(PolicyServiceClient::with_interceptor(
            channel,
            OutgoingInterceptor::new(credential)?,
        ))
    }

    /// Identity, the usual service caller of policy.
    pub async fn service(&self) -> anyhow::Result<Client> {
        self.as_service(ServiceId::Identity).await
    }

    /// A client acting as `user_id` (any UUID; policy keeps no user records).
    pub async fn as_user(&self, user_id: &str) -> anyhow::Result<Client> {
        self.client(Some(Credential::Bearer(self.token_for(user_id))))
            .await
    }

    /// A new user, announced the way identity announces users; `administrator` joins
    /// Administrators.
    pub async fn new_user(&self, administrator: bool) -> anyhow::Result<(String, Client)> {
        let user_id = uuid::Uuid::now_v7().hyphenated().to_string();
        self.service()
            .await?
            .user_created(UserLifecycleRequest {
                user_id: user_id.clone(),
                username: String::new(),
                administrator,
            })
            .await?;
        let client = self.as_user(&user_id).await?;
        Ok((user_id, client))
    }
}
