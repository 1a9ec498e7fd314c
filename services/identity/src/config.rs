//! Identity's configuration (see `atrium-identity --dump-config`).

use std::net::SocketAddr;

use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::LogFormat;
use atrium_service_kit::tls::TlsConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// HTTP address of `/metrics` (OpenMetrics text, for Prometheus); unset for none.
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite://path` or `postgres://…`.
    pub database_url: String,
    pub log_format: LogFormat,
    /// The `iss` of access tokens; every service verifying them must agree.
    pub issuer: String,
    pub access_token_ttl_secs: u32,
    pub refresh_token_ttl_secs: u32,
    /// Consecutive failed passwords that lock a local account (0: never lock).
    pub lockout_threshold: u32,
    /// Minimum password length (at least 8).
    pub password_min_length: u32,
    /// 32 random bytes, base64: seals SSH private keys, TOTP and signing keys at rest. Required.
    pub secrets_key: Option<Secret>,
    /// TLS for the gRPC and metrics listeners and for calls to policy (mutual TLS: the
    /// certificate names this service).
    pub tls: TlsConfig,
    /// Password for the `admin` user created on first start; random (and printed once) if unset.
    pub bootstrap_admin_password: Option<Secret>,
    /// How long in-flight calls may take to finish on shutdown.
    pub shutdown_deadline_secs: u64,
    /// The policy service. When set, users' rights come from their effective permissions there
    /// and user creation/deletion is reported to it; when unset (identity alone), only the
    /// bootstrap administrator has admin rights.
    pub policy_endpoint: Option<String>,
    /// How long a user's permissions from policy are reused.
    pub permissions_cache_ttl_ms: u64,
    /// How long an automatic lockout (from failed attempts) lasts; an administrator's lock
    /// (UpdateUser `locked`) stays until unlocked.
    pub lockout_duration_secs: u64,
    /// Wrong two-factor codes after a correct password that lock the account (for
    /// `lockout_duration_secs`), even when `lockout_threshold` is 0. At least 1.
    pub totp_max_attempts: u32,
    /// Argon2 computations at once (each takes ~19 MiB and tens of ms of CPU); 0: one per core.
    pub password_hash_concurrency: u32,
    /// Login attempts per account per minute (bursts up to the same number); 0: unlimited.
    pub login_attempts_per_account_per_minute: u32,
    /// Login attempts per source address per minute; 0: unlimited.
    pub login_attempts_per_source_per_minute: u32,
    /// Audit events older than this are deleted; 0: kept forever.
    pub audit_retention_days: u32,
    /// Login sessions that ended (revoked or expired) longer ago than this are deleted; 0: kept.
    pub login_session_retention_days: u32,
    /// How often the retention task runs.
    pub retention_interval_secs: u64,
}

/// Access tokens are verified locally by every service and refused early only through
/// revocations; their lifetime is capped so that an unrevoked token never lives long.
pub const MAX_ACCESS_TOKEN_TTL_SECS: u32 = 15 * 60;

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7001)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9101))),
            database_url: "sqlite://.atrium/identity.db".into(),
            log_format: LogFormat::Pretty,
            issuer: "atrium".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            lockout_threshold: 5,
            password_min_length: 8,
            secrets_key: None,
            tls: TlsConfig::default(),
            bootstrap_admin_password: None,
            shutdown_deadline_secs: 10,
            policy_endpoint: None,
            permissions_cache_ttl_ms: 3_000,
            lockout_duration_secs: 15 * 60,
            totp_max_attempts: 5,
            password_hash_concurrency: 0,
            login_attempts_per_account_per_minute: 10,
            login_attempts_per_source_per_minute: 120,
            audit_retention_days: 365,
            login_session_retention_days: 30,
            retention_interval_secs: 3600,
        }
    }
}

impl IdentityConfig {
    /// Refuses configurations the service cannot run safely with.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.password_min_length < 8 {
            anyhow::bail!("password_min_length: must be at least 8");
        }
        if self.access_token_ttl_secs < 30 || self.access_token_ttl_secs > MAX_ACCESS_TOKEN_TTL_SECS
        {
            anyhow::bail!(
                "access_token_ttl_secs: must be between 30 and {MAX_ACCESS_TOKEN_TTL_SECS} (15 \
                 minutes; longer-lived tokens would outlive revocations)"
            );
        }
        if self.lockout_duration_secs == 0 || self.lockout_duration_secs > 30 * 24 * 3600 {
            anyhow::bail!("lockout_duration_secs: must be between 1 and 2592000 (30 days)");
        }
        if self.totp_max_attempts == 0 {
            anyhow::bail!("totp_max_attempts: must be at least 1");
        }
        if self.retention_interval_secs == 0 {
            anyhow::bail!("retention_interval_secs: must be at least 1");
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            anyhow::bail!("refresh_token_ttl_secs: must be at least access_token_ttl_secs");
        }
        if self.issuer.trim().is_empty() {
            anyhow::bail!("issuer: must not be empty");
        }
        self.tls.validate("tls")?;
        if self.permissions_cache_ttl_ms > 60_000 {
            anyhow::bail!("permissions_cache_ttl_ms: at most 60000");
        }
        if self.secrets_key.is_none() {
            anyhow::bail!(
                "secrets_key: required (32 random bytes, base64; e.g. `openssl rand -base64 32`)"
            );
        }
        if let Some(p) = &self.bootstrap_admin_password
            && p.expose().chars().count() < self.password_min_length as usize
        {
            anyhow::bail!("bootstrap_admin_password: shorter than password_min_length");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> IdentityConfig {
        IdentityConfig {
            secrets_key: Some(Secret::new("k")),
            ..IdentityConfig::default()
        }
    }

    #[test]
    fn access_tokens_live_at_most_fifteen_minutes() {
        // (Other fields, such as TLS, may still be missing here; this one is fine.)
        let at_cap = IdentityConfig {
            access_token_ttl_secs: MAX_ACCESS_TOKEN_TTL_SECS,
            ..valid()
        };
        if let Err(e) = at_cap.validate() {
            assert!(!e.to_string().starts_with("access_token_ttl_secs"), "{e}");
        }
        let config = IdentityConfig {
            access_token_ttl_secs: MAX_ACCESS_TOKEN_TTL_SECS + 1,
            ..valid()
        };
        let err = config.validate().expect_err("over the cap").to_string();
        assert!(err.starts_with("access_token_ttl_secs:"), "{err}");
    }

    #[test]
    fn lockout_and_totp_bounds_are_named() {
        for (config, field) in [
            (
                IdentityConfig {
                    lockout_duration_secs: 0,
                    ..valid()
                },
                "lockout_duration_secs",
            ),
            (
                IdentityConfig {
                    totp_max_attempts: 0,
                    ..valid()
                },
                "totp_max_attempts",
            ),
        ] {
            let err = config.validate().expect_err(field).to_string();
            assert!(err.starts_with(field), "{err}");
        }
    }
}
