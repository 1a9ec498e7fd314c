//! The gateway's configuration (see `atrium-gateway --dump-config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use atrium_service_kit::telemetry::LogFormat;
use atrium_service_kit::tls::TlsConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where browsers and API clients connect. On a loopback address it may serve plain HTTP
    /// (browsers treat localhost as a secure context); on any other address `public_tls` is
    /// required.
    pub listen: SocketAddr,
    /// HTTP address of `/metrics`; unset for none.
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// The gateway's own identity toward the services (mutual TLS).
    pub tls: TlsConfig,
    /// HTTPS for browsers and API clients: a certificate chain and key (PEM).
    pub public_tls: Option<PublicTls>,
    pub identity_endpoint: String,
    pub policy_endpoint: String,
    pub session_endpoint: String,
    /// Billing-usage; unset when the deployment has none (usage routes then answer 503).
    pub usage_endpoint: Option<String>,
    /// Must match identity's `issuer`.
    pub issuer: String,
    /// Largest request body accepted on the APIs (the session proxy streams and has no limit).
    pub max_body_bytes: usize,
    /// Login attempts per client address per minute (a burst of this size, refilled evenly).
    pub login_per_minute: u32,
    /// Developer API calls per API key per second (a burst of twice this, refilled evenly).
    pub public_api_per_second: u32,
    /// A proxied WebSocket or HTTP connection with no traffic either way for this long is
    /// closed; the user's effective `idle_disconnect` (minutes) applies when shorter.
    pub proxy_idle_timeout_secs: u64,
    pub shutdown_deadline_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7006)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9106))),
            log_format: LogFormat::Pretty,
            tls: TlsConfig::default(),
            public_tls: None,
            identity_endpoint: "https://127.0.0.1:7001".into(),
            policy_endpoint: "https://127.0.0.1:7002".into(),
            session_endpoint: "https://127.0.0.1:7003".into(),
            usage_endpoint: Some("https://127.0.0.1:7005".into()),
            issuer: "atrium".into(),
            max_body_bytes: 1 << 20,
            login_per_minute: 20,
            public_api_per_second: 200,
            proxy_idle_timeout_secs: 3600,
            shutdown_deadline_secs: 10,
        }
    }
}

impl GatewayConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.tls.validate("tls")?;
        for (field, url) in [
            ("identity_endpoint", &self.identity_endpoint),
            ("policy_endpoint", &self.policy_endpoint),
            ("session_endpoint", &self.session_endpoint),
        ] {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                anyhow::bail!("{field}: must be an http:// or https:// URL");
            }
        }
        if let Some(url) = &self.usage_endpoint
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            anyhow::bail!("usage_endpoint: must be an http:// or https:// URL");
        }
        if self.public_tls.is_none() && !self.listen.ip().is_loopback() {
            anyhow::bail!(
                "public_tls: required when listen ({}) is not a loopback address; plain HTTP is only for localhost",
                self.listen
            );
        }
        if self.max_body_bytes < 1024 {
            anyhow::bail!("max_body_bytes: at least 1024");
        }
        if self.login_per_minute == 0 {
            anyhow::bail!("login_per_minute: at least 1");
        }
        if self.public_api_per_second == 0 {
            anyhow::bail!("public_api_per_second: at least 1");
        }
        if self.proxy_idle_timeout_secs == 0 {
            anyhow::bail!("proxy_idle_timeout_secs: at least 1");
        }
        Ok(())
    }
}
