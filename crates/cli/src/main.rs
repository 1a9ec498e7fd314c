//! The `atrium` command: the admin CLI over the identity service's gRPC API (users, API keys,
//! login sessions, two-factor authentication, SSH keys, the audit trail) and the policy
//! service's (groups, settings, effective policy, permissions, workspaces), the
//! session-manager's (sessions, placement), billing-usage's (usage, reports, cost rates), a
//! node agent's status and sessions (`atrium agent`, with agents.view), and `atrium up`,
//! which runs every service in one process. Commands are thin: they parse arguments, call one
//! or a few RPCs through [`client::Identity`] and print the answer; rules belong to the
//! services.

mod args;
mod cli;
mod client;
mod commands;
mod credentials;
mod error;
mod json;
mod output;
mod policy_json;
mod prompt;
mod up;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::output::Format;

/// mimalloc: see "Allocator" in docs/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Output into a closed pipe (`atrium … | head`) ends the command quietly, as other tools do,
/// instead of a panic report: `println!` panics on a broken pipe, and the hook (not `unsafe`
/// signal handling) turns exactly that into exit status 141 (128 + SIGPIPE).
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}

#[tokio::main]
async fn main() {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    client::trust(&cli.global);
    let format = cli.global.output;
    let result = match cli.command {
        Command::Up(args) => crate::up::run(args).await.map_err(error::CliError::Local),
        Command::Image(cmd) => commands::image::run(format, cmd).await,
        Command::Agent(args) => commands::agent::run(&cli.global, args).await,
        command => commands::run(&cli.global, command).await,
    };
    if let Err(err) = result {
        match format {
            Format::Json => println!("{}", err.to_json()),
            Format::Table => eprintln!("error: {}", err.message()),
        }
        std::process::exit(err.exit_code());
    }
}
