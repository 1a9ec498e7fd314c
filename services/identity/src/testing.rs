//! Starts a real identity server on an ephemeral port over a fresh database, for tests and
//! benchmarks.

use std::net::SocketAddr;

use atrium_proto::identity::v1::LoginRequest;
use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_service_kit::auth::{Credential, ServiceId};
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_service_kit::testing::{Backend, TestDatabase};
use atrium_service_kit::{Secret, Shutdown};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Identity, IdentityConfig};

pub mod fake_policy;

pub type Client = IdentityServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running identity server. Stops when dropped.
pub struct TestIdentity {
    pub addr: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    pub config: IdentityConfig,
    pub authenticator: atrium_service_kit::auth::Authenticator,
    shutdown: Shutdown,
    _db: TestDatabase,
}

impl Drop for TestIdentity {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl TestIdentity {
    pub async fn start(backend: Backend) -> anyhow::Result<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with a config adjusted by `tweak` (on top of the test defaults).
    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut IdentityConfig),
    ) -> anyhow::Result<Self> {
        let db = TestDatabase::new(backend).await?;
        let mut config = IdentityConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: db.url.clone(),
            secrets_key: Some(Secret::new(crate::crypto::SecretBox::generate_key())),
            tls: atrium_service_kit::testing::tls_for(ServiceId::Identity),
            bootstrap_admin_password: Some(Secret::new(ADMIN_PASSWORD)),
            // Scenarios sign in often from one address; rate-limit tests turn these on.
            login_attempts_per_account_per_minute: 0,
            login_attempts_per_source_per_minute: 0,
            shutdown_deadline_secs: 1,
            ..IdentityConfig::default()
        };
        tweak(&mut config);
        let listener = atrium_service_kit::server::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let metrics =
            atrium_service_kit::server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let metrics_addr = metrics.local_addr()?;
        let identity = Identity::new(config.clone()).await?;
        let authenticator = identity.authenticator();
        let shutdown = Shutdown::new();
        let serving = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = identity.serve(listener, Some(metrics), serving).await {
                tracing::error!(error = %format!("{e:#}"), "test identity server failed");
            }
        });
        Ok(Self {
            addr,
            metrics_addr,
            config,
            authenticator,
            shutdown,
            _db: db,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A client presenting `credential` (or nothing), over TLS without a client certificate.
    pub async fn client(&self, credential: Option<Credential>) -> anyhow::Result<Client> {
        let channel = atrium_service_kit::testing::user_dialer()
            .connect(&self.endpoint())
            .await?;
        Ok(IdentityServiceClient::with_interceptor(
            channel,
            OutgoingInterceptor::new(credential.as_ref())?,
        ))
    }

    /// A client that is `service`, proven by its certificate.
    pub async fn as_service(&self, service: ServiceId) -> anyhow::Result<Client> {
        let channel = atrium_service_kit::testing::dialer_as(service)
            .connect(&self.endpoint())
            .await?;
        Ok(IdentityServiceClient::with_interceptor(
            channel,
            OutgoingInterceptor::new(None)?,
        ))
    }

    pub async fn anonymous(&self) -> anyhow::Result<Client> {
        self.client(None).await
    }

    /// Policy, the usual service caller of identity.
    pub async fn service(&self) -> anyhow::Result<Client> {
        self.as_service(ServiceId::Policy).await
    }

    /// Logs in and returns a client carrying the resulting access token.
    pub async fn login_as(&self, username: &str, password: &str) -> anyhow::Result<Client> {
        let response = self
            .anonymous()
            .await?
            .login(LoginRequest {
                username: username.into(),
                password: password.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        anyhow::ensure!(
            !response.access_token.is_empty(),
            "login of {username} gave no token (status {})",
            response.status
        );
        self.client(Some(Credential::Bearer(response.access_token)))
            .await
    }

    pub async fn admin(&self) -> anyhow::Result<Client> {
        self.login_as("admin", ADMIN_PASSWORD).await
    }
}
