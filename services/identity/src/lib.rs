//! The identity service: users and their credentials, login sessions and signed access tokens,
//! two-factor authentication, user settings, SSH keys, API keys and the audit trail.
//!
//! A library with a thin `main.rs`, so `atrium up` can run it in-process. Group membership,
//! settings and permissions belong to the policy service, not here.

pub mod api;
mod authz;
mod background;
pub mod config;
mod convert;
mod core;
pub mod crypto;
mod entity;
mod limits;
pub mod migration;
pub mod password;
mod policy_link;
mod repo;
mod revocation_feed;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod tokens;
pub mod totp;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use atrium_proto::identity::v1::CreateUserRequest;
use atrium_proto::identity::v1::identity_service_server::IdentityServiceServer;
use atrium_service_kit::auth::remote::{API_KEY_TTL, RefusalCache};
use atrium_service_kit::auth::{AuthLayer, Authenticator, KeySet};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::server::{GrpcServer, ServeOptions, watch_database};
use atrium_service_kit::tasks::TaskSet;
use atrium_service_kit::{ApiError, Shutdown};
use tokio::net::TcpListener;

pub use crate::config::IdentityConfig;
use crate::core::{Core, LocalApiKeys, SharedCore};
use crate::crypto::SecretBox;
use crate::password::PasswordPolicy;
use crate::repo::Repo;
use crate::tokens::TokenIssuer;

/// The gRPC service name, as health and reflection report it.
pub const SERVICE_NAME: &str = "atrium.identity.v1.IdentityService";

/// Methods anyone may call.
pub fn public_methods() -> Vec<String> {
    ["Login", "Refresh", "GetVerificationKeys"]
        .iter()
        .map(|m| format!("/{SERVICE_NAME}/{m}"))
        .collect()
}

/// The administrator created on first start.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub username: String,
    /// Set when the password was generated (and must be shown to the operator once).
    pub generated_password: Option<String>,
}

/// A ready identity service: database migrated, keys loaded, bootstrap done.
pub struct Identity {
    core: SharedCore,
    authenticator: Authenticator,
    bootstrap: Option<BootstrapAdmin>,
}

impl Identity {
    pub async fn new(config: IdentityConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let secrets_key = config
            .secrets_key
            .as_ref()
            .context("secrets_key: required")?;
        let secrets = SecretBox::from_base64(secrets_key.expose())?;
        let db = atrium_service_kit::db::connect_and_migrate::<migration::Migrator>(
            &config.database_url,
            "atrium-identity",
        )
        .await?;
        let policy = match &config.policy_endpoint {
            Some(endpoint) => {
                let dialer = Dialer::for_service(&config.tls)?;
                let ttl = Duration::from_millis(config.permissions_cache_ttl_ms);
                Some(Arc::new(policy_link::PolicyLink::new(
                    endpoint, &dialer, ttl,
                )?))
            }
            None => None,
        };
        let repo = Repo::new(db, policy.is_some());
        let keys = KeySet::default();
        let tokens = TokenIssuer::new(keys.clone(), &config.issuer, config.access_token_ttl_secs);
        tokens
            .reload(&repo, &secrets)
            .await
            .map_err(ApiError::into_anyhow)
            .context("load signing keys")?;
        let dummy_hash = password::hash(crypto::random_token::<16>())
            .await
            .map_err(ApiError::into_anyhow)?;
        let revocations = revocation_feed::RevocationFeed::new(
            atrium_service_kit::auth::Revocations::default(),
            repo.revoked_signal(),
        );
        let guard = limits::LoginGuard::new(&config);
        let core = Arc::new(Core {
            revocations,
            guard,
            repo,
            tokens,
            secrets,
            policy: PasswordPolicy {
                min_length: config.password_min_length as usize,
            },
            dummy_hash,
            config,
            policy_link: policy,
            logins: Default::default(),
        });
        let authenticator = Authenticator::new(keys, &core.config.issuer)
            .with_api_keys(Arc::new(RefusalCache::new(
                LocalApiKeys(core.clone()),
                API_KEY_TTL,
            )))
            .with_revocations(core.revocations.set().clone());
        let bootstrap = bootstrap_admin(&core).await?;
        Ok(Self {
            core,
            authenticator,
            bootstrap,
        })
    }

