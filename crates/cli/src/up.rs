//! `atrium up`: every service that exists, in one process, on the embedded default (SQLite
//! files and generated secrets under the data directory).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use atrium_agent::{Agent, AgentConfig};
use atrium_identity::{Identity, IdentityConfig};
use atrium_policy::{Policy, PolicyConfig};
use atrium_service_kit::auth::ServiceId;
use atrium_service_kit::pki::LocalCa;
use atrium_service_kit::telemetry::{self, LogFormat};
use atrium_service_kit::{Secret, Shutdown, metrics, server};
use serde::{Deserialize, Serialize};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the services keep their data (one SQLite file per service).
    #[arg(long, env = "ATRIUM_DATA_DIR", default_value = ".atrium")]
    pub data_dir: PathBuf,
    /// The address the services listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen_host: String,
    /// The identity service's gRPC port.
    #[arg(long, default_value_t = 7001)]
    pub identity_port: u16,
    /// The policy service's gRPC port.
    #[arg(long, default_value_t = 7002)]
    pub policy_port: u16,
    /// The agent's gRPC port.
    #[arg(long, default_value_t = 7004)]
    pub agent_port: u16,
    /// Prometheus `/metrics` ports: identity on BASE+1, policy on BASE+2, the agent on BASE+4;
    /// 0 for none.
    #[arg(long, default_value_t = 9100)]
    pub metrics_base_port: u16,
    /// The local Docker engine the agent runs session containers on.
    #[arg(
        long,
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub docker_host: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

/// Secrets generated on the first `atrium up` and reused after.
#[derive(Serialize, Deserialize)]
struct LocalSecrets {
    secrets_key: String,
}

fn load_or_create_secrets(dir: &Path) -> anyhow::Result<LocalSecrets> {
    let path = dir.join("secrets.json");
    if path.exists() {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()));
    }
    let secrets = LocalSecrets {
        secrets_key: atrium_identity::crypto::SecretBox::generate_key(),
    };
    let text = serde_json::to_string_pretty(&secrets)?;
    write_private(&path, &text).with_context(|| format!("write {}", path.display()))?;
    Ok(secrets)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Checked before anything is created or bound.
    anyhow::ensure!(
        args.metrics_base_port <= u16::MAX - 4,
        "--metrics-base-port: at most {} (the agent's is BASE+4), or 0 for none",
        u16::MAX - 4
    );
    let _telemetry = telemetry::init("atrium", args.log_format)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create {}", args.data_dir.display()))?;
    let data_dir = args
        .data_dir
        .canonicalize()
        .context("resolve the data directory")?;
    let secrets = load_or_create_secrets(&data_dir)?;
    // A local CA and a certificate per service, made on first start: every port speaks TLS,
    // services prove who they are to each other, and the CLI trusts `tls/ca.pem`.
    let ca = LocalCa::ensure(&data_dir.join("tls")).context("set up the local CA")?;
    let host: std::net::IpAddr = args
        .listen_host
        .parse()
        .context("--listen-host: not an IP address")?;

    let identity_addr = SocketAddr::new(host, args.identity_port);
    let policy_addr = SocketAddr::new(host, args.policy_port);
    let agent_addr = SocketAddr::new(host, args.agent_port);
    let identity_endpoint = format!("https://{identity_addr}");
    let policy_endpoint = format!("https://{policy_addr}");
    // Bind every port first, so a taken port fails before anything starts.
    let identity_listener = server::bind(identity_addr).await.with_context(|| {
        format!(
            "identity port {} is taken (use --identity-port)",
            args.identity_port
        )
    })?;
    let agent_listener = server::bind(agent_addr)
        .await
        .with_context(|| format!("agent port {} is taken (use --agent-port)", args.agent_port))?;
    let policy_listener = server::bind(policy_addr).await.with_context(|| {
        format!(
            "policy port {} is taken (use --policy-port)",
            args.policy_port
        )
    })?;
    let metrics_addr = |offset: u16| {
        (args.metrics_base_port != 0)
            .then(|| SocketAddr::new(host, args.metrics_base_port + offset))
    };
    let metrics_hint = "(use --metrics-base-port, 0 for none)";
    let identity_metrics = metrics::bind(metrics_addr(1)).await.context(metrics_hint)?;
    let policy_metrics = metrics::bind(metrics_addr(2)).await.context(metrics_hint)?;
    let agent_metrics = metrics::bind(metrics_addr(4)).await.context(metrics_hint)?;

    let identity_config = IdentityConfig {
        listen: identity_addr,
        database_url: format!("sqlite://{}", data_dir.join("identity.db").display()),
        log_format: args.log_format,
        secrets_key: Some(Secret::new(secrets.secrets_key)),
        tls: ca.tls_config(ServiceId::Identity),
        policy_endpoint: Some(policy_endpoint.clone()),
        ..IdentityConfig::default()
    };
    let identity = Identity::new(identity_config)
        .await
        .context("start identity")?;
    let policy_config = PolicyConfig {
        listen: policy_addr,
        database_url: format!("sqlite://{}", data_dir.join("policy.db").display()),
        log_format: args.log_format,
        identity_endpoint: identity_endpoint.clone(),
        tls: ca.tls_config(ServiceId::Policy),
        ..PolicyConfig::default()
    };
    // The agent on this machine: the local Docker engine, heartbeats kept in-process.
    let agent_config = AgentConfig {
        listen: agent_addr,
        log_format: args.log_format,
        advertise_host: host.to_string(),
        tls: ca.tls_config(ServiceId::Agent),
        identity_endpoint: Some(identity_endpoint.clone()),
        policy_endpoint: Some(policy_endpoint.clone()),
        docker_host: args.docker_host.clone(),
        ..AgentConfig::default()
    };
    let agent = Agent::new(agent_config).context("start the agent")?;
    // In one process, policy verifies tokens with identity's own key set.
    let keys = identity.authenticator().keys().clone();
    let policy = Policy::with_keys(policy_config, keys)
        .await
        .context("start policy")?;

    println!();
    println!("Atrium is up (gRPC over TLS; every service offers health and reflection):");
    println!("  identity  {identity_endpoint}");
    println!("  policy    {policy_endpoint}");
    println!(
        "  agent     https://{agent_addr}   (Docker at {})",
        args.docker_host
    );
    for (name, listener) in [
        ("identity", &identity_metrics),
        ("policy", &policy_metrics),
        ("agent", &agent_metrics),
    ] {
        if let Some(addr) = listener.as_ref().and_then(|l| l.local_addr().ok()) {
            println!("  metrics   https://{addr}/metrics   ({name})");
        }
    }
    println!("  data      {}", data_dir.display());
    println!(
        "  TLS       CA {} (the CLI trusts it when run from here; elsewhere pass --ca)",
        ca.ca_path().display()
    );
    println!();
    match identity.bootstrap_admin() {
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
    println!();
    println!("Log in from another terminal:");
    println!("  atrium --endpoint {identity_endpoint} login --username admin");
    println!("  atrium user list");
    println!("  atrium group list");
    println!();
    println!("Stop with Ctrl-C.");

    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let (identity_done, policy_done, agent_done) = tokio::join!(
        identity.serve(identity_listener, identity_metrics, shutdown.clone()),
        policy.serve(policy_listener, policy_metrics, shutdown.clone()),
        agent.serve(agent_listener, agent_metrics, shutdown.clone()),
    );
    identity_done.context("identity")?;
    policy_done.context("policy")?;
    agent_done.context("agent")
}
