//! `atrium login`, `logout` and `whoami`.
//!
//! Login walks the server's answers until it has full tokens: TOTP_REQUIRED asks for a code
//! and logs in again; PASSWORD_CHANGE_REQUIRED asks for a new password and calls
//! ChangePassword with the restricted token; TOTP_ENROLLMENT_REQUIRED calls EnrollTotp, prints
//! the secret and otpauth URI, asks for a code and calls ConfirmTotp. Without a terminal each
//! question is answered by the next line of stdin (see `prompt`).

use std::io::Write;

use anyhow::anyhow;
use atrium_proto::identity::v1::{
    ChangePasswordRequest, ConfirmTotpRequest, EnrollTotpRequest, EnrollTotpResponse, LoginRequest,
    LoginResponse, LoginStatus, LogoutEverywhereRequest, LogoutRequest, WhoAmIRequest,
};
use atrium_service_kit::auth::Credential;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tonic::{Code, Status};

use super::Ctx;
use crate::args::{UserRef, parse_user_ref};
use crate::error::{CliError, CliResult, usage};
use crate::json;
use crate::output::{print_fields, print_json, yes_no};

/// A login takes at most this many round trips (TOTP, password change, enrolment, ...).
const MAX_LOGIN_STEPS: usize = 6;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The username [default: asked, or the first line of stdin].
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Read the password from the first line of stdin (later lines answer later questions).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// The current TOTP code, used if the server asks for one.
    #[arg(long, value_name = "CODE")]
    pub totp_code: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// End every login session of the user, not only this one.
    #[arg(long)]
    pub everywhere: bool,
    /// With --everywhere: whose sessions to end (id or username) [default: the caller].
    #[arg(long, requires = "everywhere", value_parser = parse_user_ref)]
    pub user: Option<UserRef>,
}

pub async fn login(ctx: &mut Ctx, args: LoginArgs) -> CliResult {
    let username = match args.username {
        Some(u) if !u.trim().is_empty() => u.trim().to_owned(),
        Some(_) => return Err(usage("--username: must not be empty")),
        None => ctx.prompt.line("Username: ", "username")?,
    };
    let password = if args.password_stdin {
        let line = ctx.prompt.stdin_line("password")?;
        if line.is_empty() {
            return Err(usage("--password-stdin: the first line of stdin is empty"));
        }
        SecretString::from(line)
    } else {
        ctx.prompt.secret("Password: ", "password")?
    };
    let mut request = LoginRequest {
        username,
        password: password.expose_secret().to_owned(),
        totp_code: String::new(),
        // Ignored by identity, which reads the user's 2FA requirement from policy itself.
        require_two_factor: false,
    };
    let anonymous = ctx.identity.client_with(None)?;
    let mut response = anonymous.clone().login(request.clone()).await?.into_inner();
    let mut totp_code = args.totp_code;
    let mut current_password = password;

    for _ in 0..MAX_LOGIN_STEPS {
        let status = LoginStatus::try_from(response.status).unwrap_or(LoginStatus::Unspecified);
        response = match status {
            LoginStatus::Success => return finish(ctx, &response),
            LoginStatus::TotpRequired => {
                if !request.totp_code.is_empty() {
                    return Err(
                        Status::unauthenticated("totp_code: the code was not accepted").into(),
                    );
                }
                request.totp_code = match totp_code.take() {
                    Some(code) => code.trim().to_owned(),
                    None => ctx.prompt.line("Two-factor code: ", "TOTP code")?,
                };
                anonymous.clone().login(request.clone()).await?.into_inner()
            }
            LoginStatus::PasswordChangeRequired => {
                if ctx.prompt.interactive() {
                    eprintln!("You must choose a new password.");
                }
                let new_password = ctx.prompt.new_password("password")?;
                let change = ChangePasswordRequest {
                    old_password: current_password.expose_secret().to_owned(),
                    new_password: new_password.expose_secret().to_owned(),
                };
                current_password = new_password;
                restricted(ctx, &response)?
                    .change_password(change)
                    .await?
                    .into_inner()
            }
            LoginStatus::TotpEnrollmentRequired => {
                let mut client = restricted(ctx, &response)?;
                let enrolment = client
                    .enroll_totp(EnrollTotpRequest::default())
                    .await?
                    .into_inner();
                show_enrolment(ctx, &enrolment)?;
                let code = ctx
                    .prompt
                    .line("Code from your authenticator app: ", "TOTP code")?;
                client
                    .confirm_totp(ConfirmTotpRequest { code })
                    .await?
                    .into_inner()
            }
            LoginStatus::Unspecified => {
                return Err(CliError::Local(anyhow!(
                    "the server answered the login with status {}",
                    json::login_status_name(response.status)
                )));
            }
        };
    }
    Err(CliError::Local(anyhow!(
        "the login did not complete after {MAX_LOGIN_STEPS} steps"
    )))
}

