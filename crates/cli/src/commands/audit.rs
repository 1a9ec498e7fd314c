//! `atrium audit list`.

use atrium_proto::identity::v1::ListAuditEventsRequest;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Ctx, PageArgs, Pager};
use crate::args::{Relative, UserRef, parse_instant, parse_user_ref, to_timestamp};
use crate::error::CliResult;
use crate::json::{self, time_text};
use crate::output::{Table, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only events about this user (id or username).
    #[arg(long, value_parser = parse_user_ref)]
    pub user: Option<UserRef>,
    /// Only events of this kind, e.g. login.failure.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events at or after: an RFC 3339 time, a date, or a duration ago such as 1h or 7d.
    #[arg(long, value_name = "WHEN", value_parser = parse_past)]
    pub since: Option<DateTime<Utc>>,
    /// Only events before: an RFC 3339 time, a date, or a duration ago.
    #[arg(long, value_name = "WHEN", value_parser = parse_past)]
    pub until: Option<DateTime<Utc>>,
    #[command(flatten)]
    pub page: PageArgs,
}

fn parse_past(value: &str) -> Result<DateTime<Utc>, String> {
    parse_instant(value, Utc::now(), Relative::Past)
}

pub async fn run(ctx: &mut Ctx, command: AuditCommand) -> CliResult {
    match command {
        AuditCommand::List(args) => list(ctx, args).await,
    }
}

async fn list(ctx: &mut Ctx, args: ListArgs) -> CliResult {
    let user_id = match &args.user {
        Some(u) => ctx.user_id(u).await?,
        None => String::new(),
    };
    let mut pager = Pager::new(&args.page);
    let mut events = Vec::new();
    while let Some(page) = pager.next() {
        let request = ListAuditEventsRequest {
            page: Some(page),
            user_id: user_id.clone(),
            kind: args.kind.clone().unwrap_or_default(),
            since: args.since.map(to_timestamp),
            until: args.until.map(to_timestamp),
        };
        let answer = ctx
            .identity
            .call(
                request,
                |mut c, r| async move { c.list_audit_events(r).await },
            )
            .await?;
        events.extend(answer.events);
        pager.advance(answer.page.as_ref())?;
    }
    if ctx.json() {
        print_json(&json!({
            "events": events.iter().map(json::audit_event).collect::<Vec<_>>(),
            "next_page_token": pager.next_token(),
        }));
        return Ok(());
    }
    let mut table = Table::new(&["AT", "KIND", "USER", "ACTOR", "DETAIL"]);
    for e in &events {
        table.push(vec![
            time_text(e.at.as_ref()),
            e.kind.clone(),
            e.user_id.clone(),
            e.actor.clone(),
            e.detail.clone(),
        ]);
    }
    table.print();
    pager.hint();
    Ok(())
}
