//! Policy's configuration (see `atrium-policy --dump-config`).

use std::net::SocketAddr;

use atrium_service_kit::telemetry::LogFormat;
use atrium_service_kit::tls::TlsConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub listen: SocketAddr,
    /// HTTP address of `/metrics` (OpenMetrics text, for Prometheus); unset for none.
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite://path` or `postgres://…`.
    pub database_url: String,
    pub log_format: LogFormat,
    /// Identity's gRPC address: verification keys and API keys come from there.
    pub identity_endpoint: String,
    /// Must match identity's `issuer`.
    pub issuer: String,
    /// TLS for the gRPC and metrics listeners and for calls to identity (mutual TLS: the
    /// certificate names this service).
    pub tls: TlsConfig,
    /// New workspaces are assigned to All Users unless the create call says otherwise.
    pub new_workspaces_join_all_users: bool,
    /// How long a resolved policy may be served from cache. Changes made through this replica
    /// take effect at once; changes made through another replica within this time.
    pub cache_ttl_ms: u64,
    pub shutdown_deadline_secs: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7002)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9102))),
            database_url: "sqlite://.atrium/policy.db".into(),
            log_format: LogFormat::Pretty,
            identity_endpoint: "https://127.0.0.1:7001".into(),
            issuer: "atrium".into(),
            tls: TlsConfig::default(),
            new_workspaces_join_all_users: true,
            cache_ttl_ms: 5_000,
            shutdown_deadline_secs: 10,
        }
    }
}

impl PolicyConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.tls.validate("tls")?;
        if !self.identity_endpoint.starts_with("http://")
            && !self.identity_endpoint.starts_with("https://")
        {
            anyhow::bail!("identity_endpoint: must be an http:// or https:// URL");
        }
        if self.cache_ttl_ms > 60_000 {
            anyhow::bail!(
                "cache_ttl_ms: at most 60000, so that changes take effect within a minute"
            );
        }
        Ok(())
    }
}
