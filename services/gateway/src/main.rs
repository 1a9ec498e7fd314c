//! `atrium-gateway`: the web gateway as its own process.

use atrium_gateway::{Gateway, GatewayConfig};
use atrium_service_kit::config::{self, ConfigArgs};
use atrium_service_kit::{Shutdown, metrics, server, telemetry};
use clap::Parser;

#[derive(Parser)]
#[command(name = "atrium-gateway", version, about = "Atrium web gateway")]
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
    let config: GatewayConfig = config::load("gateway", &GatewayConfig::default(), &cli.config)?;
    if cli.config.dump_config {
        println!("{}", config::dump(&config)?);
        return Ok(());
    }
    let _telemetry = telemetry::init("atrium-gateway", config.log_format)?;
    let listener = server::bind(config.listen).await?;
    let metrics = metrics::bind(config.metrics_listen).await?;
    let gateway = Gateway::new(config).await?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    gateway.serve(listener, metrics, shutdown).await
}
