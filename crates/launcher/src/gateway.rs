//! The gateway role: the public entrance, wired to identity, policy, the session-manager and
//! (when there is one) billing-usage. Bound to loopback it serves plain HTTP (browsers treat
//! localhost as a secure context, and a self-signed certificate would greet a newcomer with a
//! warning page); bound to any other address it serves TLS with its certificate from the
//! launch's CA.

use anyhow::Context as _;
use atrium_gateway::config::PublicTls;
use atrium_gateway::{Gateway, GatewayConfig};
use atrium_service_kit::auth::KeySet;

use crate::role::Role;
use crate::services::{Listeners, Serving, Wiring};

/// Whether the gateway on `host` serves plain HTTP.
pub(crate) fn plain_http(host: std::net::IpAddr) -> bool {
    host.is_loopback()
}

pub(crate) async fn start(
    wiring: &Wiring<'_>,
    listeners: Listeners,
    keys: Option<KeySet>,
) -> anyhow::Result<Serving> {
    let tls = wiring.tls(Role::Gateway);
    let public_tls = if plain_http(wiring.config.host) {
        None
    } else {
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => Some(PublicTls {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => anyhow::bail!("the gateway's certificate is missing from the launch's CA"),
        }
    };
    let mut config = GatewayConfig {
        listen: listeners.grpc.local_addr()?,
        metrics_listen: None,
        log_format: wiring.config.log_format,
        tls,
        public_tls,
        identity_endpoint: wiring.require(Role::Identity, Role::Gateway)?,
        policy_endpoint: wiring.require(Role::Policy, Role::Gateway)?,
        session_endpoint: wiring.require(Role::SessionManager, Role::Gateway)?,
        usage_endpoint: wiring.endpoint(Role::BillingUsage),
        shutdown_deadline_secs: wiring.deadline_secs(),
        ..GatewayConfig::default()
    };
    if let Some(tune) = &wiring.config.tuning.gateway {
        tune(&mut config);
    }
    let gateway = Gateway::with_keys(config, keys)
        .await
        .context("start the gateway")?;
    let shutdown = wiring.shutdown.clone();
    Ok(Box::pin(gateway.serve(
        listeners.grpc,
        listeners.metrics,
        shutdown,
    )))
}
