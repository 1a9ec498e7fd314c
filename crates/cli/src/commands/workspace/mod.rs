//! `atrium workspace ...`: workspaces (Kasm's images) and their assignment to groups (policy
//! service). Create and update, which set every field, are in `edit` (their flags in `flags`,
//! the flags' value parsers in `values`); how one workspace is printed is in `show`; finding one
//! by id, image or name in `find`.

mod edit;
mod find;
mod flags;
mod show;
mod values;

use atrium_proto::policy::v1::{
    DeleteWorkspaceRequest, ListLaunchableWorkspacesRequest, ListWorkspacesRequest, Workspace,
    WorkspaceAssignmentRequest,
};
use serde_json::json;

use super::{Ctx, PageArgs, Pager};
use crate::args::{
    GroupRef, UserRef, WorkspaceRef, parse_group_ref, parse_user_ref, parse_workspace_ref,
};
use crate::error::{CliResult, usage};
use crate::output::{Table, print_json, yes_no};
use crate::policy_json;
use edit::{CreateArgs, UpdateArgs};
pub use find::{get_workspace, launchable_workspace_id, workspace_id};
use show::show;

#[derive(Debug, clap::Subcommand)]
pub enum WorkspaceCommand {
    /// List workspaces.
    List {
        /// Include disabled workspaces.
        #[arg(long)]
        include_disabled: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one workspace (by id, image or name).
    Show {
        /// The workspace (id, image or name).
        #[arg(value_parser = parse_workspace_ref)]
        workspace: WorkspaceRef,
    },
    /// Create a workspace.
    Create(CreateArgs),
    /// Change a workspace's fields (the others keep their values).
    Update(UpdateArgs),
    /// Delete a workspace.
    Delete {
        /// The workspace (id, image or name).
        #[arg(value_parser = parse_workspace_ref)]
        workspace: WorkspaceRef,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Let a group's members launch a workspace.
    Assign {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// The workspace (id, image or name).
        #[arg(value_parser = parse_workspace_ref)]
        workspace: WorkspaceRef,
    },
    /// Take a workspace away from a group.
    Unassign {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// The workspace (id, image or name).
        #[arg(value_parser = parse_workspace_ref)]
        workspace: WorkspaceRef,
    },
    /// The enabled workspaces a user may launch (assigned to any of their groups).
    Launchable {
        /// The user (id or username) [default: the caller].
        #[arg(value_parser = parse_user_ref)]
        user: Option<UserRef>,
    },
}

pub async fn run(ctx: &mut Ctx, command: WorkspaceCommand) -> CliResult {
    match command {
        WorkspaceCommand::List {
            include_disabled,
            page,
        } => list(ctx, include_disabled, page).await,
        WorkspaceCommand::Show { workspace } => {
            let workspace = get_workspace(ctx, &workspace).await?;
            show(ctx, &workspace);
            Ok(())
        }
        WorkspaceCommand::Create(args) => edit::create(ctx, args).await,
        WorkspaceCommand::Update(args) => edit::update(ctx, args).await,
        WorkspaceCommand::Delete { workspace, yes } => delete(ctx, workspace, yes).await,
        WorkspaceCommand::Assign { group, workspace } => assign(ctx, group, workspace, true).await,
        WorkspaceCommand::Unassign { group, workspace } => {
            assign(ctx, group, workspace, false).await
        }
        WorkspaceCommand::Launchable { user } => {
            let request = ListLaunchableWorkspacesRequest {
                user_id: ctx.user_id_or_caller(user.as_ref()).await?,
            };
            let answer = ctx
                .policy(request, |mut c, r| async move {
                    c.list_launchable_workspaces(r).await
                })
                .await?;
            if ctx.json() {
                print_json(&json!({
                    "workspaces": answer.workspaces.iter().map(policy_json::workspace).collect::<Vec<_>>(),
                }));
            } else {
                workspace_table(&answer.workspaces).print();
            }
            Ok(())
        }
    }
}

async fn list(ctx: &mut Ctx, include_disabled: bool, page: PageArgs) -> CliResult {
    let mut pager = Pager::new(&page);
    let mut workspaces = Vec::new();
    while let Some(page) = pager.next() {
        let request = ListWorkspacesRequest {
            page: Some(page),
            include_disabled,
        };
        let answer = ctx
            .policy(
                request,
                |mut c, r| async move { c.list_workspaces(r).await },
            )
            .await?;
        workspaces.extend(answer.workspaces);
        pager.advance(answer.page.as_ref())?;
    }
    if ctx.json() {
        print_json(&json!({
            "workspaces": workspaces.iter().map(policy_json::workspace).collect::<Vec<_>>(),
            "next_page_token": pager.next_token(),
        }));
        return Ok(());
    }
    workspace_table(&workspaces).print();
    pager.hint();
    Ok(())
}

fn workspace_table(workspaces: &[Workspace]) -> Table {
    let mut table = Table::new(&["ID", "IMAGE", "NAME", "ENABLED", "CORES", "MEMORY MIB"]);
    for w in workspaces {
        table.push(vec![
            w.id.clone(),
            w.name.clone(),
            w.friendly_name.clone(),
            yes_no(w.enabled),
            w.cores.to_string(),
            w.memory_mib.to_string(),
        ]);
    }
    table
}

async fn delete(ctx: &mut Ctx, workspace: WorkspaceRef, yes: bool) -> CliResult {
    let workspace = get_workspace(ctx, &workspace).await?;
    if !yes {
        if !ctx.prompt.interactive() {
            return Err(usage(
                "refusing to delete without --yes when stdin is not a terminal",
            ));
        }
        let question = format!(
            "Delete workspace {} ({}, {})?",
            workspace.friendly_name, workspace.name, workspace.id
        );
        if !ctx.prompt.confirm(&question)? {
            return Err(usage("not deleted"));
        }
    }
    let request = DeleteWorkspaceRequest {
        workspace_id: workspace.id.clone(),
    };
    ctx.policy(
        request,
        |mut c, r| async move { c.delete_workspace(r).await },
    )
    .await?;
    if ctx.json() {
        print_json(&json!({
            "deleted": true,
            "workspace_id": workspace.id,
            "name": workspace.name,
        }));
    } else {
        println!(
            "deleted workspace {} ({})",
            workspace.friendly_name, workspace.id
        );
    }
    Ok(())
}

async fn assign(ctx: &mut Ctx, group: GroupRef, workspace: WorkspaceRef, on: bool) -> CliResult {
    let request = WorkspaceAssignmentRequest {
        group_id: ctx.group_id(&group).await?,
        workspace_id: workspace_id(ctx, &workspace).await?,
    };
    let answer = if on {
        ctx.policy(request.clone(), |mut c, r| async move {
            c.assign_workspace(r).await
        })
        .await?
    } else {
        ctx.policy(request.clone(), |mut c, r| async move {
            c.unassign_workspace(r).await
        })
        .await?
    };
    if ctx.json() {
        print_json(&json!({
            "changed": answer.changed,
            "group_id": request.group_id,
            "workspace_id": request.workspace_id,
        }));
    } else {
        let text = match (on, answer.changed) {
            (true, true) => format!("assigned {workspace} to {group}"),
            (true, false) => format!("{workspace} was already assigned to {group}"),
            (false, true) => format!("unassigned {workspace} from {group}"),
            (false, false) => format!("{workspace} was not assigned to {group}"),
        };
        println!("{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<WorkspaceCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("atrium").chain(args.iter().copied()))?;
        match cli.command {
            Command::Workspace(cmd) => Ok(cmd),
            other => panic!("not a workspace command: {other:?}"),
        }
    }

    #[test]
    fn launchable_defaults_to_the_caller() {
        let Ok(WorkspaceCommand::Launchable { user }) = parse(&["workspace", "launchable"]) else {
            panic!("expected launchable");
        };
        assert_eq!(user, None);
    }
}
