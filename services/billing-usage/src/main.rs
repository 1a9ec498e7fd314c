//! `atrium-billing-usage`: the billing-usage service as its own process.

use atrium_billing_usage::{BillingUsage, BillingUsageConfig};
use atrium_service_kit::config::{self, ConfigArgs};
use atrium_service_kit::{Shutdown, metrics, server, telemetry};
use clap::Parser;

#[derive(Parser)]
#[command(name = "atrium-billing-usage", version, about = "Atrium billing-usage")]
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
    let config: BillingUsageConfig =
        config::load("billing-usage", &BillingUsageConfig::default(), &cli.config)?;
    if cli.config.dump_config {
        println!("{}", config::dump(&config)?);
        return Ok(());
    }
    let _telemetry = telemetry::init("atrium-billing-usage", config.log_format)?;
    let listener = server::bind(config.listen).await?;
    let metrics = metrics::bind(config.metrics_listen).await?;
    let service = BillingUsage::new(config).await?;
    tracing::info!(addr = %listener.local_addr()?, "billing-usage listening");
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    service.serve(listener, metrics, shutdown).await
}
