//! What the launcher needs to know: where data lives, where each role listens, which database
//! and Redis to use, and per-service adjustments on top of the launcher's wiring.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atrium_agent::AgentConfig;
use atrium_billing_usage::BillingUsageConfig;
use atrium_gateway::GatewayConfig;
use atrium_identity::IdentityConfig;
use atrium_policy::PolicyConfig;
use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::LogFormat;
use atrium_session_manager::SessionManagerConfig;

use crate::role::Role;

/// Whether billing-usage takes `name` as the timezone of its windows (an IANA name such as
/// `Europe/Berlin`); the error says why not.
pub fn check_timezone(name: &str) -> Result<(), String> {
    atrium_billing_usage::window::parse_timezone(name).map(|_| ())
}

/// Where the `/metrics` ports are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsPorts {
    /// No `/metrics` listeners.
    Off,
    /// Each role at `base + its number` (identity BASE+1, policy BASE+2, ...).
    Base(u16),
    /// Each role on a port of the system's choosing (tests).
    Ephemeral,
}

/// Where the services keep their data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// One SQLite file per service under the data directory (`identity.db`, ...): the embedded
    /// default.
    Sqlite,
    /// One PostgreSQL database per service, named `<prefix><service>` (`atrium_identity`,
    /// `atrium_policy`, `atrium_billing_usage`, `atrium_session_manager`) on the server `admin_url` points at, created
    /// when missing. `admin_url` names a database the launcher may connect to to create them
    /// (`postgres://user:pw@host:5432/postgres`).
    Postgres { admin_url: Secret, prefix: String },
}

impl Storage {
    /// PostgreSQL with the `atrium_` prefix.
    pub fn postgres(admin_url: impl Into<String>) -> Self {
        Storage::Postgres {
            admin_url: Secret::new(admin_url.into()),
            prefix: "atrium_".into(),
        }
    }
}

type Tune<C> = Arc<dyn Fn(&mut C) + Send + Sync>;

/// `first`, then `then`.
fn chain<C: 'static>(
    first: Option<Tune<C>>,
    then: impl Fn(&mut C) + Send + Sync + 'static,
) -> Option<Tune<C>> {
    Some(match first {
        None => Arc::new(then),
        Some(first) => Arc::new(move |config: &mut C| {
            first(config);
            then(config);
        }),
    })
}

/// Changes to a service's configuration after the launcher has wired it (rate limits, cache
/// lifetimes, an agent id): applied last, so they win. Each `tune_*` call adds to what earlier
/// ones set; they apply in the order given.
#[derive(Clone, Default)]
pub struct Tuning {
    pub identity: Option<Tune<IdentityConfig>>,
    pub policy: Option<Tune<PolicyConfig>>,
    pub agent: Option<Tune<AgentConfig>>,
    pub session_manager: Option<Tune<SessionManagerConfig>>,
    pub billing_usage: Option<Tune<BillingUsageConfig>>,
    pub gateway: Option<Tune<GatewayConfig>>,
}

impl fmt::Debug for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tuning")
            .field("identity", &self.identity.is_some())
            .field("policy", &self.policy.is_some())
            .field("agent", &self.agent.is_some())
            .field("session_manager", &self.session_manager.is_some())
            .field("billing_usage", &self.billing_usage.is_some())
            .field("gateway", &self.gateway.is_some())
            .finish()
    }
}

