//! The session-manager's configuration (see `atrium-session-manager --dump-config`).

use std::net::SocketAddr;

use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::LogFormat;
use atrium_service_kit::tls::TlsConfig;
use serde::{Deserialize, Serialize};

/// What admission does while billing-usage cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnavailablePolicy {
    /// Admit, and record on the session that it was admitted without a usage check.
    #[default]
    Allow,
    /// Refuse new sessions until billing-usage answers again.
    Refuse,
}

impl UnavailablePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            UnavailablePolicy::Allow => "allow",
            UnavailablePolicy::Refuse => "refuse",
        }
    }
}

/// The most events one `IngestEvents` call may carry (billing-usage's limit).
pub const MAX_DELIVERY_BATCH: usize = 5000;

/// The usage_limit allowance (billing-usage) and the delivery of the lifecycle outbox to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// billing-usage's gRPC URL. Unset: no usage service — nobody's allowance is ever spent,
    /// and the outbox keeps its events until one is configured.
    pub endpoint: Option<String>,
    /// Admission while billing-usage cannot answer: `allow` (recorded on the session) or
    /// `refuse`. Keepalives always extend while it is away.
    pub when_unavailable: UnavailablePolicy,
    /// How long a user's CheckUsage answer is reused (never past the moment it said the
    /// allowance runs out). 0: every admission asks.
    pub check_cache_ms: u64,
    /// Outbox events per IngestEvents call (at most 5000).
    pub delivery_batch: usize,
    /// How often the outbox is looked at when it was last found drained.
    pub delivery_interval_ms: u64,
    /// Delivered events are deleted from the outbox this long after delivery (hourly). 0:
    /// kept for ever.
    pub retain_delivered_hours: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            when_unavailable: UnavailablePolicy::Allow,
            check_cache_ms: 2_000,
            delivery_batch: 1_000,
            delivery_interval_ms: 500,
            retain_delivered_hours: 168,
        }
    }
}

impl UsageConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.endpoint
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            anyhow::bail!("usage.endpoint: must be an http:// or https:// URL");
        }
        if self.check_cache_ms > 60_000 {
            anyhow::bail!("usage.check_cache_ms: at most 60000 (a minute)");
        }
        if self.delivery_batch == 0 || self.delivery_batch > MAX_DELIVERY_BATCH {
            anyhow::bail!("usage.delivery_batch: from 1 to {MAX_DELIVERY_BATCH}");
        }
        if self.delivery_interval_ms == 0 {
            anyhow::bail!("usage.delivery_interval_ms: must be at least 1");
        }
        Ok(())
    }
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
    /// billing-usage: allowances at admission and keepalive, and the outbox delivery.
    pub usage: UsageConfig,
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
            usage: UsageConfig::default(),
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
        self.usage.validate()?;
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

#[cfg(test)]
mod tests {
    use atrium_service_kit::config::{ConfigArgs, load};

    use super::*;

    fn loaded(overrides: &[&str]) -> anyhow::Result<SessionManagerConfig> {
        let args = ConfigArgs {
            overrides: overrides.iter().map(|s| (*s).to_owned()).collect(),
            ..ConfigArgs::default()
        };
        load(
            "session-manager-config-test",
            &SessionManagerConfig::default(),
            &args,
        )
    }

    #[test]
    fn usage_is_off_by_default_and_set_by_its_fields() {
        let config = loaded(&[]).expect("defaults");
        assert_eq!(config.usage, UsageConfig::default());
        assert_eq!(config.usage.endpoint, None);
        config.usage.validate().expect("valid");
        let config = loaded(&[
            "usage.endpoint=https://127.0.0.1:7005",
            "usage.when_unavailable=refuse",
            "usage.check_cache_ms=500",
            "usage.delivery_batch=5000",
            "usage.delivery_interval_ms=100",
            "usage.retain_delivered_hours=24",
        ])
        .expect("set");
        assert_eq!(
            config.usage,
            UsageConfig {
                endpoint: Some("https://127.0.0.1:7005".into()),
                when_unavailable: UnavailablePolicy::Refuse,
                check_cache_ms: 500,
                delivery_batch: 5000,
                delivery_interval_ms: 100,
                retain_delivered_hours: 24,
            }
        );
        config.usage.validate().expect("valid");
        assert!(
            loaded(&["usage.when_away=allow"]).is_err(),
            "unknown keys are refused"
        );
        assert!(loaded(&["usage.when_unavailable=maybe"]).is_err());
    }

    #[test]
    fn bad_usage_values_name_the_field() {
        let bad = [
            (
                UsageConfig {
                    endpoint: Some("billing:7005".into()),
                    ..UsageConfig::default()
                },
                "usage.endpoint: must be an http:// or https:// URL",
            ),
            (
                UsageConfig {
                    delivery_batch: 5001,
                    ..UsageConfig::default()
                },
                "usage.delivery_batch: from 1 to 5000",
            ),
            (
                UsageConfig {
                    delivery_batch: 0,
                    ..UsageConfig::default()
                },
                "usage.delivery_batch: from 1 to 5000",
            ),
            (
                UsageConfig {
                    delivery_interval_ms: 0,
                    ..UsageConfig::default()
                },
                "usage.delivery_interval_ms: must be at least 1",
            ),
            (
                UsageConfig {
                    check_cache_ms: 60_001,
                    ..UsageConfig::default()
                },
                "usage.check_cache_ms: at most 60000 (a minute)",
            ),
        ];
        for (usage, message) in bad {
            let config = SessionManagerConfig {
                usage,
                tls: TlsConfig {
                    insecure_plaintext: true,
                    ..TlsConfig::default()
                },
                ..SessionManagerConfig::default()
            };
            let error = config.validate().expect_err(message);
            assert_eq!(error.to_string(), message);
        }
    }
}
