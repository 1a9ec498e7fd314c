//! `atrium-identity`: the identity service as its own process.

use atrium_identity::{Identity, IdentityConfig};
use atrium_service_kit::config::{self, ConfigArgs};
use atrium_service_kit::{Shutdown, metrics, server, telemetry};
use clap::Parser;

#[derive(Parser)]
#[command(name = "atrium-identity", version, about = "Atrium identity service")]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
}

/// mimalloc: see "Allocator" in docs/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config: IdentityConfig = config::load("identity", &IdentityConfig::default(), &cli.config)?;
    if cli.config.dump_config {
        println!("{}", config::dump(&config)?);
        return Ok(());
    }
    let _telemetry = telemetry::init("atrium-identity", config.log_format)?;
    let listener = server::bind(config.listen).await?;
    let metrics = metrics::bind(config.metrics_listen).await?;
    let identity = Identity::new(config).await?;
    if let Some(admin) = identity.bootstrap_admin()
        && let Some(password) = &admin.generated_password
    {
        println!(
            "created administrator `{}` with password: {password}",
            admin.username
        );
        println!("(shown once; change it with `atrium login` then `atrium user set-password`)");
    }
    tracing::info!(addr = %listener.local_addr()?, "identity serving");
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    identity.serve(listener, metrics, shutdown).await
}
