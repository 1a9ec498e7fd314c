//! The session-manager: admits sessions (launchable, within the user's limits and usage
//! allowance, placed on an agent with room), records intent, and converges the agents toward
//! it with one reconciler; keepalive deadlines live in Redis and the reaper applies each expiry
//! exactly once; the lifecycle outbox is delivered to billing-usage.

pub mod api;
pub mod config;
pub mod core;
pub mod deadlines;
pub mod decide;
mod entity;
pub mod keepalive;
pub mod launch;
pub mod migration;
pub mod outbox;
pub mod peers;
pub mod placement;
pub mod reaper;
pub mod reconciler;
pub mod state;
pub mod store;
#[cfg(test)]
mod test_fixture;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use atrium_heartbeat::{HeartbeatStore, MemoryHeartbeats, RedisHeartbeats};
use atrium_proto::session::v1::session_service_server::SessionServiceServer;
use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::remote::{
    API_KEY_TTL, IdentityClient, RemoteApiKeys, RemoteKeys, follow_revocations, identity_client,
};
use atrium_service_kit::auth::{AuthLayer, Authenticator, KeySet};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::sealed::SecretBox;
use atrium_service_kit::server::{GrpcServer, ServeOptions, watch_health};
use atrium_service_kit::tasks::TaskSet;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use crate::config::SessionManagerConfig;
use crate::core::{Core, SharedCore};
use crate::deadlines::{Deadlines, MemoryDeadlines, RedisDeadlines};
use crate::peers::Peers;
use crate::store::Store;
use crate::usage::Usage;

pub const SERVICE_NAME: &str = "atrium.session.v1.SessionService";

/// How long background work (reconciler steps, the audit queue) gets once the server stopped.
const BACKGROUND_DEADLINE: Duration = Duration::from_secs(20);

/// A ready session-manager: database migrated, nothing dialled yet.
pub struct SessionManager {
    core: SharedCore,
    nudges: mpsc::UnboundedReceiver<String>,
    authenticator: Authenticator,
    remote_keys: Option<Arc<RemoteKeys>>,
    identity: IdentityClient,
}

impl SessionManager {
    /// Deadlines and heartbeats in Redis when `redis_url` is set, else in this process.
    pub async fn new(config: SessionManagerConfig) -> anyhow::Result<Self> {
        let heartbeats: Arc<dyn HeartbeatStore> = match &config.redis_url {
            Some(url) => Arc::new(RedisHeartbeats::with_namespace(
                url.expose(),
                &config.redis_namespace,
            )?),
            None => Arc::new(MemoryHeartbeats::new()),
        };
        Self::with_heartbeats(config, heartbeats).await
    }

    /// With a given heartbeat store (an in-process one shared with the agent in `atrium up`).
    pub async fn with_heartbeats(
        config: SessionManagerConfig,
        heartbeats: Arc<dyn HeartbeatStore>,
    ) -> anyhow::Result<Self> {
        Self::build(config, heartbeats, None).await
    }

    /// With a key set shared in-process with identity (`atrium up`, tests).
    pub async fn with_parts(
        config: SessionManagerConfig,
        heartbeats: Arc<dyn HeartbeatStore>,
        keys: Option<KeySet>,
    ) -> anyhow::Result<Self> {
        Self::build(config, heartbeats, keys).await
    }

    async fn build(
        config: SessionManagerConfig,
        heartbeats: Arc<dyn HeartbeatStore>,
        keys: Option<KeySet>,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let secrets = match &config.secrets_key {
            Some(key) => SecretBox::from_base64(key.expose())?,
            None => anyhow::bail!(
                "secrets_key: required (32 bytes, base64): it seals session passwords"
            ),
        };
        let deadlines: Arc<dyn Deadlines> = match &config.redis_url {
            Some(url) => Arc::new(RedisDeadlines::new(url.expose(), &config.redis_namespace)?),
            None => Arc::new(MemoryDeadlines::new()),
        };
        let db = atrium_service_kit::db::connect_and_migrate::<migration::Migrator>(
            &config.database_url,
            "atrium-session-manager",
        )
        .await?;
        let dialer = Dialer::for_service(&config.tls)?;
        let peers = Peers::new(
            &config.policy_endpoint,
            &config.identity_endpoint,
            dialer.clone(),
        )?;
        let usage = Usage::from_config(&config.usage, &dialer)?;
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
        let (core, nudges) = Core::new(
            config,
            Store::new(db),
            deadlines,
            heartbeats,
            peers,
            usage,
            secrets,
        );
        Ok(Self {
            core: Arc::new(core),
            nudges,
            authenticator,
            remote_keys,
            identity,
        })
    }

