//! `atrium audit list`: the audit trails of identity and policy, merged newest first, with a
//! column naming the service. `--service` lists one of them.
//!
//! Paging over both: each page asks each service for `--page-size` events and shows them
//! merged; the next page token carries both services' tokens (`<identity>.<policy>`, `~` for a
//! service with nothing left). `--all` fetches everything, so the merge is exact.

use atrium_proto::identity::v1 as idp;
use atrium_proto::policy::v1 as pol;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Ctx, PageArgs};
use crate::args::{Relative, UserRef, parse_instant, parse_user_ref, to_timestamp};
use crate::error::{CliResult, usage};
use crate::json::{audit_detail, time, time_text};
use crate::output::{Table, print_json};
use atrium_proto::common::v1::PageRequest;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// List audit events of identity and policy, newest first.
    List(ListArgs),
}

/// Which service's trail to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    All,
    Identity,
    Policy,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only events about this user (id or username).
    #[arg(long, value_parser = parse_user_ref)]
    pub user: Option<UserRef>,
    /// Only events of this kind, e.g. login.failure or member.add.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events at or after: an RFC 3339 time, a date, or a duration ago such as 1h or 7d.
    #[arg(long, value_name = "WHEN", value_parser = parse_past)]
    pub since: Option<DateTime<Utc>>,
    /// Only events before: an RFC 3339 time, a date, or a duration ago.
    #[arg(long, value_name = "WHEN", value_parser = parse_past)]
    pub until: Option<DateTime<Utc>>,
    /// Only this service's trail.
    #[arg(long, value_enum, default_value = "all")]
    pub service: Service,
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

/// One event of either service.
#[derive(Debug, Clone)]
struct Row {
    service: &'static str,
    id: String,
    at: Option<prost_types::Timestamp>,
    kind: String,
    user_id: String,
    actor: String,
    target: String,
    detail: String,
}

impl Row {
    fn sort_key(&self) -> (i64, i32, String) {
        let at = self.at.as_ref().map_or((0, 0), |t| (t.seconds, t.nanos));
        (at.0, at.1, self.id.clone())
    }
}

/// Where one service's trail stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    Start,
    At(String),
    Done,
}

impl Cursor {
    fn token(&self) -> String {
        match self {
            Cursor::At(t) => t.clone(),
            _ => String::new(),
        }
    }

    fn encode(&self) -> String {
        match self {
            Cursor::Start => String::new(),
            Cursor::At(t) => t.clone(),
            Cursor::Done => "~".into(),
        }
    }

    fn decode(part: &str) -> Cursor {
        match part {
            "" => Cursor::Start,
            "~" => Cursor::Done,
            t => Cursor::At(t.to_owned()),
        }
    }

    fn after(next: String) -> Cursor {
        if next.is_empty() {
            Cursor::Done
        } else {
            Cursor::At(next)
        }
    }
}

/// The two cursors from `--page-token` (for one service, its own token).
fn cursors(service: Service, token: Option<&str>) -> CliResult<(Cursor, Cursor)> {
    let token = token.unwrap_or_default();
    Ok(match service {
        Service::Identity => (Cursor::decode(token), Cursor::Done),
        Service::Policy => (Cursor::Done, Cursor::decode(token)),
        Service::All if token.is_empty() => (Cursor::Start, Cursor::Start),
        Service::All => {
            let (i, p) = token.split_once('.').ok_or_else(|| {
                usage("--page-token: not a token from `atrium audit list` over both services")
            })?;
            (Cursor::decode(i), Cursor::decode(p))
        }
    })
}

async fn list(ctx: &mut Ctx, args: ListArgs) -> CliResult {
    let user_id = match &args.user {
        Some(u) => ctx.user_id(u).await?,
        None => String::new(),
    };
    let (mut identity, mut policy) = cursors(args.service, args.page.page_token.as_deref())?;
    let size = args.page.page_size.unwrap_or(0);
    let mut rows = Vec::new();
    loop {
        if identity != Cursor::Done {
            let request = idp::ListAuditEventsRequest {
                page: Some(PageRequest {
                    page_size: size,
                    page_token: identity.token(),
                }),
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
            rows.extend(answer.events.into_iter().map(|e| Row {
                service: "identity",
                id: e.id,
                at: e.at,
                kind: e.kind,
                user_id: e.user_id,
                actor: e.actor,
                target: String::new(),
                detail: e.detail,
            }));
            identity = Cursor::after(answer.page.map(|p| p.next_page_token).unwrap_or_default());
        }
        if policy != Cursor::Done {
            let request = pol::ListAuditEventsRequest {
                page: Some(PageRequest {
                    page_size: size,
                    page_token: policy.token(),
                }),
                user_id: user_id.clone(),
                kind: args.kind.clone().unwrap_or_default(),
                since: args.since.map(to_timestamp),
                until: args.until.map(to_timestamp),
                ..Default::default()
            };
            let answer = ctx
                .policy(
                    request,
                    |mut c, r| async move { c.list_audit_events(r).await },
                )
                .await?;
            rows.extend(answer.events.into_iter().map(|e| Row {
                service: "policy",
                id: e.id,
                at: e.at,
                kind: e.kind,
                user_id: e.user_id,
                actor: e.actor,
                target: e.target,
                detail: e.detail,
            }));
            policy = Cursor::after(answer.page.map(|p| p.next_page_token).unwrap_or_default());
        }
        if !args.page.all || (identity == Cursor::Done && policy == Cursor::Done) {
            break;
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.sort_key()));
    let next = match args.service {
        Service::Identity => identity.token(),
        Service::Policy => policy.token(),
        Service::All if identity == Cursor::Done && policy == Cursor::Done => String::new(),
        Service::All => format!("{}.{}", identity.encode(), policy.encode()),
    };
    if ctx.json() {
        print_json(&json!({
            "events": rows.iter().map(row_json).collect::<Vec<_>>(),
            "next_page_token": next,
        }));
        return Ok(());
    }
    let mut table = Table::new(&["AT", "SERVICE", "KIND", "USER", "ACTOR", "TARGET", "DETAIL"]);
    for r in &rows {
        table.push(vec![
            time_text(r.at.as_ref()),
            r.service.to_owned(),
            r.kind.clone(),
            r.user_id.clone(),
            r.actor.clone(),
            r.target.clone(),
            r.detail.clone(),
        ]);
    }
    table.print();
    if !args.page.all && !next.is_empty() {
        eprintln!("more results: --page-token {next} (or --all)");
    }
    Ok(())
}

fn row_json(r: &Row) -> Value {
    json!({
        "service": r.service,
        "id": r.id,
        "at": time(r.at.as_ref()),
        "kind": r.kind,
        "user_id": r.user_id,
        "actor": r.actor,
        "target": r.target,
        "detail": audit_detail(&r.detail),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_carry_both_services() {
        let (i, p) = cursors(Service::All, Some("abc.~")).expect("token");
        assert_eq!(i, Cursor::At("abc".into()));
        assert_eq!(p, Cursor::Done);
        assert_eq!(format!("{}.{}", i.encode(), p.encode()), "abc.~");
        assert_eq!(
            cursors(Service::All, None).expect("start"),
            (Cursor::Start, Cursor::Start)
        );
        assert!(cursors(Service::All, Some("nodot")).is_err());
        assert_eq!(
            cursors(Service::Policy, Some("xyz")).expect("policy"),
            (Cursor::Done, Cursor::At("xyz".into()))
        );
    }
}
