//! Account operations on a user: lock/unlock, passwords (where they come from, too), 2FA
//! reset, settings.

use atrium_proto::identity::v1::{
    GetUserSettingsRequest, ResetTwoFactorRequest, SetPasswordRequest, Theme, UpdateUserRequest,
    UpdateUserSettingsRequest, UserSettings,
};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::json;

use super::Ctx;
use crate::args::{ThemeArg, UserRef, parse_user_ref};
use crate::error::{CliResult, usage};
use crate::json::{self, theme_name};
use crate::output::{print_fields, print_json, yes_no};
use crate::prompt::Prompter;

const GENERATED_PASSWORD_LEN: usize = 20;

/// Where a new password comes from.
#[derive(Debug, Default, clap::Args)]
#[group(multiple = false)]
pub struct PasswordSource {
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Ask for the password (twice, without echo).
    #[arg(long)]
    pub password_prompt: bool,
    /// Generate a random password and print it once.
    #[arg(long)]
    pub generate_password: bool,
}

/// A resolved password; `value` is `None` when none was given.
#[derive(Debug)]
pub struct Password {
    pub value: Option<String>,
    pub generated: bool,
}

impl PasswordSource {
    /// With no flag, a person at a terminal is asked when `ask_by_default`; otherwise there is
    /// no password (the server decides whether one is needed).
    pub fn resolve(&self, prompt: &mut Prompter, ask_by_default: bool) -> CliResult<Password> {
        let value = if self.password_stdin {
            let line = prompt.stdin_line("password")?;
            if line.is_empty() {
                return Err(usage("--password-stdin: the first line of stdin is empty"));
            }
            Some(line)
        } else if self.generate_password {
            return Ok(Password {
                value: Some(generate_password()),
                generated: true,
            });
        } else if self.password_prompt || (ask_by_default && prompt.interactive()) {
            Some(prompt.new_password("password")?.expose_secret().to_owned())
        } else {
            None
        };
        Ok(Password {
            value,
            generated: false,
        })
    }
}

