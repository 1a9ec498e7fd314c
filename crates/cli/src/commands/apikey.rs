//! `atrium apikey create|list|revoke`.

use atrium_proto::identity::v1::{
    ApiKey, CreateApiKeyRequest, ListApiKeysRequest, RevokeApiKeyRequest,
};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Ctx, PageArgs, Pager};
use crate::args::{Relative, parse_instant, to_timestamp};
use crate::error::CliResult;
use crate::json::{self, time_text};
use crate::output::{Table, print_fields, print_json, yes_no};

#[derive(Debug, clap::Subcommand)]
pub enum ApikeyCommand {
    /// Create an API key; its secret is printed once.
    Create(CreateArgs),
    /// List API keys.
    List {
        /// Include revoked keys.
        #[arg(long)]
        include_revoked: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revoke an API key.
    Revoke { id: String },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    pub name: String,
    /// The key may only read.
    #[arg(long)]
    pub read_only: bool,
    /// A permission the key holds (repeatable).
    #[arg(long = "permission", value_name = "PERMISSION")]
    pub permissions: Vec<String>,
    /// When the key expires: an RFC 3339 time, a date (YYYY-MM-DD) or a duration from now
    /// such as 30d, 12h, 2w [default: never].
    #[arg(long, value_name = "WHEN", value_parser = parse_expiry)]
    pub expires: Option<DateTime<Utc>>,
}

fn parse_expiry(value: &str) -> Result<DateTime<Utc>, String> {
    parse_instant(value, Utc::now(), Relative::Future)
}

pub async fn run(ctx: &mut Ctx, command: ApikeyCommand) -> CliResult {
    match command {
        ApikeyCommand::Create(args) => create(ctx, args).await,
        ApikeyCommand::List {
            include_revoked,
            page,
        } => list(ctx, include_revoked, page).await,
        ApikeyCommand::Revoke { id } => revoke(ctx, id).await,
    }
}

async fn create(ctx: &mut Ctx, args: CreateArgs) -> CliResult {
    let request = CreateApiKeyRequest {
        name: args.name,
        read_only: args.read_only,
        permissions: args.permissions,
        expires_at: args.expires.map(to_timestamp),
    };
    let answer = ctx
        .identity
        .call(request, |mut c, r| async move { c.create_api_key(r).await })
        .await?;
    let key = answer.api_key.unwrap_or_default();
    let authorization = format!("ApiKey {}:{}", key.id, answer.secret);
    if ctx.json() {
        print_json(&json!({
            "api_key": json::api_key(&key),
            "secret": answer.secret,
            "authorization": authorization,
        }));
        return Ok(());
    }
    let mut fields = key_fields(&key);
    fields.push(("secret", answer.secret.clone()));
    fields.push(("authorization", authorization));
    print_fields(&fields);
    eprintln!("The secret is shown only now; keep it safe.");
    Ok(())
}

async fn list(ctx: &mut Ctx, include_revoked: bool, page: PageArgs) -> CliResult {
    let mut pager = Pager::new(&page);
    let mut keys = Vec::new();
    while let Some(page) = pager.next() {
        let request = ListApiKeysRequest {
            page: Some(page),
            include_revoked,
        };
        let answer = ctx
            .identity
            .call(request, |mut c, r| async move { c.list_api_keys(r).await })
            .await?;
        keys.extend(answer.api_keys);
        pager.advance(answer.page.as_ref())?;
    }
    if ctx.json() {
        print_json(&json!({
            "api_keys": keys.iter().map(json::api_key).collect::<Vec<_>>(),
            "next_page_token": pager.next_token(),
        }));
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "READ ONLY",
        "PERMISSIONS",
        "CREATED",
        "EXPIRES",
        "LAST USED",
        "REVOKED",
        "CREATED BY",
    ]);
    for k in &keys {
        table.push(vec![
            k.id.clone(),
            k.name.clone(),
            yes_no(k.read_only),
            k.permissions.join(","),
            time_text(k.created_at.as_ref()),
            time_text(k.expires_at.as_ref()),
            time_text(k.last_used_at.as_ref()),
            yes_no(k.revoked),
            k.created_by.clone(),
        ]);
    }
    table.print();
    pager.hint();
    Ok(())
}

async fn revoke(ctx: &mut Ctx, id: String) -> CliResult {
    let key = ctx
        .identity
        .call(RevokeApiKeyRequest { id }, |mut c, r| async move {
            c.revoke_api_key(r).await
        })
        .await?;
    if ctx.json() {
        print_json(&json::api_key(&key));
    } else {
        println!("revoked API key {} ({})", key.id, key.name);
    }
    Ok(())
}

fn key_fields(k: &ApiKey) -> Vec<(&'static str, String)> {
    vec![
        ("id", k.id.clone()),
        ("name", k.name.clone()),
        ("read only", yes_no(k.read_only)),
        ("permissions", k.permissions.join(", ")),
        ("created", time_text(k.created_at.as_ref())),
        ("expires", time_text(k.expires_at.as_ref())),
        ("created by", k.created_by.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::*;

    #[test]
    fn create_takes_repeated_permissions_and_a_relative_expiry() {
        let cli = Cli::try_parse_from([
            "atrium",
            "apikey",
            "create",
            "ci",
            "--permission",
            "users.read",
            "--permission",
            "sessions.read",
            "--expires",
            "30d",
        ])
        .expect("parse");
        let Command::Apikey(ApikeyCommand::Create(args)) = cli.command else {
            panic!("expected apikey create");
        };
        assert_eq!(args.permissions, vec!["users.read", "sessions.read"]);
        let expires = args.expires.expect("expires");
        let days = (expires - Utc::now()).num_days();
        assert!((29..=30).contains(&days), "{days}");
    }

    #[test]
    fn bad_expiry_is_a_usage_error() {
        let err = Cli::try_parse_from(["atrium", "apikey", "create", "ci", "--expires", "soon"])
            .expect_err("a bad expiry");
        assert_eq!(err.exit_code(), 2);
    }
}
