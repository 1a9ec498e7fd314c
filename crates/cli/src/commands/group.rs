//! `atrium group ...`: groups, their members and their permissions (policy service).

use atrium_proto::policy::v1::{
    CreateGroupRequest, DeleteGroupRequest, Group, GroupMemberRequest, GroupPermissionRequest,
    GroupPermissions, ListGroupMembersRequest, ListGroupPermissionsRequest, ListGroupsRequest,
    UpdateGroupRequest,
};
use serde_json::json;

use super::{Ctx, PageArgs, Pager, require_some};
use crate::args::{GroupRef, UserRef, parse_group_ref, parse_user_ref};
use crate::error::{CliResult, usage};
use crate::json::time_text;
use crate::output::{Table, print_fields, print_json, yes_no};
use crate::policy_json;

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        /// A name unique among groups (case-insensitive).
        name: String,
        /// 1..=1000000; lower is stronger: its settings win over weaker groups' (Administrators
        /// is 1, All Users 1000).
        #[arg(long, allow_hyphen_values = true)]
        priority: i32,
        #[arg(long)]
        description: Option<String>,
    },
    /// List groups, strongest (lowest priority number) first.
    List(ListArgs),
    /// Show one group (by id or name).
    Show {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
    },
    /// Change only the given fields of a group.
    Update(UpdateArgs),
    /// Delete a group with its memberships, settings, permissions and workspace assignments.
    Delete {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Add a user (id or username) to a group.
    AddUser {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// The user (id or username).
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Remove a user (id or username) from a group.
    RemoveUser {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// The user (id or username).
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// List a group's members.
    Members {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Grant permissions (e.g. users.view groups.modify) to a group's members.
    Grant {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// Permission names, e.g. users.view.
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// Revoke permissions from a group.
    Revoke {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// Permission names, e.g. users.view.
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// List the permissions a group grants.
    Permissions {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Names containing this (case-insensitive).
    #[arg(long)]
    pub name_contains: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The group (id or name).
    #[arg(value_parser = parse_group_ref)]
    pub group: GroupRef,
    /// A new name (system groups cannot be renamed).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// 1..=1000000; lower is stronger.
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<i32>,
}

pub async fn run(ctx: &mut Ctx, command: GroupCommand) -> CliResult {
    match command {
        GroupCommand::Create {
            name,
            priority,
            description,
        } => {
            let request = CreateGroupRequest {
                name,
                description: description.unwrap_or_default(),
                priority,
            };
            let group = ctx
                .policy(request, |mut c, r| async move { c.create_group(r).await })
                .await?;
            show(ctx, &group);
            Ok(())
        }
        GroupCommand::List(args) => list(ctx, args).await,
        GroupCommand::Show { group } => {
            let group = ctx.get_group(&group).await?;
            show(ctx, &group);
            Ok(())
        }
        GroupCommand::Update(args) => update(ctx, args).await,
        GroupCommand::Delete { group, yes } => delete(ctx, group, yes).await,
        GroupCommand::AddUser { group, user } => add_user(ctx, group, user).await,
        GroupCommand::RemoveUser { group, user } => remove_user(ctx, group, user).await,
        GroupCommand::Members { group, page } => members(ctx, group, page).await,
        GroupCommand::Grant { group, permissions } => {
            change_permissions(ctx, group, permissions, true).await
        }
        GroupCommand::Revoke { group, permissions } => {
            change_permissions(ctx, group, permissions, false).await
        }
        GroupCommand::Permissions { group } => {
            let request = ListGroupPermissionsRequest {
                group_id: ctx.group_id(&group).await?,
            };
            let answer = ctx
                .policy(request, |mut c, r| async move {
                    c.list_group_permissions(r).await
                })
                .await?;
            print_permissions(ctx, &answer);
            Ok(())
        }
    }
}

async fn list(ctx: &mut Ctx, args: ListArgs) -> CliResult {
    let mut pager = Pager::new(&args.page);
    let mut groups = Vec::new();
    while let Some(page) = pager.next() {
        let request = ListGroupsRequest {
            page: Some(page),
            name_contains: args.name_contains.clone().unwrap_or_default(),
        };
        let answer = ctx
            .policy(request, |mut c, r| async move { c.list_groups(r).await })
            .await?;
        groups.extend(answer.groups);
        pager.advance(answer.page.as_ref())?;
    }
    if ctx.json() {
        print_json(&json!({
            "groups": groups.iter().map(policy_json::group).collect::<Vec<_>>(),
            "next_page_token": pager.next_token(),
        }));
        return Ok(());
    }
    let mut table = Table::new(&["ID", "NAME", "PRIORITY", "MEMBERS", "SYSTEM", "DESCRIPTION"]);
    for g in &groups {
        table.push(vec![
            g.id.clone(),
            g.name.clone(),
            g.priority.to_string(),
            g.member_count.to_string(),
            yes_no(g.is_system),
            g.description.clone(),
        ]);
    }
    table.print();
    pager.hint();
    Ok(())
}

async fn update(ctx: &mut Ctx, args: UpdateArgs) -> CliResult {
    require_some(
        args.name.is_some() || args.description.is_some() || args.priority.is_some(),
        "nothing to update: give --name, --description or --priority",
    )?;
    let request = UpdateGroupRequest {
        group_id: ctx.group_id(&args.group).await?,
        name: args.name,
        description: args.description,
        priority: args.priority,
    };
    let group = ctx
        .policy(request, |mut c, r| async move { c.update_group(r).await })
        .await?;
    show(ctx, &group);
    Ok(())
}

async fn delete(ctx: &mut Ctx, group: GroupRef, yes: bool) -> CliResult {
    let group = ctx.get_group(&group).await?;
    if !yes {
        if !ctx.prompt.interactive() {
            return Err(usage(
                "refusing to delete without --yes when stdin is not a terminal",
            ));
        }
        let question = format!(
            "Delete group {} ({}) with its {} memberships, settings and permissions?",
            group.name, group.id, group.member_count
        );
        if !ctx.prompt.confirm(&question)? {
            return Err(usage("not deleted"));
        }
    }
    let request = DeleteGroupRequest {
        group_id: group.id.clone(),
    };
    ctx.policy(request, |mut c, r| async move { c.delete_group(r).await })
        .await?;
    if ctx.json() {
        print_json(&json!({ "deleted": true, "group_id": group.id, "name": group.name }));
    } else {
        println!("deleted group {} ({})", group.name, group.id);
    }
    Ok(())
}

async fn member_request(
    ctx: &mut Ctx,
    group: &GroupRef,
    user: &UserRef,
) -> CliResult<GroupMemberRequest> {
    Ok(GroupMemberRequest {
        group_id: ctx.group_id(group).await?,
        user_id: ctx.user_id(user).await?,
    })
}

async fn add_user(ctx: &mut Ctx, group: GroupRef, user: UserRef) -> CliResult {
    let request = member_request(ctx, &group, &user).await?;
    let membership = ctx
        .policy(
            request,
            |mut c, r| async move { c.add_group_member(r).await },
        )
        .await?;
    if ctx.json() {
        print_json(&policy_json::membership(&membership));
    } else {
        println!("added {user} to {group}");
    }
    Ok(())
}

async fn remove_user(ctx: &mut Ctx, group: GroupRef, user: UserRef) -> CliResult {
    let request = member_request(ctx, &group, &user).await?;
    let answer = ctx
        .policy(request.clone(), |mut c, r| async move {
            c.remove_group_member(r).await
        })
        .await?;
    if ctx.json() {
        print_json(&json!({
            "removed": answer.removed,
            "group_id": request.group_id,
            "user_id": request.user_id,
        }));
    } else if answer.removed {
        println!("removed {user} from {group}");
    } else {
        println!("{user} was not a member of {group}");
    }
    Ok(())
}

async fn members(ctx: &mut Ctx, group: GroupRef, page: PageArgs) -> CliResult {
    let group_id = ctx.group_id(&group).await?;
    let mut pager = Pager::new(&page);
    let mut members = Vec::new();
    while let Some(page) = pager.next() {
        let request = ListGroupMembersRequest {
            group_id: group_id.clone(),
            page: Some(page),
        };
        let answer = ctx
            .policy(
                request,
                |mut c, r| async move { c.list_group_members(r).await },
            )
            .await?;
        members.extend(answer.members);
        pager.advance(answer.page.as_ref())?;
    }
    if ctx.json() {
        print_json(&json!({
            "members": members.iter().map(policy_json::membership).collect::<Vec<_>>(),
            "next_page_token": pager.next_token(),
        }));
        return Ok(());
    }
    let mut table = Table::new(&["USER ID", "SOURCE", "ADDED"]);
    for m in &members {
        table.push(vec![
            m.user_id.clone(),
            m.source.clone(),
            time_text(m.added_at.as_ref()),
        ]);
    }
    table.print();
    pager.hint();
    Ok(())
}

/// Grants (or revokes) each permission in turn; the first refusal stops the rest.
async fn change_permissions(
    ctx: &mut Ctx,
    group: GroupRef,
    permissions: Vec<String>,
    grant: bool,
) -> CliResult {
    let group_id = ctx.group_id(&group).await?;
    let mut answer = GroupPermissions {
        group_id: group_id.clone(),
        permissions: Vec::new(),
    };
    for permission in &permissions {
        let request = GroupPermissionRequest {
            group_id: group_id.clone(),
            permission: permission.clone(),
        };
        answer = if grant {
            ctx.policy(
                request,
                |mut c, r| async move { c.grant_permission(r).await },
            )
            .await?
        } else {
            ctx.policy(
                request,
                |mut c, r| async move { c.revoke_permission(r).await },
            )
            .await?
        };
    }
    if ctx.json() {
        print_json(&policy_json::group_permissions(&answer));
    } else {
        let (verb, preposition) = if grant {
            ("granted", "to")
        } else {
            ("revoked", "from")
        };
        println!("{verb} {} {preposition} {group}", permissions.join(", "));
        println!(
            "{group} now grants: {}",
            permissions_text(&answer.permissions)
        );
    }
    Ok(())
}

fn permissions_text(permissions: &[String]) -> String {
    if permissions.is_empty() {
        "(none)".to_owned()
    } else {
        permissions.join(", ")
    }
}

fn print_permissions(ctx: &Ctx, p: &GroupPermissions) {
    if ctx.json() {
        print_json(&policy_json::group_permissions(p));
        return;
    }
    let mut table = Table::new(&["PERMISSION"]);
    for permission in &p.permissions {
        table.push(vec![permission.clone()]);
    }
    table.print();
}

/// Prints one group: every field for people, the whole message for programs.
pub fn show(ctx: &Ctx, g: &Group) {
    if ctx.json() {
        print_json(&policy_json::group(g));
        return;
    }
    print_fields(&group_fields(g));
}

fn group_fields(g: &Group) -> Vec<(&'static str, String)> {
    vec![
        ("id", g.id.clone()),
        ("name", g.name.clone()),
        ("description", g.description.clone()),
        ("priority", g.priority.to_string()),
        ("system", yes_no(g.is_system)),
        ("members", g.member_count.to_string()),
        ("created", time_text(g.created_at.as_ref())),
        ("updated", time_text(g.updated_at.as_ref())),
    ]
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<GroupCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("atrium").chain(args.iter().copied()))?;
        match cli.command {
            Command::Group(cmd) => Ok(cmd),
            other => panic!("not a group command: {other:?}"),
        }
    }

    #[test]
    fn create_needs_a_priority() {
        assert!(parse(&["group", "create", "Staff"]).is_err());
        let Ok(GroupCommand::Create {
            name,
            priority,
            description,
        }) = parse(&["group", "create", "Staff", "--priority", "10"])
        else {
            panic!("expected create");
        };
        assert_eq!((name.as_str(), priority, description), ("Staff", 10, None));
        // Out-of-range priorities reach the server, which names the field.
        assert!(parse(&["group", "create", "S", "--priority", "-1"]).is_ok());
    }

    #[test]
    fn groups_and_users_are_ids_or_names() {
        let Ok(GroupCommand::AddUser { group, user }) = parse(&[
            "group",
            "add-user",
            "All Users",
            "0190b5a2-1c3d-7e4f-8a9b-0c1d2e3f4a5b",
        ]) else {
            panic!("expected add-user");
        };
        assert_eq!(group, GroupRef::Name("All Users".into()));
        assert_eq!(
            user,
            UserRef::Id("0190b5a2-1c3d-7e4f-8a9b-0c1d2e3f4a5b".into())
        );
    }

    #[test]
    fn grant_takes_one_or_more_permissions() {
        assert!(parse(&["group", "grant", "Staff"]).is_err());
        let Ok(GroupCommand::Grant { permissions, .. }) =
            parse(&["group", "grant", "Staff", "users.view", "groups.view"])
        else {
            panic!("expected grant");
        };
        assert_eq!(permissions, vec!["users.view", "groups.view"]);
    }

    #[test]
    fn update_keeps_absent_fields_absent() {
        let Ok(GroupCommand::Update(args)) =
            parse(&["group", "update", "Staff", "--description", ""])
        else {
            panic!("expected update");
        };
        assert_eq!(args.description.as_deref(), Some(""));
        assert_eq!((args.name, args.priority), (None, None));
    }

    #[test]
    fn group_fields_cover_the_message() {
        let g = Group {
            name: "Staff".into(),
            priority: 10,
            member_count: 3,
            ..Default::default()
        };
        let fields = group_fields(&g);
        assert!(fields.contains(&("priority", "10".into())));
        assert!(fields.contains(&("members", "3".into())));
        assert_eq!(permissions_text(&[]), "(none)");
    }
}
