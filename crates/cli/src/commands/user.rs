//! `atrium user ...`: the command tree, list, show, delete (create and update are in
//! `user_edit`; lock, passwords, 2FA reset and settings in `user_ops`).

use atrium_proto::identity::v1::{DeleteUserRequest, ListUsersRequest, Realm, User};
use serde_json::json;

use super::user_edit::{self, CreateArgs, UpdateArgs};
use super::user_ops::{self, SetPasswordArgs, SettingsArgs};
use super::{Ctx, PageArgs, Pager};
use crate::args::{RealmArg, UserRef, parse_user_ref};
use crate::error::{CliResult, usage};
use crate::json::{self, realm_name, time_text};
use crate::output::{Table, print_fields, print_json, yes_no};

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create(CreateArgs),
    /// List users, with filters.
    List(ListArgs),
    /// Show one user (by id or username).
    Show {
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Change only the given fields of a user.
    Update(UpdateArgs),
    /// Delete a user.
    Delete {
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Lock a user out.
    Lock {
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Unlock a user (also clears the failed-login count).
    Unlock {
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Clear a user's TOTP enrolment; they enrol again at their next login.
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Set a user's password (admin).
    SetPassword(SetPasswordArgs),
    /// Show a user's settings, or change the given ones.
    Settings(SettingsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Usernames containing this (case-insensitive).
    #[arg(long)]
    pub username_contains: Option<String>,
    /// Emails containing this (case-insensitive).
    #[arg(long)]
    pub email_contains: Option<String>,
    #[arg(long, value_enum)]
    pub realm: Option<RealmArg>,
    #[arg(long, value_name = "true|false")]
    pub locked: Option<bool>,
    #[arg(long, value_name = "true|false")]
    pub disabled: Option<bool>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(ctx: &mut Ctx, command: UserCommand) -> CliResult {
    match command {
        UserCommand::Create(args) => user_edit::create(ctx, args).await,
        UserCommand::List(args) => list(ctx, args).await,
        UserCommand::Show { user } => {
            let user = ctx.get_user(&user).await?;
            show(ctx, &user);
            Ok(())
        }
        UserCommand::Update(args) => user_edit::update(ctx, args).await,
        UserCommand::Delete { user, yes } => delete(ctx, user, yes).await,
        UserCommand::Lock { user } => user_ops::set_locked(ctx, user, true).await,
        UserCommand::Unlock { user } => user_ops::set_locked(ctx, user, false).await,
        UserCommand::ResetTwoFactor { user } => user_ops::reset_two_factor(ctx, user).await,
        UserCommand::SetPassword(args) => user_ops::set_password(ctx, args).await,
        UserCommand::Settings(args) => user_ops::settings(ctx, args).await,
    }
}

async fn list(ctx: &mut Ctx, args: ListArgs) -> CliResult {
    let mut pager = Pager::new(&args.page);
    let mut users = Vec::new();
    while let Some(page) = pager.next() {
        let request = ListUsersRequest {
            page: Some(page),
            username_contains: args.username_contains.clone().unwrap_or_default(),
            email_contains: args.email_contains.clone().unwrap_or_default(),
            realm: args.realm.map(Realm::from).unwrap_or(Realm::Unspecified) as i32,
            locked: args.locked,
            disabled: args.disabled,
        };
        let answer = ctx
            .identity
            .call(request, |mut c, r| async move { c.list_users(r).await })
            .await?;
        users.extend(answer.users);
        pager.advance(answer.page.as_ref())?;
    }
    if ctx.json() {
        print_json(&json!({
            "users": users.iter().map(json::user).collect::<Vec<_>>(),
            "next_page_token": pager.next_token(),
        }));
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "USERNAME",
        "NAME",
        "EMAIL",
        "REALM",
        "ADMIN",
        "LOCKED",
        "DISABLED",
        "2FA",
        "LAST SESSION",
    ]);
    for u in &users {
        table.push(vec![
            u.id.clone(),
            u.username.clone(),
            full_name(u),
            u.email.clone(),
            realm_name(u.realm),
            yes_no(u.is_admin),
            yes_no(u.locked),
            yes_no(u.disabled),
            yes_no(u.two_factor_enrolled),
            time_text(u.last_session_at.as_ref()),
        ]);
    }
    table.print();
    pager.hint();
    Ok(())
}

async fn delete(ctx: &mut Ctx, user: UserRef, yes: bool) -> CliResult {
    let user = ctx.get_user(&user).await?;
    if !yes {
        if !ctx.prompt.interactive() {
            return Err(usage(
                "refusing to delete without --yes when stdin is not a terminal",
            ));
        }
        let question = format!("Delete user {} ({})?", user.username, user.id);
        if !ctx.prompt.confirm(&question)? {
            return Err(usage("not deleted"));
        }
    }
    let request = DeleteUserRequest {
        user_id: user.id.clone(),
    };
    ctx.identity
        .call(request, |mut c, r| async move { c.delete_user(r).await })
        .await?;
    if ctx.json() {
        print_json(&json!({ "deleted": true, "user_id": user.id, "username": user.username }));
    } else {
        println!("deleted user {} ({})", user.username, user.id);
    }
    Ok(())
}

/// Prints one user: every field for people, the whole message for programs.
pub fn show(ctx: &Ctx, u: &User) {
    if ctx.json() {
        print_json(&json::user(u));
        return;
    }
    print_fields(&user_fields(u));
}

fn full_name(u: &User) -> String {
    format!("{} {}", u.first_name, u.last_name)
        .trim()
        .to_owned()
}

fn user_fields(u: &User) -> Vec<(&'static str, String)> {
    vec![
        ("id", u.id.clone()),
        ("username", u.username.clone()),
        ("name", full_name(u)),
        ("email", u.email.clone()),
        ("realm", realm_name(u.realm)),
        ("admin", yes_no(u.is_admin)),
        ("locked", yes_no(u.locked)),
        ("disabled", yes_no(u.disabled)),
        ("force password reset", yes_no(u.force_password_reset)),
        ("2fa enrolled", yes_no(u.two_factor_enrolled)),
        ("failed logins", u.failed_login_count.to_string()),
        ("organization", u.organization.clone()),
        ("phone", u.phone.clone()),
        ("city", u.city.clone()),
        ("state", u.state.clone()),
        ("country", u.country.clone()),
        ("notes", u.notes.clone()),
        ("custom attribute 1", u.custom_attribute_1.clone()),
        ("custom attribute 2", u.custom_attribute_2.clone()),
        ("custom attribute 3", u.custom_attribute_3.clone()),
        ("created", time_text(u.created_at.as_ref())),
        ("updated", time_text(u.updated_at.as_ref())),
        ("password set", time_text(u.password_set_at.as_ref())),
        ("last session", time_text(u.last_session_at.as_ref())),
    ]
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<UserCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("atrium").chain(args.iter().copied()))?;
        match cli.command {
            Command::User(cmd) => Ok(cmd),
            other => panic!("not a user command: {other:?}"),
        }
    }

    #[test]
    fn list_takes_explicit_booleans() {
        let Ok(UserCommand::List(args)) = parse(&["user", "list", "--locked", "false"]) else {
            panic!("expected list");
        };
        assert_eq!(args.locked, Some(false));
        assert_eq!(args.disabled, None);
        assert!(parse(&["user", "list", "--locked"]).is_err());
    }

    #[test]
    fn update_keeps_absent_fields_absent() {
        let Ok(UserCommand::Update(args)) = parse(&[
            "user",
            "update",
            "alice",
            "--email",
            "",
            "--custom-attribute-2",
            "x",
        ]) else {
            panic!("expected update");
        };
        assert_eq!(args.user, UserRef::Username("alice".into()));
        assert_eq!(args.profile.email.as_deref(), Some(""));
        assert_eq!(args.profile.custom_attribute_2.as_deref(), Some("x"));
        assert_eq!(args.profile.first_name, None);
        assert!(args.profile.any());
    }

    #[test]
    fn create_password_sources_exclude_each_other() {
        assert!(
            parse(&[
                "user",
                "create",
                "bob",
                "--password-stdin",
                "--generate-password"
            ])
            .is_err()
        );
        let Ok(UserCommand::Create(args)) =
            parse(&["user", "create", "bob", "--realm", "ldap", "--locked"])
        else {
            panic!("expected create");
        };
        assert_eq!(args.realm, Some(RealmArg::Ldap));
        assert!(args.locked);
    }

    #[test]
    fn user_fields_cover_the_profile() {
        let u = User {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            ..Default::default()
        };
        let fields = user_fields(&u);
        assert!(fields.contains(&("name", "Ada Lovelace".into())));
        assert_eq!(fields.len(), 24);
    }
}
