//! The billing-usage role: its own database, wired to identity (keys, API keys, revocations)
//! and policy (each user's usage_limit), with the launch's timezone for its calendar windows
//! and, with identity here too, identity's key set.

use anyhow::Context as _;
use atrium_billing_usage::{BillingUsage, BillingUsageConfig};
use atrium_service_kit::auth::KeySet;

use crate::role::Role;
use crate::services::{Listeners, Serving, Wiring};

pub(crate) async fn start(
    wiring: &Wiring<'_>,
    listeners: Listeners,
    keys: Option<KeySet>,
) -> anyhow::Result<Serving> {
    let mut config = BillingUsageConfig {
        listen: listeners.grpc.local_addr()?,
        database_url: wiring.database_url(Role::BillingUsage)?,
        log_format: wiring.config.log_format,
        tls: wiring.tls(Role::BillingUsage),
        identity_endpoint: wiring.require(Role::Identity, Role::BillingUsage)?,
        policy_endpoint: wiring.require(Role::Policy, Role::BillingUsage)?,
        timezone: wiring.config.timezone.clone(),
        shutdown_deadline_secs: wiring.deadline_secs(),
        ..BillingUsageConfig::default()
    };
    if let Some(tune) = &wiring.config.tuning.billing_usage {
        tune(&mut config);
    }
    let usage = BillingUsage::with_keys(config, keys)
        .await
        .context("start billing-usage")?;
    let shutdown = wiring.shutdown.clone();
    Ok(Box::pin(usage.serve(
        listeners.grpc,
        listeners.metrics,
        shutdown,
    )))
}
