//! Billing-usage: the usage ledger fed by the session-manager's lifecycle events, each user's
//! usage_limit allowance (seeds/001), the user's own usage, and reports with costs per workspace.
//!
//! It owns the ledger and nothing else: users, groups and settings are read from identity and
//! policy over gRPC; sessions are only known through their events.

pub mod api;
pub mod config;
pub mod core;
mod entity;
pub mod ledger;
pub mod migration;
pub mod peers;
pub mod store;
pub mod window;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use atrium_proto::usage::v1::usage_service_server::UsageServiceServer;
use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::remote::{
    API_KEY_TTL, IdentityClient, RemoteApiKeys, RemoteKeys, follow_revocations, identity_client,
};
use atrium_service_kit::auth::{AuthLayer, Authenticator, KeySet};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::server::{GrpcServer, ServeOptions, watch_health};
use atrium_service_kit::tasks::TaskSet;
use tokio::net::TcpListener;

pub use crate::config::BillingUsageConfig;
use crate::core::{Core, SharedCore};
use crate::peers::Peers;
use crate::store::Store;

pub const SERVICE_NAME: &str = "atrium.usage.v1.UsageService";

/// A ready billing-usage service: database migrated, nothing dialled yet.
pub struct BillingUsage {
    core: SharedCore,
    authenticator: Authenticator,
    remote_keys: Option<Arc<RemoteKeys>>,
    identity: IdentityClient,
}

impl BillingUsage {
    pub async fn new(config: BillingUsageConfig) -> anyhow::Result<Self> {
        Self::with_keys(config, None).await
    }

    /// With a key set shared in-process with identity (`atrium up`, tests).
    pub async fn with_keys(
        config: BillingUsageConfig,
        keys: Option<KeySet>,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let tz = window::parse_timezone(&config.timezone)
            .map_err(|e| anyhow::anyhow!("timezone: {e}"))?;
        let db = atrium_service_kit::db::connect_and_migrate::<migration::Migrator>(
            &config.database_url,
            "atrium-billing-usage",
        )
        .await?;
        let store = Store::open(db, tz)
            .await
            .map_err(|e| e.into_anyhow())
            .context("open the usage ledger")?;
        let dialer = Dialer::for_service(&config.tls)?;
        let peers = Peers::new(
            &config.policy_endpoint,
            &config.identity_endpoint,
            &dialer,
            Duration::from_millis(config.policy_cache_ms),
        )?;
        let identity = identity_client(&config.identity_endpoint, &dialer)?;
        let api_keys = Arc::new(RemoteApiKeys::new(identity.clone(), API_KEY_TTL));
        let (keys, remote_keys) = match keys {
            Some(keys) => (keys, None),
            None => {
                let keys = KeySet::default();
                (
                    keys.clone(),
                    Some(Arc::new(RemoteKeys::new(identity.clone(), keys))),
                )
            }
        };
        let mut authenticator = Authenticator::new(keys, &config.issuer).with_api_keys(api_keys);
        if let Some(remote) = &remote_keys {
            authenticator = authenticator.with_remote_keys(remote.clone());
        }
        Ok(Self {
            core: Arc::new(Core {
                usage_cache: core::UsageCache::new(Duration::from_millis(config.usage_cache_ms)),
                metrics: core::UsageMetrics::default(),
                config,
                store,
                peers,
            }),
            authenticator,
            remote_keys,
            identity,
        })
    }

    pub fn core(&self) -> SharedCore {
        self.core.clone()
    }

    /// Serves until `shutdown`.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let mut server = GrpcServer::new(&[SERVICE_NAME])?;
        server
            .routes_mut()
            .add_service(UsageServiceServer::new(api::UsageApi::new(
                self.core.clone(),
            )));
        let mut tasks = TaskSet::new();
        let stop = tasks.signal();
        let health = {
            let core = self.core.clone();
            watch_health(
                server.health(),
                SERVICE_NAME,
                Duration::from_secs(2),
                stop.clone(),
                move || {
                    let core = core.clone();
                    async move { core.store.db().ping().await.context("database") }
                },
            )
            .await
        };
        tasks.adopt("health", health);
        if let Some(remote) = self.remote_keys.clone() {
            let stop = stop.clone();
            tasks.spawn("key-sync", async move {
                remote.run(Duration::from_secs(60), stop).await
            });
        }
        tasks.spawn(
            "revocations",
            follow_revocations(
                self.identity.clone(),
                self.authenticator.revocations().clone(),
                stop.clone(),
            ),
        );
        tracing::info!(timezone = %self.core.store.timezone().name(), "billing-usage serving");
        let auth = AuthLayer::new(self.authenticator, Vec::new());
        let options = ServeOptions::new(
            self.core.config.tls.server("billing-usage")?,
            Duration::from_secs(self.core.config.shutdown_deadline_secs),
        );
        let serving = server.serve(listener, metrics, auth, options, shutdown.clone());
        let served = tasks.supervise(serving, &shutdown).await;
        let report = tasks.shutdown(Duration::from_secs(5)).await;
        if !report.is_clean() {
            tracing::warn!(?report, "background work did not all finish cleanly");
        }
        served
    }
}
