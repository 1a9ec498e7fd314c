//! The session-manager role: wired to identity and policy, to billing-usage when it runs in
//! this launch or elsewhere (`LaunchConfig::external`), sharing the launch's heartbeat store
//! with the agent (so an agent in this process is placed on without Redis), and, with identity
//! here too, identity's key set.

use anyhow::Context as _;
use atrium_service_kit::Secret;
use atrium_service_kit::auth::KeySet;
use atrium_session_manager::{SessionManager, SessionManagerConfig};

use crate::role::Role;
use crate::services::{Listeners, Serving, Wiring};

pub(crate) async fn start(
    wiring: &Wiring<'_>,
    listeners: Listeners,
    keys: Option<KeySet>,
) -> anyhow::Result<Serving> {
    let secrets_key = wiring
        .secrets
        .session_manager_secrets_key
        .clone()
        .context("secrets.json has no session-manager key")?;
    let mut config = SessionManagerConfig {
        listen: listeners.grpc.local_addr()?,
        database_url: wiring.database_url(Role::SessionManager)?,
        log_format: wiring.config.log_format,
        tls: wiring.tls(Role::SessionManager),
        identity_endpoint: wiring.require(Role::Identity, Role::SessionManager)?,
        policy_endpoint: wiring.require(Role::Policy, Role::SessionManager)?,
        redis_url: wiring.config.redis_url.clone(),
        redis_namespace: wiring.config.redis_namespace.clone(),
        secrets_key: Some(Secret::new(secrets_key)),
        shutdown_deadline_secs: wiring.deadline_secs(),
        ..SessionManagerConfig::default()
    };
    // Admission checks and the lifecycle events go to billing-usage when it runs here or
    // elsewhere; without it nobody's allowance is ever spent.
    config.usage.endpoint = wiring.endpoint(Role::BillingUsage);
    if let Some(tune) = &wiring.config.tuning.session_manager {
        tune(&mut config);
    }
    let manager = SessionManager::with_parts(config, wiring.heartbeats()?, keys)
        .await
        .context("start the session-manager")?;
    let shutdown = wiring.shutdown.clone();
    Ok(Box::pin(manager.serve(
        listeners.grpc,
        listeners.metrics,
        shutdown,
    )))
}