/// A client carrying the restricted token of an unfinished login.
fn restricted(ctx: &Ctx, response: &LoginResponse) -> CliResult<crate::client::Client> {
    if response.access_token.is_empty() {
        return Err(CliError::Local(anyhow!(
            "the server asked for another login step but sent no token for it"
        )));
    }
    ctx.identity
        .client_with(Some(&Credential::Bearer(response.access_token.clone())))
}

fn show_enrolment(ctx: &Ctx, enrolment: &EnrollTotpResponse) -> CliResult {
    if ctx.json() {
        print_json(&json!({
            "totp_enrollment": {
                "secret": enrolment.secret,
                "otpauth_uri": enrolment.otpauth_uri,
            }
        }));
    } else {
        eprintln!(
            "Two-factor authentication is required: add this secret to your authenticator app."
        );
        print_fields(&[
            ("secret", enrolment.secret.clone()),
            ("otpauth uri", enrolment.otpauth_uri.clone()),
        ]);
    }
    std::io::stdout().flush()?;
    Ok(())
}

fn finish(ctx: &mut Ctx, response: &LoginResponse) -> CliResult {
    if response.access_token.is_empty() {
        return Err(CliError::Local(anyhow!(
            "the server reported a successful login but sent no access token"
        )));
    }
    let path = ctx.identity.save_login(response)?;
    let endpoint = ctx.identity.endpoint().to_owned();
    if ctx.json() {
        let mut value = json::login(response, &endpoint);
        value["credentials_file"] = json!(path.display().to_string());
        print_json(&value);
    } else {
        let username = response
            .user
            .as_ref()
            .map(|u| u.username.as_str())
            .unwrap_or("?");
        println!(
            "logged in to {endpoint} as {username} (credentials in {})",
            path.display()
        );
    }
    Ok(())
}

pub async fn logout(ctx: &mut Ctx, args: LogoutArgs) -> CliResult {
    if args.everywhere {
        return logout_everywhere(ctx, args.user).await;
    }
    if !ctx.identity.has_credential() {
        if ctx.json() {
            print_json(&json!({ "ended": 0, "credentials_removed": false }));
        } else {
            println!("not logged in to {}", ctx.identity.endpoint());
        }
        return Ok(());
    }
    let outcome = ctx
        .identity
        .call(LogoutRequest::default(), |mut c, r| async move {
            c.logout(r).await
        })
        .await;
    let ended = match outcome {
        Ok(answer) => answer.ended,
        // The session was already gone; forgetting it locally is all that is left.
        Err(CliError::Status(s)) if s.code() == Code::Unauthenticated => 0,
        Err(e) => return Err(e),
    };
    let forgot = ctx.identity.forget_stored()?;
    report_logout(ctx, ended, forgot, "logged out")
}

async fn logout_everywhere(ctx: &mut Ctx, user: Option<UserRef>) -> CliResult {
    let user_id = match &user {
        Some(u) => ctx.user_id(u).await?,
        None => String::new(),
    };
    let request = LogoutEverywhereRequest {
        user_id: user_id.clone(),
    };
    let answer = ctx
        .identity
        .call(
            request,
            |mut c, r| async move { c.logout_everywhere(r).await },
        )
        .await?;
    let own = user_id.is_empty() || ctx.identity.stored().is_some_and(|s| s.user_id == user_id);
    let forgot = if own {
        ctx.identity.forget_stored()?
    } else {
        false
    };
    report_logout(ctx, answer.ended, forgot, "logged out everywhere")
}

fn report_logout(ctx: &Ctx, ended: u32, forgot: bool, what: &str) -> CliResult {
    if ctx.json() {
        print_json(&json!({ "ended": ended, "credentials_removed": forgot }));
    } else {
        let sessions = if ended == 1 { "session" } else { "sessions" };
        println!("{what}: {ended} login {sessions} ended");
    }
    Ok(())
}

pub async fn whoami(ctx: &mut Ctx) -> CliResult {
    let me = ctx
        .identity
        .call(
            WhoAmIRequest {},
            |mut c, r| async move { c.who_am_i(r).await },
        )
        .await?;
    let endpoint = ctx.identity.endpoint().to_owned();
    if ctx.json() {
        let mut value = json::whoami(&me);
        value["endpoint"] = json!(endpoint);
        print_json(&value);
        return Ok(());
    }
    print_fields(&[
        ("endpoint", endpoint),
        ("kind", me.kind.clone()),
        ("user id", me.user_id.clone()),
        ("username", me.username.clone()),
        ("api key id", me.api_key_id.clone()),
        ("service", me.service.clone()),
        ("scope", me.scope.clone()),
        ("admin", yes_no(me.is_admin)),
        ("permissions", me.permissions.join(", ")),
    ]);
    Ok(())
}
