//! `atrium up`: every role this build has, in one process, on the embedded default (SQLite
//! files and generated secrets under the data directory). The launcher does the work; this is
//! arguments in, addresses and the administrator's password out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use atrium_launcher::{
    LaunchConfig, Launcher, MetricsPorts, Role, Running, Storage, check_timezone,
};
use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::{self, LogFormat};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the services keep their data (one SQLite file per service).
    #[arg(long, env = "ATRIUM_DATA_DIR", default_value = ".atrium")]
    pub data_dir: PathBuf,
    /// The address the services listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen_host: String,
    /// The identity service's gRPC port.
    #[arg(long, default_value_t = Role::Identity.default_port())]
    pub identity_port: u16,
    /// The policy service's gRPC port.
    #[arg(long, default_value_t = Role::Policy.default_port())]
    pub policy_port: u16,
    /// The session-manager's gRPC port.
    #[arg(long, default_value_t = Role::SessionManager.default_port())]
    pub session_manager_port: u16,
    /// The agent's gRPC port.
    #[arg(long, default_value_t = Role::Agent.default_port())]
    pub agent_port: u16,
    /// Billing-usage's gRPC port.
    #[arg(long, default_value_t = Role::BillingUsage.default_port())]
    pub billing_usage_port: u16,
    /// Prometheus `/metrics` ports: identity on BASE+1, policy on BASE+2, the session-manager
    /// on BASE+3, the agent on BASE+4, billing-usage on BASE+5; 0 for none.
    #[arg(long, default_value_t = 9100)]
    pub metrics_base_port: u16,
    /// The IANA timezone of usage windows and by-day history (billing-usage), e.g.
    /// Europe/Berlin.
    #[arg(long, env = "ATRIUM_TIMEZONE", default_value = "UTC", value_parser = parse_timezone)]
    pub timezone: String,
    /// The local Docker engine the agent runs session containers on.
    #[arg(
        long,
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub docker_host: String,
    /// Redis for heartbeats and session keepalives; without it they are kept in this process.
    #[arg(long, env = "ATRIUM_REDIS_URL")]
    pub redis_url: Option<String>,
    /// A PostgreSQL server (`postgres://user:pw@host:5432/postgres`): each service gets a
    /// database of its own there (`atrium_identity`, ...), created when missing. Without it,
    /// SQLite files under the data directory.
    #[arg(long, env = "ATRIUM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

/// clap value parser for `--timezone`: an IANA name as billing-usage reads it, checked before
/// anything starts.
fn parse_timezone(value: &str) -> Result<String, String> {
    check_timezone(value)?;
    Ok(value.trim().to_owned())
}

impl UpArgs {
    fn launch_config(&self) -> anyhow::Result<LaunchConfig> {
        let host = self
            .listen_host
            .parse()
            .context("--listen-host: not an IP address")?;
        let ports = BTreeMap::from([
            (Role::Identity, self.identity_port),
            (Role::Policy, self.policy_port),
            (Role::SessionManager, self.session_manager_port),
            (Role::Agent, self.agent_port),
            (Role::BillingUsage, self.billing_usage_port),
        ]);
        let metrics = match self.metrics_base_port {
            0 => MetricsPorts::Off,
            base => MetricsPorts::Base(base),
        };
        Ok(LaunchConfig {
            data_dir: self.data_dir.clone(),
            host,
            ports,
            metrics,
            docker_host: self.docker_host.clone(),
            redis_url: self.redis_url.clone().map(Secret::new),
            storage: match &self.database_url {
                Some(url) => Storage::postgres(url.clone()),
                None => Storage::Sqlite,
            },
            log_format: self.log_format,
            timezone: self.timezone.clone(),
            ..LaunchConfig::default()
        })
    }
}

/// What to pass when a role's port is taken.
fn port_flag(role: Role) -> String {
    format!("--{}-port", role.name())
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let roles = Role::available();
    // Checked before anything is created or bound.
    if let Some(last) = roles.iter().max_by_key(|r| r.metrics_offset()) {
        let highest = last.metrics_offset();
        anyhow::ensure!(
            args.metrics_base_port <= u16::MAX - highest,
            "--metrics-base-port: at most {} (the {last}'s is BASE+{highest}), or 0 for none",
            u16::MAX - highest
        );
    }
    let config = args.launch_config()?;
    config.validate(&roles)?;
    let _telemetry = telemetry::init("atrium", args.log_format)?;
    let running = Launcher::start(config, &roles).await.map_err(|e| {
        let hint = roles
            .iter()
            .map(|r| port_flag(*r))
            .collect::<Vec<_>>()
            .join(", ");
        e.context(format!(
            "start Atrium (ports: {hint}; --metrics-base-port, 0 for none)"
        ))
    })?;
    print_banner(&running, &args);
    running.shutdown_signal().on_signals();
    running.wait().await
}

fn print_banner(running: &Running, args: &UpArgs) {
    println!();
    println!("Atrium is up (gRPC over TLS; every service offers health and reflection):");
    for role in running.roles() {
        let Some(endpoint) = running.endpoint(*role) else {
            continue;
        };
        let note = match role {
            Role::Agent => format!("   (Docker at {})", args.docker_host),
            Role::BillingUsage => format!("   (usage windows in {})", args.timezone),
            _ => String::new(),
        };
        println!("  {:<16}{endpoint}{note}", role.name());
    }
    for role in running.roles() {
        if let Some(metrics) = running.bound(*role).and_then(|b| b.metrics) {
            println!("  metrics         https://{metrics}/metrics   ({role})");
        }
    }
    println!("  data            {}", running.data_dir().display());
    println!(
        "  TLS             CA {} (the CLI trusts it when run from here; elsewhere pass --ca)",
        running.ca_path().display()
    );
    println!();
    match running.bootstrap_admin() {
        Some(admin) => match &admin.generated_password {
            Some(password) => {
                println!(
                    "Created the administrator `{}` with password:  {password}",
                    admin.username
                );
                println!(
                    "(shown only now; change it after logging in: `atrium user set-password admin`)"
                );
            }
            None => println!(
                "Created the administrator `{}` with the configured password.",
                admin.username
            ),
        },
        None => println!("The administrator account already exists (user `admin`)."),
    }
    let identity = running.endpoint(Role::Identity).unwrap_or_default();
    println!();
    println!("Log in from another terminal:");
    println!("  atrium --endpoint {identity} login --username admin");
    println!("  atrium user list");
    println!("  atrium group list");
    println!();
    println!("Stop with Ctrl-C.");
}
