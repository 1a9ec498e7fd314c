//! Identity's configuration (see `atrium-identity --dump-config`).

use std::net::SocketAddr;

use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::LogFormat;
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
    /// The credential Atrium's services present to each other (`Service <token>`).
    pub service_token: Option<Secret>,
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
}

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
            service_token: None,
            bootstrap_admin_password: None,
            shutdown_deadline_secs: 10,
            policy_endpoint: None,
            permissions_cache_ttl_ms: 3_000,
        }
    }
}

impl IdentityConfig {
    /// Refuses configurations the service cannot run safely with.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.password_min_length < 8 {
            anyhow::bail!("password_min_length: must be at least 8");
        }
        if self.access_token_ttl_secs < 30 || self.access_token_ttl_secs > 24 * 3600 {
            anyhow::bail!("access_token_ttl_secs: must be between 30 and 86400");
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            anyhow::bail!("refresh_token_ttl_secs: must be at least access_token_ttl_secs");
        }
        if self.issuer.trim().is_empty() {
            anyhow::bail!("issuer: must not be empty");
        }
        if self.policy_endpoint.is_some() && self.service_token.is_none() {
            anyhow::bail!("service_token: required when policy_endpoint is set");
        }
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