/// Letters and digits, with at least one lowercase, one uppercase and one digit.
pub fn generate_password() -> String {
    let mut rng = rand::rng();
    loop {
        let candidate: String = (&mut rng)
            .sample_iter(rand::distr::Alphanumeric)
            .take(GENERATED_PASSWORD_LEN)
            .map(char::from)
            .collect();
        if candidate.chars().any(|c| c.is_ascii_lowercase())
            && candidate.chars().any(|c| c.is_ascii_uppercase())
            && candidate.chars().any(|c| c.is_ascii_digit())
        {
            return candidate;
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SetPasswordArgs {
    #[arg(value_parser = parse_user_ref)]
    pub user: UserRef,
    /// Read the password from the first line of stdin [default: ask].
    #[arg(long, conflicts_with = "generate_password")]
    pub password_stdin: bool,
    /// Generate a random password and print it once.
    #[arg(long)]
    pub generate_password: bool,
    /// Make the user choose a new password at their next login.
    #[arg(long)]
    pub force_reset: bool,
}

#[derive(Debug, clap::Args)]
pub struct SettingsArgs {
    /// The user (id or username) [default: the caller].
    #[arg(value_parser = parse_user_ref)]
    pub user: Option<UserRef>,
    #[arg(long, value_enum)]
    pub theme: Option<ThemeArg>,
    #[arg(long, value_name = "true|false")]
    pub auto_launch_session: Option<bool>,
    #[arg(long, value_name = "true|false")]
    pub chat_sound_effects: Option<bool>,
    /// A workspace id ("" clears it).
    #[arg(long, value_name = "WORKSPACE_ID")]
    pub default_workspace_image: Option<String>,
    #[arg(long, value_name = "true|false")]
    pub show_tips_during_session: Option<bool>,
    #[arg(long, value_name = "true|false")]
    pub toggle_control_panel: Option<bool>,
}

pub async fn set_locked(ctx: &mut Ctx, user: UserRef, locked: bool) -> CliResult {
    let request = UpdateUserRequest {
        user_id: ctx.user_id(&user).await?,
        locked: Some(locked),
        ..Default::default()
    };
    let user = ctx
        .identity
        .call(request, |mut c, r| async move { c.update_user(r).await })
        .await?;
    if ctx.json() {
        print_json(&json::user(&user));
    } else {
        let verb = if locked { "locked" } else { "unlocked" };
        println!("{verb} user {} ({})", user.username, user.id);
    }
    Ok(())
}

pub async fn reset_two_factor(ctx: &mut Ctx, user: UserRef) -> CliResult {
    let request = ResetTwoFactorRequest {
        user_id: ctx.user_id(&user).await?,
    };
    let user = ctx
        .identity
        .call(
            request,
            |mut c, r| async move { c.reset_two_factor(r).await },
        )
        .await?;
    if ctx.json() {
        print_json(&json::user(&user));
    } else {
        println!(
            "two-factor enrolment cleared for {} ({}); they enrol again at their next login",
            user.username, user.id
        );
    }
    Ok(())
}

pub async fn set_password(ctx: &mut Ctx, args: SetPasswordArgs) -> CliResult {
    let user_id = ctx.user_id(&args.user).await?;
    let source = PasswordSource {
        password_stdin: args.password_stdin,
        password_prompt: !args.password_stdin && !args.generate_password,
        generate_password: args.generate_password,
    };
    let password = source.resolve(&mut ctx.prompt, true)?;
    let request = SetPasswordRequest {
        user_id,
        new_password: password.value.clone().unwrap_or_default(),
        force_password_reset: args.force_reset,
    };
    let user = ctx
        .identity
        .call(request, |mut c, r| async move { c.set_password(r).await })
        .await?;
    let generated = password.generated.then_some(password.value).flatten();
    if ctx.json() {
        // The same shapes as `user create`: the user, or the user and the generated password.
        print_json(&match generated {
            Some(pw) => json!({ "user": json::user(&user), "generated_password": pw }),
            None => json::user(&user),
        });
    } else {
        println!("password set for {} ({})", user.username, user.id);
        if let Some(pw) = generated {
            println!("generated password: {pw}");
        }
        if user.force_password_reset {
            println!("they must choose a new one at their next login");
        }
    }
    Ok(())
}

pub async fn settings(ctx: &mut Ctx, args: SettingsArgs) -> CliResult {
    let user_id = match &args.user {
        Some(u) => ctx.user_id(u).await?,
        None => String::new(),
    };
    let update = UpdateUserSettingsRequest {
        user_id: user_id.clone(),
        auto_launch_session: args.auto_launch_session,
        chat_sound_effects: args.chat_sound_effects,
        default_workspace_image: args.default_workspace_image,
        show_tips_during_session: args.show_tips_during_session,
        toggle_control_panel: args.toggle_control_panel,
        theme: args.theme.map(|t| Theme::from(t) as i32),
    };
    let changes = update.auto_launch_session.is_some()
        || update.chat_sound_effects.is_some()
        || update.default_workspace_image.is_some()
        || update.show_tips_during_session.is_some()
        || update.toggle_control_panel.is_some()
        || update.theme.is_some();
    let settings = if changes {
        ctx.identity
            .call(
                update,
                |mut c, r| async move { c.update_user_settings(r).await },
            )
            .await?
    } else {
        ctx.identity
            .call(GetUserSettingsRequest { user_id }, |mut c, r| async move {
                c.get_user_settings(r).await
            })
            .await?
    };
    show_settings(ctx, &settings);
    Ok(())
}

fn show_settings(ctx: &Ctx, s: &UserSettings) {
    if ctx.json() {
        print_json(&json::user_settings(s));
        return;
    }
    print_fields(&[
        ("user id", s.user_id.clone()),
        ("theme", theme_name(s.theme)),
        ("auto launch session", yes_no(s.auto_launch_session)),
        ("chat sound effects", yes_no(s.chat_sound_effects)),
        ("default workspace image", s.default_workspace_image.clone()),
        (
            "show tips during session",
            yes_no(s.show_tips_during_session),
        ),
        ("toggle control panel", yes_no(s.toggle_control_panel)),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_mix_classes() {
        for _ in 0..50 {
            let pw = generate_password();
            assert_eq!(pw.len(), GENERATED_PASSWORD_LEN);
            assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(pw.chars().any(|c| c.is_ascii_digit()));
            assert!(pw.chars().any(|c| c.is_ascii_uppercase()));
        }
        assert_ne!(generate_password(), generate_password());
    }
}
