//! `atrium usage report`: every page of UsageReport over [from, to), each row named (usernames
//! from the rows, other names through policy, else the id), printed as a table, JSON or
//! RFC 4180 CSV with one cost column per currency.

use std::collections::{BTreeSet, HashMap};

use atrium_proto::usage::v1::{ReportBy, UsageReportRequest, UsageReportRow};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::values::{hours, hours_precise, money};
use super::{By, ReportArgs, csv, names};
use crate::args::to_timestamp;
use crate::commands::{Ctx, PageArgs, Pager};
use crate::error::{CliResult, usage};
use crate::json::{time, time_text};
use crate::output::{Table, print_json};

/// What the name column shows for sessions with no zone.
const NO_ZONE: &str = "(no zone)";

impl From<By> for ReportBy {
    fn from(by: By) -> ReportBy {
        match by {
            By::User => ReportBy::User,
            By::Group => ReportBy::Group,
            By::Workspace => ReportBy::Workspace,
            By::Zone => ReportBy::Zone,
        }
    }
}

/// Every row of every page, the total and the period the server reported on.
#[derive(Debug, Default)]
struct Report {
    rows: Vec<UsageReportRow>,
    total: UsageReportRow,
    from: Option<prost_types::Timestamp>,
    to: Option<prost_types::Timestamp>,
}

pub async fn report(ctx: &mut Ctx, args: ReportArgs) -> CliResult {
    let to = args.to.unwrap_or_else(Utc::now);
    if args.from >= to {
        let given = if args.to.is_some() {
            "--to"
        } else {
            "now (--to)"
        };
        return Err(usage(format!(
            "--from: {} is not before {given} {}",
            args.from.to_rfc3339_opts(SecondsFormat::Secs, true),
            to.to_rfc3339_opts(SecondsFormat::Secs, true)
        )));
    }
    let mut report = Report::default();
    let mut pager = Pager::new(&PageArgs {
        page_size: args.page_size,
        page_token: None,
        all: true,
    });
    while let Some(page) = pager.next() {
        let request = UsageReportRequest {
            by: ReportBy::from(args.by) as i32,
            from: Some(to_timestamp(args.from)),
            to: Some(to_timestamp(to)),
            page: Some(page),
        };
        let answer = ctx
            .usage(request, |mut c, r| async move { c.usage_report(r).await })
            .await?;
        report.rows.extend(answer.rows);
        report.total = answer.total.unwrap_or_default();
        report.from = answer.from.or(report.from);
        report.to = answer.to.or(report.to);
        pager.advance(answer.page.as_ref())?;
    }
    let names = names::for_report(ctx, args.by).await;
    let named = Named {
        by: args.by,
        names: &names,
    };
    if args.csv {
        print!("{}", named.csv(&report));
    } else if ctx.json() {
        print_json(&named.json(&report));
    } else {
        println!(
            "usage by {} from {} to {}",
            args.by.name(),
            time_text(report.from.as_ref()),
            time_text(report.to.as_ref())
        );
        named.table(&report).print();
    }
    Ok(())
}

/// Rows with their names.
struct Named<'a> {
    by: By,
    names: &'a HashMap<String, String>,
}

/// Every currency that appears, sorted.
fn currencies(report: &Report) -> Vec<String> {
    let all: BTreeSet<&str> = report
        .rows
        .iter()
        .chain(std::iter::once(&report.total))
        .flat_map(|r| r.costs.iter().map(|c| c.currency.as_str()))
        .collect();
    all.into_iter().map(str::to_owned).collect()
}

