//! Billing-usage's configuration (see `atrium-billing-usage --dump-config`).

use std::net::SocketAddr;

use atrium_service_kit::telemetry::LogFormat;
use atrium_service_kit::tls::TlsConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingUsageConfig {
    pub listen: SocketAddr,
    /// HTTP address of `/metrics`; unset for none.
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite://path` or `postgres://…`.
    pub database_url: String,
    pub log_format: LogFormat,
    pub tls: TlsConfig,
    /// Identity's gRPC address: verification keys and API keys come from there.
    pub identity_endpoint: String,
    /// Policy's gRPC address: each user's effective usage_limit comes from there.
    pub policy_endpoint: String,
    /// Must match identity's `issuer`.
    pub issuer: String,
    /// The IANA timezone of the calendar windows (days, weeks from Monday, months), e.g.
    /// `Europe/Berlin`. Changing it re-buckets the ledger at the next start.
    pub timezone: String,
    /// How long a user's effective usage_limit from policy is reused.
    pub policy_cache_ms: u64,
    /// How long a subject's usage parts are reused for checks. Events ingested by this process
    /// take effect at once; by another replica, within this time. 0 turns the cache off.
    pub usage_cache_ms: u64,
    pub shutdown_deadline_secs: u64,
}

impl Default for BillingUsageConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7005)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9105))),
            database_url: "sqlite://.atrium/billing-usage.db".into(),
            log_format: LogFormat::Pretty,
            tls: TlsConfig::default(),
            identity_endpoint: "https://127.0.0.1:7001".into(),
            policy_endpoint: "https://127.0.0.1:7002".into(),
            issuer: "atrium".into(),
            timezone: "UTC".into(),
            policy_cache_ms: 3_000,
            usage_cache_ms: 1_000,
            shutdown_deadline_secs: 10,
        }
    }
}

impl BillingUsageConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.tls.validate("tls")?;
        for (field, url) in [
            ("identity_endpoint", &self.identity_endpoint),
            ("policy_endpoint", &self.policy_endpoint),
        ] {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                anyhow::bail!("{field}: must be an http:// or https:// URL");
            }
        }
        crate::window::parse_timezone(&self.timezone)
            .map_err(|e| anyhow::anyhow!("timezone: {e}"))?;
        if self.usage_cache_ms > 60_000 {
            anyhow::bail!("usage_cache_ms: at most 60000");
        }
        if self.policy_cache_ms > 60_000 {
            anyhow::bail!(
                "policy_cache_ms: at most 60000, so that changes take effect within a minute"
            );
        }
        Ok(())
    }
}