/// How to start a set of roles.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// Local secrets (`secrets.json`), SQLite files and, unless `ca_dir` says otherwise, the
    /// local CA (`tls/`). Created when missing.
    pub data_dir: PathBuf,
    /// The address every role listens on.
    pub host: IpAddr,
    /// gRPC ports by role; a role not named here gets [`Role::default_port`]; 0 means a port of
    /// the system's choosing.
    pub ports: BTreeMap<Role, u16>,
    pub metrics: MetricsPorts,
    /// The Docker engine the agent runs session containers on.
    pub docker_host: String,
    /// Redis for heartbeats (and the session-manager's keepalives); `None` keeps them in this
    /// process.
    pub redis_url: Option<Secret>,
    /// Prefix of this launch's keys in Redis: launches sharing one Redis (test sandboxes, two
    /// deployments) see only their own agents and deadlines.
    pub redis_namespace: String,
    pub storage: Storage,
    pub log_format: LogFormat,
    /// Where the local CA and the service certificates live (made on first use); `None` for
    /// `<data_dir>/tls`.
    pub ca_dir: Option<PathBuf>,
    /// The bootstrap administrator's password on a fresh identity database; `None` generates
    /// one (shown once, in [`crate::Running::bootstrap_admin`]).
    pub admin_password: Option<Secret>,
    /// With identity and policy in this process, policy verifies tokens with identity's own
    /// key set instead of fetching the keys over gRPC.
    pub share_verification_keys: bool,
    /// How long in-flight calls get once shutdown begins.
    pub shutdown_deadline: Duration,
    /// How long start-up waits for every role to report SERVING.
    pub ready_timeout: Duration,
    /// Whether start-up also waits for the agent's container engine: an agent reports
    /// NOT_SERVING while Docker does not answer, and `atrium up` without Docker still runs.
    pub wait_for_docker: bool,
    /// Endpoints (`https://host:port`) of roles that run elsewhere, for the roles started here
    /// to call: e.g. `Role::BillingUsage` for a session-manager started here when billing-usage
    /// runs separately (a session-manager with billing-usage in neither place admits without
    /// usage limits).
    pub external: BTreeMap<Role, String>,
    /// The IANA timezone of billing-usage's calendar windows (days, weeks from Monday, months)
    /// and its by-day history, e.g. `Europe/Berlin`.
    pub timezone: String,
    pub tuning: Tuning,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".atrium"),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: BTreeMap::new(),
            metrics: MetricsPorts::Base(9100),
            docker_host: "unix:///var/run/docker.sock".into(),
            redis_url: None,
            redis_namespace: "atrium".into(),
            storage: Storage::Sqlite,
            log_format: LogFormat::Pretty,
            ca_dir: None,
            admin_password: None,
            share_verification_keys: true,
            shutdown_deadline: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(60),
            wait_for_docker: false,
            external: BTreeMap::new(),
            timezone: "UTC".into(),
            tuning: Tuning::default(),
        }
    }
}