/// `12.50 EUR, 3.00 USD`.
fn costs_text(row: &UsageReportRow) -> String {
    row.costs
        .iter()
        .map(|c| format!("{} {}", money(c.amount), c.currency))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Named<'_> {
    /// The row's name: the username for users, a policy name, else the id.
    fn name(&self, row: &UsageReportRow) -> String {
        if !row.label.is_empty() {
            return row.label.clone();
        }
        if row.key.is_empty() && self.by == By::Zone {
            return NO_ZONE.to_owned();
        }
        self.names
            .get(&row.key)
            .cloned()
            .unwrap_or_else(|| row.key.clone())
    }

    fn table(&self, report: &Report) -> Table {
        let mut table = Table::new(&["KEY", "NAME", "HOURS", "SESSIONS", "COST", "UNPRICED HOURS"]);
        let total = &report.total;
        let rows = report.rows.iter().map(|r| (r.key.clone(), self.name(r), r));
        for (key, name, row) in rows.chain(std::iter::once(("total".into(), String::new(), total)))
        {
            table.push(vec![
                key,
                name,
                hours(row.seconds),
                row.sessions.to_string(),
                costs_text(row),
                hours(row.unpriced_seconds),
            ]);
        }
        table
    }

    /// A header row, one row per key, the total last (key `total`).
    fn csv(&self, report: &Report) -> String {
        let currencies = currencies(report);
        let mut header = vec![
            "key".to_owned(),
            "name".into(),
            "hours".into(),
            "sessions".into(),
        ];
        header.extend(currencies.iter().map(|c| format!("cost_{c}")));
        header.push("unpriced_hours".into());
        let mut out = csv::record(&header);
        let total = &report.total;
        let rows = report.rows.iter().map(|r| (r.key.clone(), self.name(r), r));
        for (key, name, row) in rows.chain(std::iter::once(("total".into(), String::new(), total)))
        {
            let mut fields = vec![
                key,
                name,
                hours_precise(row.seconds),
                row.sessions.to_string(),
            ];
            for currency in &currencies {
                let amount: f64 = row
                    .costs
                    .iter()
                    .filter(|c| &c.currency == currency)
                    .fold(0.0, |sum, c| sum + c.amount);
                fields.push(money(amount));
            }
            fields.push(hours_precise(row.unpriced_seconds));
            out.push_str(&csv::record(&fields));
        }
        out
    }

    fn row_json(&self, row: &UsageReportRow, name: Option<String>) -> Value {
        json!({
            "key": row.key,
            "name": name,
            "seconds": row.seconds,
            "sessions": row.sessions,
            "costs": row.costs.iter().map(|c| json!({
                "currency": c.currency,
                "amount": c.amount,
            })).collect::<Vec<_>>(),
            "unpriced_seconds": row.unpriced_seconds,
        })
    }

    fn json(&self, report: &Report) -> Value {
        json!({
            "by": self.by.name(),
            "from": time(report.from.as_ref()),
            "to": time(report.to.as_ref()),
            "rows": report
                .rows
                .iter()
                .map(|r| self.row_json(r, Some(self.name(r))))
                .collect::<Vec<_>>(),
            "total": self.row_json(&report.total, None),
        })
    }
}

#[cfg(test)]
mod tests {
    use atrium_proto::usage::v1::Cost;

    use super::*;

    fn row(key: &str, label: &str, seconds: f64, costs: &[(&str, f64)]) -> UsageReportRow {
        UsageReportRow {
            key: key.into(),
            label: label.into(),
            seconds,
            sessions: 1,
            costs: costs
                .iter()
                .map(|(currency, amount)| Cost {
                    currency: (*currency).into(),
                    amount: *amount,
                })
                .collect(),
            unpriced_seconds: 0.0,
        }
    }

    fn report() -> Report {
        Report {
            rows: vec![
                row("w1", "", 3600.0, &[("EUR", 0.5)]),
                row("w2", "", 1800.0, &[("USD", 1.0)]),
                row("w3", "", 900.0, &[]),
            ],
            total: UsageReportRow {
                sessions: 3,
                unpriced_seconds: 900.0,
                ..row("", "", 6300.0, &[("EUR", 0.5), ("USD", 1.0)])
            },
            ..Report::default()
        }
    }

    #[test]
    fn csv_has_a_column_per_currency_quotes_names_and_ends_in_the_total() {
        let names = HashMap::from([
            ("w1".to_owned(), "Chrome, stable".to_owned()),
            ("w2".to_owned(), "The \"Desk\"".to_owned()),
        ]);
        let named = Named {
            by: By::Workspace,
            names: &names,
        };
        let text = named.csv(&report());
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(
            lines,
            [
                "key,name,hours,sessions,cost_EUR,cost_USD,unpriced_hours",
                "w1,\"Chrome, stable\",1.0000,1,0.50,0.00,0.0000",
                "w2,\"The \"\"Desk\"\"\",0.5000,1,0.00,1.00,0.0000",
                // An unknown workspace (deleted since) keeps its id as its name.
                "w3,w3,0.2500,1,0.00,0.00,0.0000",
                "total,,1.7500,3,0.50,1.00,0.2500",
            ]
        );
        assert!(text.ends_with("\r\n"));
    }

    #[test]
    fn usernames_come_from_the_rows_and_sessions_without_a_zone_say_so() {
        let none = HashMap::new();
        let users = Named {
            by: By::User,
            names: &none,
        };
        assert_eq!(users.name(&row("u1", "alice", 0.0, &[])), "alice");
        let zones = Named {
            by: By::Zone,
            names: &none,
        };
        assert_eq!(zones.name(&row("", "", 0.0, &[])), NO_ZONE);
        let table = zones.table(&report()).render();
        let last = table.lines().last().unwrap_or_default();
        assert!(last.starts_with("total"), "{table}");
        assert!(last.contains("0.50 EUR, 1.00 USD"), "{table}");
        let json = zones.json(&report());
        assert_eq!(json["rows"][0]["name"], "w1");
        assert_eq!(json["total"]["name"], Value::Null);
        assert_eq!(json["total"]["costs"][1]["currency"], "USD");
    }
}
