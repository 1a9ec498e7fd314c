//! `atrium usage ...`: session time through billing-usage (`--usage-endpoint`). `show` is one
//! user's usage_limit, what is used and left of it and their time by day; `report` is usage per
//! user, group, workspace or zone over a period, with costs (a table, JSON or CSV); `rate` sets
//! the cost per hour of workspaces. Users are named by id or username (through identity),
//! workspaces by id, image or name, groups, workspaces and zones in reports by their names
//! (through policy).
//!
//! The period's flags are checked before any call, so a bad `--from` never reaches a server.

mod csv;
mod names;
mod rate;
mod report;
mod show;
mod values;

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::args::{UserRef, WorkspaceRef, parse_user_ref, parse_workspace_ref};
use crate::error::CliResult;
use values::{parse_currency, parse_rate, parse_when};

#[derive(Debug, clap::Subcommand)]
pub enum UsageCommand {
    /// A user's usage_limit (which group sets it), time used and left in the current window,
    /// open sessions, whether the allowance is spent, and their time by day.
    Show(ShowArgs),
    /// Usage per user, group, workspace or zone over a period, with costs per currency (every
    /// page; needs reports.view).
    Report(ReportArgs),
    /// Cost rates of workspaces: hours × rate in the reports.
    #[command(subcommand)]
    Rate(RateCommand),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The user (id or username).
    #[arg(value_parser = parse_user_ref)]
    pub user: UserRef,
    /// Days of history, today included (1 to 366).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
}

/// What a report's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    User,
    Group,
    Workspace,
    Zone,
}

impl By {
    pub fn name(self) -> &'static str {
        match self {
            By::User => "user",
            By::Group => "group",
            By::Workspace => "workspace",
            By::Zone => "zone",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// One row per user, group, workspace or zone.
    #[arg(long, value_enum)]
    pub by: By,
    /// Start of the period (included): an RFC 3339 time, a date (YYYY-MM-DD, midnight UTC), or
    /// a duration ago such as 30d.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub from: DateTime<Utc>,
    /// End of the period (excluded), as --from [default: now].
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub to: Option<DateTime<Utc>>,
    /// Print RFC 4180 CSV (a header row, one cost column per currency, the total last)
    /// instead of a table or JSON.
    #[arg(long)]
    pub csv: bool,
    /// Rows per page asked of the server (every page is fetched).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: Option<u32>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RateCommand {
    /// Set (or replace) a workspace's cost per hour of session time (billing.modify).
    Set {
        /// The workspace (id, image or name).
        #[arg(value_parser = parse_workspace_ref)]
        workspace: WorkspaceRef,
        /// The cost of one hour, more than 0, e.g. 0.50.
        #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true, value_parser = parse_rate)]
        per_hour: f64,
        /// The currency: an ISO 4217 code such as EUR.
        #[arg(long, value_name = "CODE", value_parser = parse_currency)]
        currency: String,
    },
    /// Every workspace rate.
    List,
    /// Remove a workspace's rate (its time is then unpriced in reports).
    Delete {
        /// The workspace (id, image or name).
        #[arg(value_parser = parse_workspace_ref)]
        workspace: WorkspaceRef,
    },
}

pub async fn run(ctx: &mut Ctx, command: UsageCommand) -> CliResult {
    match command {
        UsageCommand::Show(args) => show::show(ctx, args).await,
        UsageCommand::Report(args) => report::report(ctx, args).await,
        UsageCommand::Rate(RateCommand::Set {
            workspace,
            per_hour,
            currency,
        }) => rate::set(ctx, &workspace, per_hour, currency).await,
        UsageCommand::Rate(RateCommand::List) => rate::list(ctx).await,
        UsageCommand::Rate(RateCommand::Delete { workspace }) => {
            rate::delete(ctx, &workspace).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<UsageCommand, clap::Error> {
        let cli = Cli::try_parse_from(["atrium", "usage"].into_iter().chain(args.iter().copied()))?;
        match cli.command {
            Command::Usage(cmd) => Ok(cmd),
            other => panic!("not a usage command: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        parse(args).expect_err("refused").to_string()
    }

    #[test]
    fn report_flags_are_read_and_bad_ones_named() {
        let Ok(UsageCommand::Report(args)) = parse(&[
            "report",
            "--by",
            "workspace",
            "--from",
            "2025-01-01",
            "--csv",
            "--page-size",
            "2",
        ]) else {
            panic!("expected report");
        };
        assert_eq!(args.by, By::Workspace);
        assert_eq!(args.from.to_rfc3339(), "2025-01-01T00:00:00+00:00");
        assert_eq!(args.to, None);
        assert!(args.csv);
        assert_eq!(args.page_size, Some(2));
        assert!(error(&["report", "--by", "user", "--from", "2025-13-01"]).contains("--from"));
        let to = error(&["report", "--by", "user", "--from", "1d", "--to", "soon"]);
        assert!(to.contains("--to"), "{to}");
        assert!(error(&["report", "--by", "planet", "--from", "1d"]).contains("--by"));
        assert!(error(&["report", "--by", "user"]).contains("--from"));
        let size = error(&["report", "--by", "user", "--from", "1d", "--page-size", "0"]);
        assert!(size.contains("--page-size"), "{size}");
    }

    #[test]
    fn rates_need_a_positive_amount_and_a_currency() {
        let Ok(UsageCommand::Rate(RateCommand::Set {
            workspace,
            per_hour,
            currency,
        })) = parse(&[
            "rate",
            "set",
            "Demo",
            "--per-hour",
            "0.50",
            "--currency",
            "eur",
        ])
        else {
            panic!("expected rate set");
        };
        assert_eq!(workspace, WorkspaceRef::Name("Demo".into()));
        assert_eq!((per_hour, currency.as_str()), (0.5, "EUR"));
        let negative = error(&[
            "rate",
            "set",
            "Demo",
            "--per-hour",
            "-1",
            "--currency",
            "EUR",
        ]);
        assert!(
            negative.contains("--per-hour") && negative.contains("more than 0"),
            "{negative}"
        );
        let currency = error(&[
            "rate",
            "set",
            "Demo",
            "--per-hour",
            "1",
            "--currency",
            "EURO",
        ]);
        assert!(currency.contains("--currency"), "{currency}");
        assert!(error(&["rate", "set", "Demo", "--per-hour", "1"]).contains("--currency"));
    }

    #[test]
    fn show_takes_a_user_and_a_number_of_days() {
        let Ok(UsageCommand::Show(args)) = parse(&["show", "alice"]) else {
            panic!("expected show");
        };
        assert_eq!(args.user, UserRef::Username("alice".into()));
        assert_eq!(args.days, 7);
        assert!(error(&["show", "alice", "--days", "0"]).contains("--days"));
        assert!(error(&["show", "alice", "--days", "367"]).contains("--days"));
        assert!(parse(&["show"]).is_err());
    }
}
