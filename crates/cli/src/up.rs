//! `atrium up`: every role this build has, in one process, on the embedded default (SQLite
//! files and generated secrets under the data directory). The launcher does the work; this is
//! arguments in, the demo (image and workspace, [`demo`]) and the desktop workspace when its
//! image has been built ([`desktop`]) around it, and the gateway's URL and the administrator's
//! password out.

mod demo;
mod desktop;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use atrium_launcher::{
    LaunchConfig, Launcher, MetricsPorts, Role, Running, Storage, check_timezone,
};
use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::{self, LogFormat};

use self::demo::{DemoImage, DemoWorkspace};
use self::desktop::DesktopImage;

/// The Docker engine the agent uses unless told otherwise.
const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the services keep their data (one SQLite file per service).
    #[arg(long, env = "ATRIUM_DATA_DIR", default_value = ".atrium")]
    pub data_dir: PathBuf,
    /// The address the services listen on. On loopback the gateway (the browser's entrance)
    /// serves plain HTTP; on any other address, TLS with a certificate from the local CA.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen_host: String,
    /// The gateway's port: the web UI, the REST API (/api/v1) and the Kasm API (/api/public).
    #[arg(long, default_value_t = Role::Gateway.default_port())]
    pub gateway_port: u16,
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
    /// on BASE+3, the agent on BASE+4, billing-usage on BASE+5, the gateway on BASE+6; 0 for
    /// none.
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
        default_value = DEFAULT_DOCKER_HOST
    )]
    pub docker_host: String,
    /// Neither build the demo workspace image nor create the demo workspace (nor the Desktop
    /// workspace, which is otherwise created when its image has been built).
    #[arg(long)]
    pub no_demo: bool,
    /// Also build the desktop workspace image when it is missing (`atrium image build-desktop`:
    /// needs root and debootstrap, a few minutes the first time), so the first start offers
    /// the "Desktop" workspace too.
    #[arg(long, conflicts_with = "no_demo")]
    pub desktop: bool,
    /// Redis for heartbeats and session keepalives; without it they are kept in this process.
    #[arg(long, visible_alias = "redis", env = "ATRIUM_REDIS_URL")]
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
            (Role::Gateway, self.gateway_port),
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
    let image = if args.no_demo {
        DemoImage::Skipped
    } else {
        demo::ensure_image(&args.docker_host).await
    };
    let mut desktop_image = if args.no_demo {
        DesktopImage::Unknown
    } else {
        desktop::look(&args.docker_host).await
    };
    if args.desktop && desktop_image == DesktopImage::Missing {
        desktop_image = desktop::build().await;
    }
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
    // Only on the start that created the administrator: a later start keeps whatever the
    // administrators made of the catalogue (the demo workspace deleted included).
    let workspace = match (
        args.no_demo,
        running.bootstrap_admin(),
        running.admin_password(),
    ) {
        (false, Some(_), Some(_)) => match demo::create_workspace(&running).await {
            Ok(workspace) => Some(workspace),
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the demo workspace was not created"
                );
                eprintln!("==> the demo workspace was not created: {e:#}");
                None
            }
        },
        _ => None,
    };
    // The same rule for the desktop, when its image is there (`atrium image build-desktop`).
    let desktop_workspace = match (
        &desktop_image,
        running.bootstrap_admin(),
        running.admin_password(),
    ) {
        (DesktopImage::Present, Some(_), Some(_)) => {
            match demo::ensure_workspace(&running, desktop::workspace()).await {
                Ok(workspace) => Some(workspace),
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "the desktop workspace was not created"
                    );
                    eprintln!("==> the desktop workspace was not created: {e:#}");
                    None
                }
            }
        }
        _ => None,
    };
    print_banner(
        &running,
        &args,
        &image,
        workspace.as_ref(),
        (&desktop_image, desktop_workspace.as_ref()),
    );
    running.shutdown_signal().on_signals();
    running.wait().await
}

fn print_banner(
    running: &Running,
    args: &UpArgs,
    image: &DemoImage,
    workspace: Option<&DemoWorkspace>,
    desktop: (&DesktopImage, Option<&DemoWorkspace>),
) {
    println!();
    if let Some(gateway) = running.endpoint(Role::Gateway) {
        let rule = "=".repeat(72);
        println!("{rule}");
        println!("  Atrium is up.  Open {gateway}/ in your browser.");
        println!("{rule}");
        println!("  REST API        {gateway}/api/v1   (OpenAPI: {gateway}/api/v1/openapi.json)");
        println!("  Kasm API        {gateway}/api/public");
        if gateway.starts_with("https:") {
            println!(
                "  TLS             certificate from the local CA {} (trust it, or expect a warning)",
                running.ca_path().display()
            );
        }
    } else {
        println!("Atrium is up.");
    }
    println!();
    print_admin(running);
    print_demo(image, workspace);
    print_desktop(desktop.0, desktop.1);
    println!();
    println!("gRPC services (TLS; every service offers health and reflection):");
    for role in running.roles() {
        if *role == Role::Gateway {
            continue;
        }
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
    let identity = running.endpoint(Role::Identity).unwrap_or_default();
    println!();
    println!("Log in from another terminal:");
    println!("  atrium --endpoint {identity} login --username admin");
    println!("  atrium user list");
    println!("  atrium group list");
    println!();
    println!("Stop with Ctrl-C (the data directory keeps everything for the next start).");
}

fn print_admin(running: &Running) {
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
}

fn print_desktop(image: &DesktopImage, workspace: Option<&DemoWorkspace>) {
    match (workspace, image) {
        (Some(w), _) => print_workspace(w),
        (None, DesktopImage::Missing) => {
            println!(
                "A real desktop (Xvnc, a window manager, noVNC) can be built from Debian packages:"
            );
            println!("  sudo atrium image build-desktop, or start with `atrium up --desktop`.");
            println!(
                "  After a first start, add its workspace by hand (or use a new data directory):"
            );
            println!(
                "  atrium workspace create --image {} --name {:?}",
                desktop::IMAGE,
                desktop::FRIENDLY_NAME
            );
        }
        (None, _) => {}
    }
}

fn print_workspace(workspace: &DemoWorkspace) {
    match workspace {
        DemoWorkspace::Created(w) => println!(
            "Created the workspace \"{}\" ({}) for All Users.",
            w.friendly_name, w.name
        ),
        DemoWorkspace::Existing(w) => println!(
            "The workspace \"{}\" ({}) exists already.",
            w.friendly_name, w.name
        ),
    }
}

fn print_demo(image: &DemoImage, workspace: Option<&DemoWorkspace>) {
    if let Some(workspace) = workspace {
        print_workspace(workspace);
    }
    match image {
        DemoImage::Present | DemoImage::Skipped => {}
        DemoImage::Built => println!("Built the demo image {}.", demo::IMAGE),
        DemoImage::Unavailable(why) => {
            let why = why.trim_end_matches('.');
            println!("The demo image {} is not available: {why}.", demo::IMAGE);
            println!("  Sessions of it cannot launch until it is: `atrium image build-demo`.");
        }
    }
}
