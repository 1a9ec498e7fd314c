//! `atrium-policy`: the policy service as its own process.

use atrium_policy::{Policy, PolicyConfig};
use atrium_service_kit::config::{self, ConfigArgs};
use atrium_service_kit::{Shutdown, metrics, server, telemetry};
use clap::Parser;

#[derive(Parser)]
#[command(name = "atrium-policy", version, about = "Atrium policy service")]
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
    let config: PolicyConfig = config::load("policy", &PolicyConfig::default(), &cli.config)?;
    if cli.config.dump_config {
        println!("{}", config::dump(&config)?);
        return Ok(());
    }
    let _telemetry = telemetry::init("atrium-policy", config.log_format)?;
    let listener = server::bind(config.listen).await?;
    let metrics = metrics::bind(config.metrics_listen).await?;
    let policy = Policy::new(config).await?;
    tracing::info!(addr = %listener.local_addr()?, "policy serving");
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    policy.serve(listener, metrics, shutdown).await
}
