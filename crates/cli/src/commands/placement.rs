//! `atrium placement explain`: where the session-manager would place a workspace's session for
//! a user, and for every agent why it was chosen or rejected ("no resources" is never a
//! mystery). Nothing is launched.

use atrium_proto::session::v1::{AgentVerdict, ExplainPlacementRequest, PlacementExplanation};
use serde_json::{Value, json};

use super::Ctx;
use super::workspace::launchable_workspace_id;
use crate::args::{UserRef, WorkspaceRef, parse_user_ref, parse_workspace_ref};
use crate::error::CliResult;
use crate::output::{Table, print_json, yes_no};

#[derive(Debug, clap::Subcommand)]
pub enum PlacementCommand {
    /// Which agent a session of this workspace would go to, and why each agent was or was not
    /// chosen.
    Explain {
        /// The workspace (id, image or name).
        #[arg(value_parser = parse_workspace_ref)]
        workspace: WorkspaceRef,
        /// For this user (id or username; another user needs sessions.view) [default: you].
        #[arg(long, value_parser = parse_user_ref)]
        user: Option<UserRef>,
        /// As if the user picked this zone (id or name).
        #[arg(long, value_name = "ZONE")]
        zone: Option<String>,
    },
}

pub async fn run(ctx: &mut Ctx, command: PlacementCommand) -> CliResult {
    let PlacementCommand::Explain {
        workspace,
        user,
        zone,
    } = command;
    let user_id = ctx.user_id_or_caller(user.as_ref()).await?;
    let request = ExplainPlacementRequest {
        workspace_id: launchable_workspace_id(ctx, &workspace, &user_id).await?,
        user_id,
        zone_id: zone.unwrap_or_default(),
    };
    let answer = ctx
        .session(
            request,
            |mut c, r| async move { c.explain_placement(r).await },
        )
        .await?;
    if ctx.json() {
        print_json(&explanation_json(&answer));
    } else {
        print!("{}", explanation_text(&answer));
    }
    Ok(())
}

fn verdict_json(v: &AgentVerdict) -> Value {
    json!({
        "agent_id": v.agent_id,
        "zone_id": v.zone_id,
        "chosen": v.chosen,
        "rejected_because": v.rejected_because,
        "free_cores": v.free_cores,
        "free_memory_mib": v.free_memory_mib,
        "free_gpus": v.free_gpus,
        "has_image": v.has_image,
    })
}

fn explanation_json(p: &PlacementExplanation) -> Value {
    json!({
        "agent_id": p.agent_id,
        "summary": p.summary,
        "agents": p.agents.iter().map(verdict_json).collect::<Vec<_>>(),
    })
}

/// The verdicts as a table (the chosen agent first), then the summary.
fn explanation_text(p: &PlacementExplanation) -> String {
    let mut table = Table::new(&[
        "AGENT",
        "ZONE",
        "CHOSEN",
        "FREE CORES",
        "FREE MEMORY MIB",
        "FREE GPUS",
        "HAS IMAGE",
        "REJECTED BECAUSE",
    ]);
    let mut agents: Vec<&AgentVerdict> = p.agents.iter().collect();
    agents.sort_by_key(|v| !v.chosen);
    for v in agents {
        table.push(vec![
            v.agent_id.clone(),
            v.zone_id.clone(),
            if v.chosen {
                "yes".into()
            } else {
                String::new()
            },
            v.free_cores.to_string(),
            v.free_memory_mib.to_string(),
            v.free_gpus.to_string(),
            yes_no(v.has_image),
            v.rejected_because.clone(),
        ]);
    }
    let mut text = if p.agents.is_empty() {
        "no agents\n".to_owned()
    } else {
        table.render()
    };
    if !p.summary.is_empty() {
        text.push_str(&p.summary);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn verdict(agent: &str, chosen: bool, rejected: &str) -> AgentVerdict {
        AgentVerdict {
            agent_id: agent.into(),
            zone_id: "east".into(),
            chosen,
            rejected_because: rejected.into(),
            free_cores: 1.5,
            free_memory_mib: 2048,
            free_gpus: 0,
            has_image: chosen,
        }
    }

    #[test]
    fn explain_takes_a_workspace_user_and_zone() {
        let cli = Cli::try_parse_from([
            "atrium",
            "placement",
            "explain",
            "Chrome",
            "--user",
            "alice",
            "--zone",
            "east",
        ])
        .expect("parse");
        let Command::Placement(PlacementCommand::Explain {
            workspace,
            user,
            zone,
        }) = cli.command
        else {
            panic!("expected placement explain");
        };
        assert_eq!(workspace, WorkspaceRef::Name("Chrome".into()));
        assert_eq!(user, Some(UserRef::Username("alice".into())));
        assert_eq!(zone.as_deref(), Some("east"));
        assert!(Cli::try_parse_from(["atrium", "placement", "explain"]).is_err());
    }

    #[test]
    fn the_chosen_agent_comes_first_and_every_rejection_is_shown() {
        let p = PlacementExplanation {
            agent_id: "node-2".into(),
            summary: "placed on node-2 (least loaded)".into(),
            agents: vec![
                verdict("node-1", false, "needs 2 cores, 1.5 free"),
                verdict("node-2", true, ""),
            ],
        };
        let text = explanation_text(&p);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("AGENT"), "{text}");
        let first: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            first,
            vec!["node-2", "east", "yes", "1.5", "2048", "0", "yes", "-"]
        );
        assert!(lines[2].starts_with("node-1") && lines[2].ends_with("needs 2 cores, 1.5 free"));
        assert_eq!(lines[3], "placed on node-2 (least loaded)");
        let v = explanation_json(&p);
        assert_eq!(v["agent_id"], "node-2");
        assert_eq!(
            v["agents"][0]["rejected_because"],
            "needs 2 cores, 1.5 free"
        );
        assert_eq!(v["agents"][1]["chosen"], true);
        let none = PlacementExplanation {
            summary: "no agent is alive".into(),
            ..Default::default()
        };
        assert_eq!(explanation_text(&none), "no agents\nno agent is alive\n");
    }
}
