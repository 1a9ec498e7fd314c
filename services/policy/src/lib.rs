//! The policy service: groups with priorities and memberships, the settings catalogue and its
//! resolution into each user's effective policy (with explanations), permissions, workspaces and
//! their assignment to groups, zones, file mappings and SSO group mappings.
//!
//! Users themselves (profiles, credentials) belong to identity; sessions to the session-manager.

pub mod api;
pub mod cache;
pub mod config;
mod convert;
pub mod core;
mod entity;
pub mod migration;
mod repo;
pub mod settings;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use atrium_proto::policy::v1::policy_service_server::PolicyServiceServer;
use atrium_service_kit::auth::remote::{
    API_KEY_TTL, IdentityClient, RemoteApiKeys, RemoteKeys, follow_revocations, identity_client,
};
use atrium_service_kit::auth::{AuthLayer, Authenticator, KeySet};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::server::{GrpcServer, ServeOptions, watch_database};
use atrium_service_kit::tasks::TaskSet;
use atrium_service_kit::{ApiError, Shutdown};
use chrono::Utc;
use tokio::net::TcpListener;

pub use crate::config::PolicyConfig;
use crate::core::{ADMINISTRATORS_ID, ALL_USERS_ID, Core, SharedCore};
use crate::entity::{group, group_setting};
use crate::repo::Repo;

pub const SERVICE_NAME: &str = "atrium.policy.v1.PolicyService";

/// A ready policy service: database migrated, system groups seeded.
pub struct Policy {
    core: SharedCore,
    authenticator: Authenticator,
    remote_keys: Option<Arc<RemoteKeys>>,
    identity: IdentityClient,
}

impl Policy {
    /// Verification keys come from identity at `identity_endpoint`.
    pub async fn new(config: PolicyConfig) -> anyhow::Result<Self> {
        Self::build(config, None).await
    }

    /// With a key set shared in-process with identity (`atrium up`, tests).
    pub async fn with_keys(config: PolicyConfig, keys: KeySet) -> anyhow::Result<Self> {
        Self::build(config, Some(keys)).await
    }

    async fn build(config: PolicyConfig, keys: Option<KeySet>) -> anyhow::Result<Self> {
        config.validate()?;
        let db = atrium_service_kit::db::connect_and_migrate::<migration::Migrator>(
            &config.database_url,
            "atrium-policy",
        )
        .await?;
        let core = Arc::new(Core::new(Repo::new(db), config));
        seed_system_groups(&core).await?;
        let dialer = Dialer::for_service(&core.config.tls)?;
        let client = identity_client(&core.config.identity_endpoint, &dialer)?;
        let api_keys = Arc::new(RemoteApiKeys::new(client.clone(), API_KEY_TTL));
        let (keys, remote_keys) = match keys {
            Some(keys) => (keys, None),
            None => {
                let keys = KeySet::default();
                (
                    keys.clone(),
                    Some(Arc::new(RemoteKeys::new(client.clone(), keys))),
                )
            }
        };
        let mut authenticator =
            Authenticator::new(keys, &core.config.issuer).with_api_keys(api_keys);
        if let Some(remote) = &remote_keys {
            authenticator = authenticator.with_remote_keys(remote.clone());
        }
        Ok(Self {
            core,
            authenticator,
            remote_keys,
            identity: client,
        })
    }

    pub fn core(&self) -> SharedCore {
        self.core.clone()
    }

    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let mut server = GrpcServer::new(&[SERVICE_NAME])?;
        server
            .routes_mut()
            .add_service(PolicyServiceServer::new(api::PolicyApi::new(
                self.core.clone(),
            )));
        server.metrics_mut().registry_mut().register(
            "policy_resolutions",
            "Effective policies resolved from the database (cache misses and refreshes)",
            self.core.cache.resolutions_metric(),
        );
        // Background work stops after the server, so in-flight calls still see revocations.
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
                stop,
            ),
        );
        let auth = AuthLayer::new(self.authenticator, Vec::new());
        let options = ServeOptions::new(
            self.core.config.tls.server("policy")?,
            Duration::from_secs(self.core.config.shutdown_deadline_secs),
        );
        let serving = server.serve(listener, metrics, auth, options, shutdown.clone());
        let served = tasks.supervise(serving, &shutdown).await;
        tasks.shutdown(Duration::from_secs(2)).await;
        served
    }
}

fn api_to_anyhow(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Internal(inner) => inner,
        other => anyhow::anyhow!(other.to_string()),
    }
}

/// Creates Administrators and All Users with their seed settings, once.
async fn seed_system_groups(core: &Core) -> anyhow::Result<()> {
    let system = [
        (
            ADMINISTRATORS_ID,
            "Administrators",
            "Full rights over everything.",
            1,
            settings::administrators_seed(),
        ),
        (
            ALL_USERS_ID,
            "All Users",
            "Every user is a member; settings that apply to everyone.",
            1000,
            settings::all_users_seed(),
        ),
    ];
    for (id, name, description, priority, seed) in system {
        if core
            .repo
            .find_group(id)
            .await
            .map_err(api_to_anyhow)?
            .is_some()
        {
            continue;
        }
        let now = Utc::now();
        let row = group::Model {
            id: id.to_owned(),
            name: name.to_owned(),
            name_key: name.to_lowercase(),
            description: description.to_owned(),
            priority,
            is_system: true,
            created_at: now,
            updated_at: now,
        };
        let settings = seed
            .into_iter()
            .map(|(setting, value)| group_setting::Model {
                group_id: id.to_owned(),
                name: setting.to_owned(),
                value: value.to_storage(),
                updated_at: now,
            })
            .collect();
        match core.repo.create_group(row, settings, Vec::new()).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(api_to_anyhow(e)),
        }
    }
    Ok(())
}
