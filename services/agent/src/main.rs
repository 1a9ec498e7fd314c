//! `atrium-agent`: the node agent as its own process. SIGTERM drains (no new sessions; exit
//! when none remain or at `drain_deadline_secs`); SIGINT stops at once.

use atrium_agent::{Agent, AgentConfig};
use atrium_service_kit::config::{self, ConfigArgs};
use atrium_service_kit::{Shutdown, metrics, server, telemetry};
use clap::Parser;

#[derive(Parser)]
#[command(name = "atrium-agent", version, about = "Atrium node agent")]
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
    let config: AgentConfig = config::load("agent", &AgentConfig::default(), &cli.config)?;
    if cli.config.dump_config {
        println!("{}", config::dump(&config)?);
        return Ok(());
    }
    let _telemetry = telemetry::init("atrium-agent", config.log_format)?;
    let listener = server::bind(config.listen).await?;
    let metrics = metrics::bind(config.metrics_listen).await?;
    let agent = Agent::new(config)?;
    let shutdown = Shutdown::new();
    on_signals(&agent, &shutdown)?;
    agent.serve(listener, metrics, shutdown).await
}

/// SIGTERM (the orchestrator's "leave") starts a drain; SIGINT shuts down now.
fn on_signals(agent: &Agent, shutdown: &Shutdown) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let core = agent.core();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: draining");
                    core.start_drain(None);
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    shutdown.trigger();
                    return;
                }
            }
        }
    });
    Ok(())
}
