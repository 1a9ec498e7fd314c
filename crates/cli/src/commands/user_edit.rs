//! `atrium user create` and `atrium user update`: the profile fields both take.

use atrium_proto::identity::v1::{CreateUserRequest, Realm, UpdateUserRequest};
use serde_json::json;

use super::user::show;
use super::user_ops::PasswordSource;
use super::{Ctx, require_some};
use crate::args::{RealmArg, UserRef, parse_user_ref};
use crate::error::CliResult;
use crate::json;
use crate::output::print_json;

/// The profile fields that create and update share.
#[derive(Debug, Default, clap::Args)]
pub struct ProfileArgs {
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub organization: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    #[arg(long)]
    pub city: Option<String>,
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub country: Option<String>,
    #[arg(long = "custom-attribute-1")]
    pub custom_attribute_1: Option<String>,
    #[arg(long = "custom-attribute-2")]
    pub custom_attribute_2: Option<String>,
    #[arg(long = "custom-attribute-3")]
    pub custom_attribute_3: Option<String>,
}

impl ProfileArgs {
    pub fn any(&self) -> bool {
        [
            &self.first_name,
            &self.last_name,
            &self.email,
            &self.organization,
            &self.phone,
            &self.notes,
            &self.city,
            &self.state,
            &self.country,
            &self.custom_attribute_1,
            &self.custom_attribute_2,
            &self.custom_attribute_3,
        ]
        .iter()
        .any(|f| f.is_some())
    }
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    pub username: String,
    #[command(flatten)]
    pub password: PasswordSource,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Where the user authenticates [default: local].
    #[arg(long, value_enum)]
    pub realm: Option<RealmArg>,
    #[arg(long)]
    pub locked: bool,
    #[arg(long)]
    pub disabled: bool,
    /// Make the user choose a new password at their first login.
    #[arg(long)]
    pub force_password_reset: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[arg(value_parser = parse_user_ref)]
    pub user: UserRef,
    /// A new username.
    #[arg(long)]
    pub username: Option<String>,
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[arg(long, value_enum)]
    pub realm: Option<RealmArg>,
    #[arg(long, value_name = "true|false")]
    pub locked: Option<bool>,
    #[arg(long, value_name = "true|false")]
    pub disabled: Option<bool>,
    #[arg(long, value_name = "true|false")]
    pub force_password_reset: Option<bool>,
}

pub async fn create(ctx: &mut Ctx, args: CreateArgs) -> CliResult {
    let realm = args.realm.map(Realm::from).unwrap_or(Realm::Unspecified);
    let local = matches!(realm, Realm::Unspecified | Realm::Local);
    let password = args.password.resolve(&mut ctx.prompt, local)?;
    let p = args.profile;
    let request = CreateUserRequest {
        username: args.username,
        password: password.value.clone().unwrap_or_default(),
        first_name: p.first_name.unwrap_or_default(),
        last_name: p.last_name.unwrap_or_default(),
        realm: realm as i32,
        notes: p.notes.unwrap_or_default(),
        locked: args.locked,
        disabled: args.disabled,
        organization: p.organization.unwrap_or_default(),
        phone: p.phone.unwrap_or_default(),
        email: p.email.unwrap_or_default(),
        custom_attribute_1: p.custom_attribute_1.unwrap_or_default(),
        custom_attribute_2: p.custom_attribute_2.unwrap_or_default(),
        custom_attribute_3: p.custom_attribute_3.unwrap_or_default(),
        city: p.city.unwrap_or_default(),
        state: p.state.unwrap_or_default(),
        country: p.country.unwrap_or_default(),
        force_password_reset: args.force_password_reset,
    };
    let user = ctx
        .identity
        .call(request, |mut c, r| async move { c.create_user(r).await })
        .await?;
    let generated = password.generated.then_some(password.value).flatten();
    if ctx.json() {
        let mut value = json::user(&user);
        if let Some(pw) = &generated {
            value = json!({ "user": value, "generated_password": pw });
        }
        print_json(&value);
    } else {
        show(ctx, &user);
        if let Some(pw) = &generated {
            println!("generated password: {pw}");
        }
    }
    Ok(())
}

pub async fn update(ctx: &mut Ctx, args: UpdateArgs) -> CliResult {
    require_some(
        args.username.is_some()
            || args.profile.any()
            || args.realm.is_some()
            || args.locked.is_some()
            || args.disabled.is_some()
            || args.force_password_reset.is_some(),
        "nothing to update: give at least one field, e.g. --email a@example.com",
    )?;
    let user_id = ctx.user_id(&args.user).await?;
    let p = args.profile;
    let request = UpdateUserRequest {
        user_id,
        username: args.username,
        first_name: p.first_name,
        last_name: p.last_name,
        realm: args.realm.map(|r| Realm::from(r) as i32),
        notes: p.notes,
        locked: args.locked,
        disabled: args.disabled,
        organization: p.organization,
        phone: p.phone,
        email: p.email,
        custom_attribute_1: p.custom_attribute_1,
        custom_attribute_2: p.custom_attribute_2,
        custom_attribute_3: p.custom_attribute_3,
        city: p.city,
        state: p.state,
        country: p.country,
        force_password_reset: args.force_password_reset,
    };
    let user = ctx
        .identity
        .call(request, |mut c, r| async move { c.update_user(r).await })
        .await?;
    show(ctx, &user);
    Ok(())
}