    pub fn core(&self) -> SharedCore {
        self.core.clone()
    }

    /// Serves until `shutdown`; the reconciler, reaper and audit queue run alongside and drain
    /// before it returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let (audit_tx, audit_rx) = mpsc::channel(65_536);
        let mut server = GrpcServer::new(&[SERVICE_NAME])?;
        server
            .routes_mut()
            .add_service(SessionServiceServer::new(api::SessionApi::new(
                self.core.clone(),
                audit_tx,
            )));
        let reaper_metrics = reaper::ReaperMetrics::default();
        let outbox_metrics = outbox::OutboxMetrics::default();
        {
            let registry = server.metrics_mut().registry_mut();
            registry.register(
                "session_expiry_lateness_seconds",
                "From a session's deadline to the moment its expiry was recorded",
                reaper_metrics.lateness.clone(),
            );
            registry.register(
                "session_expiries",
                "Expired deadlines acted on",
                reaper_metrics.expired.clone(),
            );
            registry.register(
                "session_usage_outbox_pending",
                "Lifecycle events not yet delivered to billing-usage (as of the last look)",
                outbox_metrics.pending.clone(),
            );
            registry.register(
                "session_usage_events_delivered",
                "Lifecycle events this replica delivered to billing-usage",
                outbox_metrics.delivered.clone(),
            );
        }
        let mut tasks = TaskSet::new();
        let stop = tasks.signal();
        // Health: the database answers, and the deadline store does (else nothing is reaped).
        let health = {
            let core = self.core.clone();
            watch_health(
                server.health(),
                SERVICE_NAME,
                Duration::from_secs(2),
                stop.clone(),
                move || {
                    let core = core.clone();
                    async move {
                        core.store.db().ping().await.context("database")?;
                        core.deadline_health().map_err(|e| {
                            anyhow::anyhow!(
                                "deadline store (Redis): {e}; nothing is reaped until it returns"
                            )
                        })?;
                        Ok(())
                    }
                },
            )
            .await
        };
        tasks.adopt("health", health);
        let reconciler = reconciler::Reconciler::new(self.core.clone());
        tasks.spawn("reconciler", reconciler.run(self.nudges, stop.clone()));
        tasks.spawn(
            "reaper",
            reaper::run(self.core.clone(), reaper_metrics, stop.clone()),
        );
        tasks.spawn(
            "audit",
            api::audit_writer(self.core.store.clone(), audit_rx),
        );
        // Usage: only with a usage service (else the outbox keeps its events for one).
        if let Some(gate) = self.core.usage.gate() {
            let delivery = outbox::Delivery {
                batch: self.core.config.usage.delivery_batch,
                interval: Duration::from_millis(self.core.config.usage.delivery_interval_ms),
            };
            tasks.spawn(
                "usage-outbox",
                outbox::run(
                    self.core.store.clone(),
                    gate,
                    delivery,
                    outbox_metrics,
                    stop.clone(),
                ),
            );
            let core = self.core.clone();
            let refresh_stop = stop.clone();
            tasks.spawn("usage-refresh", async move {
                core.usage.run_refresher(refresh_stop).await
            });
            let hours = self.core.config.usage.retain_delivered_hours;
            if hours > 0 {
                tasks.spawn(
                    "usage-outbox-prune",
                    outbox::prune(
                        self.core.store.clone(),
                        Duration::from_secs(hours.saturating_mul(3600)),
                        stop.clone(),
                    ),
                );
            }
        }
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
        tracing::info!(replica = %self.core.replica, "session-manager serving");
        let auth = AuthLayer::new(self.authenticator, Vec::new());
        let options = ServeOptions::new(
            self.core.config.tls.server("session-manager")?,
            Duration::from_secs(self.core.config.shutdown_deadline_secs),
        );
        let serving = server.serve(listener, metrics, auth, options, shutdown.clone());
        let served = tasks.supervise(serving, &shutdown).await;
        let report = tasks.shutdown(BACKGROUND_DEADLINE).await;
        if !report.is_clean() {
            tracing::warn!(?report, "background work did not all finish cleanly");
        }
        served
    }
}