    /// The admin created on this start, if the database was empty.
    pub fn bootstrap_admin(&self) -> Option<&BootstrapAdmin> {
        self.bootstrap.as_ref()
    }

    /// Verifies tokens exactly as this service does (benchmarks, in-process callers).
    pub fn authenticator(&self) -> Authenticator {
        self.authenticator.clone()
    }

    /// Serves on `listener` until `shutdown` fires.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let mut server = GrpcServer::new(&[SERVICE_NAME])?;
        server
            .routes_mut()
            .add_service(IdentityServiceServer::new(api::IdentityApi::new(
                self.core.clone(),
            )));
        server.metrics_mut().registry_mut().register(
            "identity_logins",
            "Login attempts by result and, for failures, the reason",
            self.core.logins.clone(),
        );
        // Background work stops after the server: in-flight calls still see revocations,
        // fresh keys and a delivering outbox.
        let mut tasks = TaskSet::new();
        let stop = tasks.signal();
        let health = watch_database(
            server.health(),
            SERVICE_NAME,
            self.core.repo.db().clone(),
            stop.clone(),
        )
        .await;
        tasks.adopt("health", health);
        tasks.spawn("key-reload", reload_keys(self.core.clone(), stop.clone()));
        background::spawn(&self.core, &mut tasks);
        if let Some(policy) = self.core.policy_link.clone() {
            let repo = self.core.repo.clone();
            tasks.spawn("policy-outbox", async move { policy.run(repo, stop).await });
        }
        let auth = AuthLayer::new(self.authenticator, public_methods());
        let options = ServeOptions::new(
            self.core.config.tls.server("identity")?,
            Duration::from_secs(self.core.config.shutdown_deadline_secs),
        );
        let serving = server.serve(listener, metrics, auth, options, shutdown.clone());
        let served = tasks.supervise(serving, &shutdown).await;
        tasks.shutdown(BACKGROUND_DEADLINE).await;
        served
    }
}

/// How long background tasks get to finish once the server has stopped.
const BACKGROUND_DEADLINE: Duration = Duration::from_secs(2);

/// Other replicas may rotate keys: pick up their changes.
async fn reload_keys(core: SharedCore, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        if let Err(e) = core.tokens.reload(&core.repo, &core.secrets).await {
            tracing::warn!(error = %e, "reloading signing keys failed");
        }
    }
}

/// On an empty database, creates `admin` with the configured or a random password.
async fn bootstrap_admin(core: &Core) -> anyhow::Result<Option<BootstrapAdmin>> {
    if core
        .repo
        .count_users()
        .await
        .map_err(ApiError::into_anyhow)?
        > 0
    {
        return Ok(None);
    }
    let (password, generated) = match &core.config.bootstrap_admin_password {
        Some(p) => (p.expose().to_owned(), None),
        None => {
            let p = crypto::random_token::<15>();
            (p.clone(), Some(p))
        }
    };
    let request = CreateUserRequest {
        username: "admin".into(),
        password,
        first_name: "Atrium".into(),
        last_name: "Administrator".into(),
        ..Default::default()
    };
    let row = api::users::new_user(core, request, true)
        .await
        .map_err(ApiError::into_anyhow)?;
    let settings = convert::default_settings(&row.id);
    let event = core::event(
        "user.create",
        Some(&row.id),
        "service",
        serde_json::json!({ "username": "admin", "bootstrap": true }),
    );
    match core.repo.create_user(row, settings, event).await {
        Ok(_) => Ok(Some(BootstrapAdmin {
            username: "admin".into(),
            generated_password: generated,
        })),
        // Another replica bootstrapped first.
        Err(ApiError::AlreadyExists(_)) => Ok(None),
        Err(e) => Err(e.into_anyhow()),
    }
}
