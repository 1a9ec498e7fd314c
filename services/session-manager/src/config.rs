//! The session-manager's configuration (see `atrium-session-manager --dump-config`).

use std::net::SocketAddr;

use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::LogFormat;
use atrium_service_kit::tls::TlsConfig;
use serde::{Deserialize, Serialize};

/// What admission does while the usage service cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UsageMode {
    /// No usage service: nobody's allowance is ever spent (until billing-usage runs).
    #[default]
    NoLimit,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionManagerConfig {
    pub listen: SocketAddr,
    /// HTTP address of `/metrics`; unset for none.
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite://path` or `postgres://…`.
    pub database_url: String,
    pub log_format: LogFormat,
    pub tls: TlsConfig,
    pub identity_endpoint: String,
    pub policy_endpoint: String,
    /// Must match identity's `issuer`.
    pub issuer: String,
    /// Keepalive deadlines and agent heartbeats. Unset: both in this process (`atrium up`).
    pub redis_url: Option<Secret>,
    /// Prefix of this deployment's keys in Redis (deployments may share one Redis).
    pub redis_namespace: String,
    /// 32 bytes, base64: seals each session's VNC password and launch spec.
    pub secrets_key: Option<Secret>,
    /// This replica's name in session leases; a restarted replica with the same name takes
    /// its sessions back at once. Empty: derived from the host name and listen port.
    pub replica_id: String,
    pub usage: UsageMode,
    /// The periodic pass over unsettled sessions (every change also nudges at once).
    pub reconcile_interval_ms: u64,
    /// Agent calls in flight at once.
    pub max_concurrent_actions: usize,
    /// From requested to running, else failed.
    pub start_timeout_secs: u64,
    /// How long a pause, stop or delete may run before its state is looked at again.
    pub operation_timeout_secs: u64,
    /// An agent silent this long makes its sessions lost.
    pub lost_grace_secs: u64,
    /// A container an agent holds with no live session is removed after this long.
    pub orphan_grace_secs: u64,
    /// How often the reaper looks for expired deadlines.
    pub reap_interval_ms: u64,
    pub shutdown_deadline_secs: u64,
}

impl Default for SessionManagerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7003)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9103))),
            database_url: "sqlite://.atrium/session-manager.db".into(),
            log_format: LogFormat::Pretty,
            tls: TlsConfig::default(),
            identity_endpoint: "https://127.0.0.1:7001".into(),
            policy_endpoint: "https://127.0.0.1:7002".into(),
            issuer: "atrium".into(),
            redis_url: None,
            redis_namespace: "atrium".into(),
            secrets_key: None,
            replica_id: String::new(),
            usage: UsageMode::NoLimit,
            reconcile_interval_ms: 1_000,
            max_concurrent_actions: 32,
            start_timeout_secs: 120,
            operation_timeout_secs: 60,
            lost_grace_secs: 30,
            orphan_grace_secs: 60,
            reap_interval_ms: 200,
            shutdown_deadline_secs: 10,
        }
    }
}

impl SessionManagerConfig {
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
        if self.redis_namespace.is_empty()
            || !self
                .redis_namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            anyhow::bail!("redis_namespace: letters, digits, '_', '-' and '.', not empty");
        }
        let positive = [
            ("reconcile_interval_ms", self.reconcile_interval_ms),
            ("start_timeout_secs", self.start_timeout_secs),
            ("operation_timeout_secs", self.operation_timeout_secs),
            ("lost_grace_secs", self.lost_grace_secs),
            ("reap_interval_ms", self.reap_interval_ms),
            ("max_concurrent_actions", self.max_concurrent_actions as u64),
        ];
        for (field, value) in positive {
            if value == 0 {
                anyhow::bail!("{field}: must be at least 1");
            }
        }
        Ok(())
    }

    /// The replica id in effect.
    pub fn replica(&self) -> String {
        if self.replica_id.is_empty() {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".into());
            format!("{host}:{}", self.listen.port())
        } else {
            self.replica_id.clone()
        }
    }
}
