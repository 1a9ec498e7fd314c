//! `atrium 2fa enroll|confirm`: TOTP enrolment for the logged-in user.

use atrium_proto::identity::v1::{ConfirmTotpRequest, EnrollTotpRequest, LoginStatus};
use serde_json::json;

use super::Ctx;
use crate::args::{UserRef, parse_user_ref};
use crate::error::CliResult;
use crate::output::{print_fields, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum TwoFaCommand {
    /// Start TOTP enrolment: prints the secret and the otpauth:// URI for an authenticator app.
    Enroll {
        /// Enrol another user (admin) [default: the caller].
        #[arg(long, value_parser = parse_user_ref)]
        user: Option<UserRef>,
    },
    /// Finish enrolment with a current code from the authenticator app.
    Confirm { code: String },
}

pub async fn run(ctx: &mut Ctx, command: TwoFaCommand) -> CliResult {
    match command {
        TwoFaCommand::Enroll { user } => enroll(ctx, user).await,
        TwoFaCommand::Confirm { code } => confirm(ctx, code).await,
    }
}

async fn enroll(ctx: &mut Ctx, user: Option<UserRef>) -> CliResult {
    let user_id = match &user {
        Some(u) => ctx.user_id(u).await?,
        None => String::new(),
    };
    let answer = ctx
        .identity
        .call(EnrollTotpRequest { user_id }, |mut c, r| async move {
            c.enroll_totp(r).await
        })
        .await?;
    if ctx.json() {
        print_json(&json!({
            "secret": answer.secret,
            "otpauth_uri": answer.otpauth_uri,
        }));
    } else {
        print_fields(&[
            ("secret", answer.secret.clone()),
            ("otpauth uri", answer.otpauth_uri.clone()),
        ]);
        eprintln!("Add it to your authenticator app, then run `atrium 2fa confirm <code>`.");
    }
    Ok(())
}

async fn confirm(ctx: &mut Ctx, code: String) -> CliResult {
    let request = ConfirmTotpRequest {
        code: code.trim().to_owned(),
    };
    let answer = ctx
        .identity
        .call(request, |mut c, r| async move { c.confirm_totp(r).await })
        .await?;
    // If the server handed out fresh tokens for the stored login, keep them.
    let renewed = answer.status == LoginStatus::Success as i32
        && !answer.access_token.is_empty()
        && !answer.refresh_token.is_empty()
        && ctx.identity.stored().is_some();
    if renewed {
        ctx.identity.save_login(&answer)?;
    }
    if ctx.json() {
        print_json(&json!({ "two_factor_enrolled": true, "credentials_updated": renewed }));
    } else {
        println!("two-factor authentication is on");
    }
    Ok(())
}
