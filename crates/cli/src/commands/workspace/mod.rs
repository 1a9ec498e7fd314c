//! `atrium workspace ...`: workspaces (Kasm's images) and their assignment to groups (policy
//! service). Minimal: the everyday fields; the rest keep the service's defaults.

use atrium_proto::policy::v1::{
    CreateWorkspaceRequest, DeleteWorkspaceRequest, GetWorkspaceRequest,
    ListLaunchableWorkspacesRequest, ListWorkspacesRequest, Workspace, WorkspaceAssignmentRequest,
};
use serde_json::json;

use super::{Ctx, PageArgs, Pager};
use crate::args::{
    GroupRef, UserRef, WorkspaceRef, parse_group_ref, parse_user_ref, parse_workspace_ref,
};
use crate::error::{CliError, CliResult, usage};
use crate::json::time_text;
use crate::output::{Table, print_fields, print_json, yes_no};
use crate::policy_json;

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

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The Docker image, e.g. kasmweb/chrome:1.16.0.
    #[arg(long)]
    pub image: String,
    /// The name users see [default: the image].
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// CPU cores (fractions allowed) [default: the service's, 2].
    #[arg(long)]
    pub cores: Option<f64>,
    /// Memory in MiB [default: the service's, 2768].
    #[arg(long)]
    pub memory_mib: Option<i64>,
    /// Create it disabled (nobody can launch it until it is enabled).
    #[arg(long)]
    pub disabled: bool,
    /// Do not assign it to All Users, whatever the service does by default.
    #[arg(long)]
    pub no_default_group: bool,
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
        WorkspaceCommand::Create(args) => {
            let request = create_request(args);
            let workspace = ctx
                .policy(
                    request,
                    |mut c, r| async move { c.create_workspace(r).await },
                )
                .await?;
            show(ctx, &workspace);
            Ok(())
        }
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

