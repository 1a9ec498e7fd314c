//! `atrium-workspace`: the demo workspace's server. Settings come from the environment
//! (`VNC_PW`, `HOME`, `ATRIUM_WORKSPACE_PORT`); see the library for what it serves.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use atrium_workspace::{Config, Workspace, serve};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("atrium-workspace: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("atrium-workspace: start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(config));
    // Open connections and file writes get a moment, not more: containers must stop fast.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atrium-workspace: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // As PID 1 in a container, signals without a handler are ignored: install them first.
    let mut term = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    let port = config.port;
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("listen on 0.0.0.0:{port}"))?;
    let workspace = Workspace::new(config)?;
    eprintln!(
        "atrium-workspace: serving https://0.0.0.0:{port}/ on {} (basic auth user kasm_user)",
        workspace.hostname()
    );
    let shutdown = async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        eprintln!("atrium-workspace: {name} received, stopping");
    };
    serve(listener, workspace, shutdown).await
}