impl LaunchConfig {
    /// Every role on a port of the system's choosing, metrics too (tests).
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ports: Role::ALL.into_iter().map(|r| (r, 0)).collect(),
            metrics: MetricsPorts::Ephemeral,
            shutdown_deadline: Duration::from_secs(1),
            ..Self::default()
        }
    }

    /// The gRPC port `role` listens on (0: the system's choice).
    pub fn port(&self, role: Role) -> u16 {
        self.ports
            .get(&role)
            .copied()
            .unwrap_or_else(|| role.default_port())
    }

    /// Adjusts identity's configuration after the launcher's wiring (after earlier
    /// adjustments).
    pub fn tune_identity(
        mut self,
        tune: impl Fn(&mut IdentityConfig) + Send + Sync + 'static,
    ) -> Self {
        self.tuning.identity = chain(self.tuning.identity.take(), tune);
        self
    }

    /// Adjusts policy's configuration after the launcher's wiring.
    pub fn tune_policy(mut self, tune: impl Fn(&mut PolicyConfig) + Send + Sync + 'static) -> Self {
        self.tuning.policy = chain(self.tuning.policy.take(), tune);
        self
    }

    /// Adjusts the agent's configuration after the launcher's wiring.
    pub fn tune_agent(mut self, tune: impl Fn(&mut AgentConfig) + Send + Sync + 'static) -> Self {
        self.tuning.agent = chain(self.tuning.agent.take(), tune);
        self
    }

    /// Adjusts the session-manager's configuration after the launcher's wiring.
    pub fn tune_session_manager(
        mut self,
        tune: impl Fn(&mut SessionManagerConfig) + Send + Sync + 'static,
    ) -> Self {
        self.tuning.session_manager = chain(self.tuning.session_manager.take(), tune);
        self
    }

    /// Adjusts billing-usage's configuration after the launcher's wiring.
    pub fn tune_billing_usage(
        mut self,
        tune: impl Fn(&mut BillingUsageConfig) + Send + Sync + 'static,
    ) -> Self {
        self.tuning.billing_usage = chain(self.tuning.billing_usage.take(), tune);
        self
    }

    /// Adjusts the gateway's configuration after the launcher's wiring.
    pub fn tune_gateway(
        mut self,
        tune: impl Fn(&mut GatewayConfig) + Send + Sync + 'static,
    ) -> Self {
        self.tuning.gateway = chain(self.tuning.gateway.take(), tune);
        self
    }

    /// Checks what can be checked before anything is created or bound, for starting `roles`.
    pub fn validate(&self, roles: &[Role]) -> anyhow::Result<()> {
        if let (MetricsPorts::Base(base), Some(last)) = (
            self.metrics,
            roles.iter().max_by_key(|r| r.metrics_offset()),
        ) {
            let highest = last.metrics_offset();
            anyhow::ensure!(
                base <= u16::MAX - highest,
                "metrics base port: at most {} (the {last}'s is BASE+{highest}), or off",
                u16::MAX - highest
            );
        }
        if let Storage::Postgres { prefix, .. } = &self.storage {
            anyhow::ensure!(
                !prefix.is_empty()
                    && prefix
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !prefix.starts_with(|c: char| c.is_ascii_digit()),
                "database prefix `{prefix}`: lowercase letters, digits and `_`, not starting with a digit"
            );
        }
        anyhow::ensure!(
            !self.redis_namespace.is_empty()
                && self
                    .redis_namespace
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
            "redis namespace `{}`: letters, digits, '_', '-' and '.', not empty",
            self.redis_namespace
        );
        for (role, endpoint) in &self.external {
            anyhow::ensure!(
                endpoint.starts_with("https://"),
                "{role} endpoint `{endpoint}`: must be an https:// URL"
            );
        }
        if roles.contains(&Role::BillingUsage) {
            check_timezone(&self.timezone).map_err(|e| anyhow::anyhow!("timezone: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunings_add_up_in_order() {
        let config = LaunchConfig::default()
            .tune_identity(|c| c.password_min_length = 20)
            .tune_identity(|c| c.lockout_threshold = 3)
            .tune_identity(|c| c.password_min_length += 1);
        let mut identity = IdentityConfig::default();
        let tune = config.tuning.identity.expect("tuned");
        tune(&mut identity);
        assert_eq!(identity.password_min_length, 21);
        assert_eq!(identity.lockout_threshold, 3);
    }

    #[test]
    fn bad_values_are_refused_before_anything_starts() {
        let roles = [Role::Identity, Role::Agent];
        let high = LaunchConfig {
            metrics: MetricsPorts::Base(u16::MAX - 3),
            ..LaunchConfig::default()
        };
        let error = high.validate(&roles).expect_err("no room for BASE+4");
        assert!(error.to_string().contains("agent's is BASE+4"), "{error}");
        high.validate(&[Role::Identity]).expect("room for BASE+1");
        let prefix = LaunchConfig {
            storage: Storage::Postgres {
                admin_url: Secret::new("postgres://db/postgres"),
                prefix: "Bad-Prefix".into(),
            },
            ..LaunchConfig::default()
        };
        assert!(prefix.validate(&roles).is_err());
        let namespace = LaunchConfig {
            redis_namespace: "a b".into(),
            ..LaunchConfig::default()
        };
        assert!(namespace.validate(&roles).is_err());
        let timezone = LaunchConfig {
            timezone: "Mars/Olympus_Mons".into(),
            ..LaunchConfig::default()
        };
        let error = timezone
            .validate(&[Role::Identity, Role::Policy, Role::BillingUsage])
            .expect_err("not a timezone");
        assert!(error.to_string().contains("timezone"), "{error}");
        // Only billing-usage reads it.
        timezone.validate(&roles).expect("no billing-usage here");
        let berlin = LaunchConfig {
            timezone: "Europe/Berlin".into(),
            ..LaunchConfig::default()
        };
        berlin.validate(&[Role::BillingUsage]).expect("a timezone");
        assert!(check_timezone("europe/berlin").is_ok());
        assert!(check_timezone("Mars/Olympus_Mons").is_err());
        // Billing-usage is BASE+5.
        let high = LaunchConfig {
            metrics: MetricsPorts::Base(u16::MAX - 4),
            ..LaunchConfig::default()
        };
        let error = high
            .validate(&[Role::Identity, Role::BillingUsage])
            .expect_err("no room for BASE+5");
        assert!(
            error.to_string().contains("billing-usage's is BASE+5"),
            "{error}"
        );
    }
}
