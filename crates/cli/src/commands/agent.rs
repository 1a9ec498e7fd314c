//! `atrium agent status` and `atrium agent sessions`: what a node agent reports about itself and
//! the session containers it holds. They call with the stored login (or `--token` /
//! `--api-key`); the agent asks policy whether the caller holds agents.view.

use atrium_proto::agent::v1::agent_service_client::AgentServiceClient;
use atrium_proto::agent::v1::{
    AgentStatus, Capacity, ContainerState, GetStatusRequest, ListSessionsRequest, SessionContainer,
};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::cli::GlobalArgs;
use crate::client::{Identity, Lazy};
use crate::error::CliResult;
use crate::json::{time, time_text};
use crate::output::{Format, Table, print_fields, print_json};

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// The agent's status: state, capacity against what its sessions hold, images, version.
    Status,
    /// The session containers the agent holds.
    Sessions,
}

/// Calls the agent with the caller's own login (or --token / --api-key): the agent asks policy
/// whether it holds agents.view.
pub async fn run(global: &GlobalArgs, args: AgentArgs) -> CliResult {
    let mut identity = Identity::prepare(global, true)?;
    let channel = Lazy::new(global.agent_endpoint.clone(), "--agent-endpoint")
        .channel()
        .await?;
    match args.command {
        AgentCommand::Status => status(&mut identity, &channel, global.output).await,
        AgentCommand::Sessions => sessions(&mut identity, &channel, global.output).await,
    }
}

async fn status(identity: &mut Identity, channel: &Channel, format: Format) -> CliResult {
    let answer = identity
        .call_on(
            channel,
            AgentServiceClient::with_interceptor,
            GetStatusRequest {},
            |mut c, r| async move { c.get_status(r).await },
        )
        .await?;
    match format {
        Format::Json => print_json(&status_json(&answer)),
        Format::Table => print_fields(&status_fields(&answer)),
    }
    Ok(())
}

async fn sessions(identity: &mut Identity, channel: &Channel, format: Format) -> CliResult {
    let answer = identity
        .call_on(
            channel,
            AgentServiceClient::with_interceptor,
            ListSessionsRequest {},
            |mut c, r| async move { c.list_sessions(r).await },
        )
        .await?;
    match format {
        Format::Json => print_json(&json!({
            "sessions": answer.sessions.iter().map(session_json).collect::<Vec<_>>(),
        })),
        Format::Table => sessions_table(&answer.sessions).print(),
    }
    Ok(())
}

fn capacity_json(c: Option<&Capacity>) -> Value {
    let c = c.copied().unwrap_or_default();
    json!({ "cores": c.cores, "memory_mib": c.memory_mib, "gpus": c.gpus })
}

fn status_json(s: &AgentStatus) -> Value {
    json!({
        "agent_id": s.agent_id,
        "zone": s.zone,
        "state": s.state,
        "reason": s.reason,
        "capacity": capacity_json(s.capacity.as_ref()),
        "allocated": capacity_json(s.allocated.as_ref()),
        "session_count": s.session_count,
        "images": s.images,
        "version": s.version,
        "address": s.address,
    })
}

fn status_fields(s: &AgentStatus) -> Vec<(&'static str, String)> {
    let capacity = s.capacity.unwrap_or_default();
    let allocated = s.allocated.unwrap_or_default();
    vec![
        ("agent", s.agent_id.clone()),
        ("zone", s.zone.clone()),
        ("state", s.state.clone()),
        ("reason", s.reason.clone()),
        (
            "cores",
            format!("{} of {} allocated", allocated.cores, capacity.cores),
        ),
        (
            "memory",
            format!(
                "{} of {} MiB allocated",
                allocated.memory_mib, capacity.memory_mib
            ),
        ),
        (
            "gpus",
            format!("{} of {} allocated", allocated.gpus, capacity.gpus),
        ),
        ("sessions", s.session_count.to_string()),
        ("images", s.images.join(", ")),
        ("version", s.version.clone()),
        ("address", s.address.clone()),
    ]
}

/// `running`, `stopped`, ... (the proto name without its prefix, lowercase).
fn state_name(value: i32) -> String {
    match ContainerState::try_from(value) {
        Ok(state) => state
            .as_str_name()
            .trim_start_matches("CONTAINER_STATE_")
            .to_lowercase(),
        Err(_) => format!("unknown({value})"),
    }
}

/// A session container; never its password (ListSessions does not return one anyway).
fn session_json(c: &SessionContainer) -> Value {
    json!({
        "session_id": c.session_id,
        "container_id": c.container_id,
        "state": state_name(c.state),
        "user_id": c.user_id,
        "workspace_id": c.workspace_id,
        "image": c.image,
        "host": c.host,
        "port": c.port,
        "created_at": time(c.created_at.as_ref()),
        "cores": c.cores,
        "memory_mib": c.memory_mib,
        "gpu_count": c.gpu_count,
    })
}

fn sessions_table(sessions: &[SessionContainer]) -> Table {
    let mut table = Table::new(&[
        "SESSION", "STATE", "USER", "IMAGE", "ADDRESS", "CORES", "MEMORY", "GPUS", "CREATED",
    ]);
    for c in sessions {
        let address = if c.port == 0 {
            String::new()
        } else {
            format!("{}:{}", c.host, c.port)
        };
        table.push(vec![
            c.session_id.clone(),
            state_name(c.state),
            c.user_id.clone(),
            c.image.clone(),
            address,
            c.cores.to_string(),
            format!("{} MiB", c.memory_mib),
            c.gpu_count.to_string(),
            time_text(c.created_at.as_ref()),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn agent_flags_parse_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "atrium",
            "agent",
            "sessions",
            "--agent-endpoint",
            "https://a:1",
        ])
        .expect("parse");
        assert_eq!(cli.global.agent_endpoint, "https://a:1");
        let Command::Agent(args) = cli.command else {
            panic!("expected agent");
        };
        assert!(matches!(args.command, AgentCommand::Sessions));
    }

    #[test]
    fn statuses_show_allocation_against_capacity() {
        let s = AgentStatus {
            agent_id: "node-1".into(),
            state: "active".into(),
            capacity: Some(Capacity {
                cores: 2.0,
                memory_mib: 4096,
                gpus: 0,
            }),
            allocated: Some(Capacity {
                cores: 0.5,
                memory_mib: 512,
                gpus: 0,
            }),
            ..Default::default()
        };
        let fields = status_fields(&s);
        assert!(fields.contains(&("memory", "512 of 4096 MiB allocated".into())));
        assert_eq!(status_json(&s)["capacity"]["memory_mib"], 4096);
        assert_eq!(state_name(ContainerState::Running as i32), "running");
    }
}