fn create_request(args: CreateArgs) -> CreateWorkspaceRequest {
    CreateWorkspaceRequest {
        workspace: Some(Workspace {
            name: args.image,
            friendly_name: args.name.unwrap_or_default(),
            description: args.description.unwrap_or_default(),
            enabled: !args.disabled,
            // Zero asks for the service's default.
            cores: args.cores.unwrap_or(0.0),
            memory_mib: args.memory_mib.unwrap_or(0),
            ..Default::default()
        }),
        assign_to_all_users: args.no_default_group.then_some(false),
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

/// Fetches a workspace by id, or finds it by image or name among all of them.
async fn get_workspace(ctx: &mut Ctx, workspace: &WorkspaceRef) -> CliResult<Workspace> {
    match workspace {
        WorkspaceRef::Id(id) => {
            let request = GetWorkspaceRequest {
                workspace_id: id.clone(),
            };
            ctx.policy(request, |mut c, r| async move { c.get_workspace(r).await })
                .await
        }
        WorkspaceRef::Name(name) => {
            let all = PageArgs {
                page_size: None,
                page_token: None,
                all: true,
            };
            let mut pager = Pager::new(&all);
            let mut workspaces = Vec::new();
            while let Some(page) = pager.next() {
                let request = ListWorkspacesRequest {
                    page: Some(page),
                    include_disabled: true,
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
            pick(workspaces, name)
        }
    }
}

/// The one workspace whose image, else whose friendly name, is `name`.
fn pick(workspaces: Vec<Workspace>, name: &str) -> CliResult<Workspace> {
    let (by_image, others): (Vec<Workspace>, Vec<Workspace>) =
        workspaces.into_iter().partition(|w| w.name == name);
    let mut found = if by_image.is_empty() {
        others
            .into_iter()
            .filter(|w| w.friendly_name == name)
            .collect()
    } else {
        by_image
    };
    match found.len() {
        0 => Err(CliError::Status(tonic::Status::not_found(format!(
            "no workspace has the image or name {name:?}"
        )))),
        1 => Ok(found.remove(0)),
        n => {
            let ids: Vec<&str> = found.iter().map(|w| w.id.as_str()).collect();
            Err(usage(format!(
                "{n} workspaces match {name:?}; give one of their ids: {}",
                ids.join(", ")
            )))
        }
    }
}

async fn workspace_id(ctx: &mut Ctx, workspace: &WorkspaceRef) -> CliResult<String> {
    match workspace {
        WorkspaceRef::Id(id) => Ok(id.clone()),
        WorkspaceRef::Name(_) => Ok(get_workspace(ctx, workspace).await?.id),
    }
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

/// Prints one workspace: the main fields for people, the whole message for programs.
fn show(ctx: &Ctx, w: &Workspace) {
    if ctx.json() {
        print_json(&policy_json::workspace(w));
        return;
    }
    print_fields(&workspace_fields(w));
}

fn workspace_fields(w: &Workspace) -> Vec<(&'static str, String)> {
    vec![
        ("id", w.id.clone()),
        ("image", w.name.clone()),
        ("name", w.friendly_name.clone()),
        ("description", w.description.clone()),
        ("categories", w.categories.join(", ")),
        ("enabled", yes_no(w.enabled)),
        ("hidden", yes_no(w.hidden)),
        ("cores", w.cores.to_string()),
        ("memory (MiB)", w.memory_mib.to_string()),
        ("gpus", w.gpu_count.to_string()),
        ("zone", w.zone_id.clone()),
        ("persistent profile", w.persistent_profile_path.clone()),
        (
            "session time limit",
            w.session_time_limit_secs
                .map(|s| format!("{s}s"))
                .unwrap_or_default(),
        ),
        ("created", time_text(w.created_at.as_ref())),
        ("updated", time_text(w.updated_at.as_ref())),
    ]
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

    fn ws(id: &str, image: &str, name: &str) -> Workspace {
        Workspace {
            id: id.into(),
            name: image.into(),
            friendly_name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn create_leaves_defaults_to_the_service() {
        assert!(parse(&["workspace", "create"]).is_err());
        let Ok(WorkspaceCommand::Create(args)) = parse(&[
            "workspace",
            "create",
            "--image",
            "kasmweb/chrome:1.16.0",
            "--cores",
            "1.5",
            "--no-default-group",
        ]) else {
            panic!("expected create");
        };
        let request = create_request(args);
        assert_eq!(request.assign_to_all_users, Some(false));
        let w = request.workspace.unwrap_or_default();
        assert_eq!(w.name, "kasmweb/chrome:1.16.0");
        assert_eq!((w.cores, w.memory_mib, w.enabled), (1.5, 0, true));
        let Ok(WorkspaceCommand::Create(args)) =
            parse(&["workspace", "create", "--image", "x", "--disabled"])
        else {
            panic!("expected create");
        };
        let request = create_request(args);
        assert_eq!(request.assign_to_all_users, None);
        assert!(!request.workspace.unwrap_or_default().enabled);
    }

    #[test]
    fn workspaces_are_found_by_image_then_name() {
        let all = || {
            vec![
                ws("1", "kasmweb/chrome:1", "Chrome"),
                ws("2", "kasmweb/firefox:1", "Firefox"),
                ws("3", "kasmweb/firefox:2", "Firefox"),
                ws("4", "Chrome", "Odd"),
            ]
        };
        assert_eq!(
            pick(all(), "kasmweb/chrome:1").map(|w| w.id).ok(),
            Some("1".into())
        );
        // An image match wins over a friendly-name match.
        assert_eq!(pick(all(), "Chrome").map(|w| w.id).ok(), Some("4".into()));
        assert!(matches!(pick(all(), "Firefox"), Err(CliError::Usage(m)) if m.contains("2, 3")));
        assert!(
            matches!(pick(all(), "nope"), Err(CliError::Status(s)) if s.code() == tonic::Code::NotFound)
        );
    }

    #[test]
    fn launchable_defaults_to_the_caller() {
        let Ok(WorkspaceCommand::Launchable { user }) = parse(&["workspace", "launchable"]) else {
            panic!("expected launchable");
        };
        assert_eq!(user, None);
    }
}
