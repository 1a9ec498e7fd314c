//! `atrium-session-manager`: the session-manager as its own process.

use atrium_service_kit::config::{self, ConfigArgs};
use atrium_service_kit::{Shutdown, metrics, server, telemetry};
use atrium_session_manager::{SessionManager, SessionManagerConfig};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "atrium-session-manager",
    version,
    about = "Atrium session-manager"
)]
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
    let config: SessionManagerConfig = config::load(
        "session-manager",
        &SessionManagerConfig::default(),
        &cli.config,
    )?;
    if cli.config.dump_config {
        println!("{}", config::dump(&config)?);
        return Ok(());
    }
    let _telemetry = telemetry::init("atrium-session-manager", config.log_format)?;
    let listener = server::bind(config.listen).await?;
    let metrics = metrics::bind(config.metrics_listen).await?;
    let manager = SessionManager::new(config).await?;
    tracing::info!(addr = %listener.local_addr()?, "session-manager listening");
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    manager.serve(listener, metrics, shutdown).await
}
