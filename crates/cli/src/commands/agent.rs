//! `atrium agent status` and `atrium agent sessions`: what a node agent reports about itself and
//! the session containers it holds. The agent accepts only the service credential, so these
//! commands call with `--service-token`, else the one `atrium up` keeps in
//! `<data dir>/secrets.json`; they never use the stored login.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use atrium_proto::agent::v1::agent_service_client::AgentServiceClient;
use atrium_proto::agent::v1::{
    AgentStatus, Capacity, ContainerState, GetStatusRequest, ListSessionsRequest, SessionContainer,
};
use atrium_service_kit::auth::Credential;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::GlobalArgs;
use crate::client::Lazy;
use crate::error::{CliError, CliResult, usage, with_message};
use crate::json::{time, time_text};
use crate::output::{Format, Table, print_fields, print_json};

type AgentClient = AgentServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The service credential the agent accepts [default: `service_token` from
    /// <data dir>/secrets.json, written by `atrium up`].
    #[arg(
        long,
        global = true,
        env = "ATRIUM_SERVICE_TOKEN",
        hide_env_values = true
    )]
    pub service_token: Option<String>,
    /// The data directory of `atrium up`, where secrets.json holds the service credential.
    #[arg(
        long,
        global = true,
        env = "ATRIUM_DATA_DIR",
        default_value = ".atrium"
    )]
    pub data_dir: PathBuf,
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

/// The part of `atrium up`'s secrets.json these commands need.
#[derive(Deserialize)]
struct Secrets {
    service_token: String,
}

/// The service token in `<dir>/secrets.json`.
fn read_service_token(dir: &Path) -> CliResult<String> {
    let path = dir.join("secrets.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(usage(format!(
                "no service credential: pass --service-token (or set ATRIUM_SERVICE_TOKEN), or \
                 --data-dir where `atrium up` keeps secrets.json ({} does not exist)",
                path.display()
            )));
        }
        Err(e) => {
            return Err(CliError::Local(
                anyhow::Error::new(e).context(format!("read {}", path.display())),
            ));
        }
    };
    let secrets: Secrets =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    if secrets.service_token.is_empty() {
        return Err(usage(format!("{}: service_token is empty", path.display())));
    }
    Ok(secrets.service_token)
}

pub async fn run(global: &GlobalArgs, args: AgentArgs) -> CliResult {
    let token = match args.service_token {
        Some(token) => token,
        None => read_service_token(&args.data_dir)?,
    };
    let mut conn = Lazy::new(global.agent_endpoint.clone(), "--agent-endpoint");
    let interceptor = OutgoingInterceptor::new(Some(&Credential::Service(token)))
        .context("prepare the service credential")?;
    let mut client = AgentServiceClient::with_interceptor(conn.channel().await?, interceptor);
    match args.command {
        AgentCommand::Status => status(&mut client, global.output).await,
        AgentCommand::Sessions => sessions(&mut client, global.output).await,
    }
}

/// An Unauthenticated answer says which credential the agent wants.
fn hinted(status: tonic::Status) -> CliError {
    if status.code() == Code::Unauthenticated {
        let message = format!(
            "{} (the agent accepts only the service credential: check --service-token or \
             --data-dir)",
            status.message()
        );
        return CliError::Status(with_message(&status, message));
    }
    CliError::Status(status)
}

async fn status(client: &mut AgentClient, format: Format) -> CliResult {
    let answer = client
        .get_status(GetStatusRequest {})
        .await
        .map_err(hinted)?
        .into_inner();
    match format {
        Format::Json => print_json(&status_json(&answer)),
        Format::Table => print_fields(&status_fields(&answer)),
    }
    Ok(())
}

async fn sessions(client: &mut AgentClient, format: Format) -> CliResult {
    let answer = client
        .list_sessions(ListSessionsRequest {})
        .await
        .map_err(hinted)?
        .into_inner();
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
    fn the_service_token_comes_from_secrets_json() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("secrets.json"),
            r#"{"secrets_key": "k", "service_token": "svc-123"}"#,
        )
        .expect("write");
        assert_eq!(read_service_token(dir.path()).expect("read"), "svc-123");
    }

    #[test]
    fn a_missing_secrets_json_is_a_usage_error_naming_the_flags() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = read_service_token(dir.path()).expect_err("no file");
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.message().contains("--service-token"),
            "{}",
            err.message()
        );
        std::fs::write(dir.path().join("secrets.json"), "{}").expect("write");
        let err = read_service_token(dir.path()).expect_err("no field");
        assert!(err.message().contains("parse"), "{}", err.message());
    }

    #[test]
    fn agent_flags_parse_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "atrium",
            "agent",
            "sessions",
            "--service-token",
            "t",
            "--data-dir",
            "/d",
            "--agent-endpoint",
            "http://a:1",
        ])
        .expect("parse");
        assert_eq!(cli.global.agent_endpoint, "http://a:1");
        let Command::Agent(args) = cli.command else {
            panic!("expected agent");
        };
        assert!(matches!(args.command, AgentCommand::Sessions));
        assert_eq!(args.service_token.as_deref(), Some("t"));
        assert_eq!(args.data_dir, PathBuf::from("/d"));
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
