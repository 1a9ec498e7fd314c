//! `atrium usage rate set|list|delete`: a workspace's cost per hour of session time, which
//! reports multiply by its hours. Workspaces are named by id, image or name (through policy).

use std::collections::HashMap;

use atrium_proto::usage::v1::{
    DeleteWorkspaceRateRequest, ListWorkspaceRatesRequest, WorkspaceRate,
};
use serde_json::{Value, json};

use super::names;
use super::values::rate_text;
use crate::args::WorkspaceRef;
use crate::commands::Ctx;
use crate::commands::workspace::workspace_id;
use crate::error::CliResult;
use crate::output::{Table, print_json};

fn rate_json(rate: &WorkspaceRate, name: Option<&String>) -> Value {
    json!({
        "workspace_id": rate.workspace_id,
        "workspace": name,
        "per_hour": rate.per_hour,
        "currency": rate.currency,
    })
}

pub async fn set(
    ctx: &mut Ctx,
    workspace: &WorkspaceRef,
    per_hour: f64,
    currency: String,
) -> CliResult {
    let request = WorkspaceRate {
        workspace_id: workspace_id(ctx, workspace).await?,
        per_hour,
        currency,
    };
    let rate = ctx
        .usage(
            request,
            |mut c, r| async move { c.set_workspace_rate(r).await },
        )
        .await?;
    if ctx.json() {
        print_json(&rate_json(&rate, None));
    } else {
        println!(
            "{workspace} ({}) now costs {} {} per hour",
            rate.workspace_id,
            rate_text(rate.per_hour),
            rate.currency
        );
    }
    Ok(())
}

pub async fn list(ctx: &mut Ctx) -> CliResult {
    let answer = ctx
        .usage(ListWorkspaceRatesRequest {}, |mut c, r| async move {
            c.list_workspace_rates(r).await
        })
        .await?;
    let names = if answer.rates.is_empty() {
        HashMap::new()
    } else {
        names::or_ids(names::workspaces(ctx).await, "workspace")
    };
    if ctx.json() {
        print_json(&json!({
            "rates": answer
                .rates
                .iter()
                .map(|r| rate_json(r, names.get(&r.workspace_id)))
                .collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    rate_table(&answer.rates, &names).print();
    Ok(())
}

fn rate_table(rates: &[WorkspaceRate], names: &HashMap<String, String>) -> Table {
    let mut table = Table::new(&["WORKSPACE ID", "WORKSPACE", "PER HOUR", "CURRENCY"]);
    for rate in rates {
        table.push(vec![
            rate.workspace_id.clone(),
            names
                .get(&rate.workspace_id)
                .cloned()
                .unwrap_or_else(|| rate.workspace_id.clone()),
            rate_text(rate.per_hour),
            rate.currency.clone(),
        ]);
    }
    table
}

pub async fn delete(ctx: &mut Ctx, workspace: &WorkspaceRef) -> CliResult {
    let request = DeleteWorkspaceRateRequest {
        workspace_id: workspace_id(ctx, workspace).await?,
    };
    let id = request.workspace_id.clone();
    ctx.usage(request, |mut c, r| async move {
        c.delete_workspace_rate(r).await
    })
    .await?;
    if ctx.json() {
        print_json(&json!({ "deleted": true, "workspace_id": id }));
    } else {
        println!("deleted the rate of {workspace} ({id}): its time is now unpriced");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_show_the_workspace_name_or_its_id() {
        let rates = [
            WorkspaceRate {
                workspace_id: "w1".into(),
                per_hour: 0.5,
                currency: "EUR".into(),
            },
            WorkspaceRate {
                workspace_id: "w2".into(),
                per_hour: 0.125,
                currency: "USD".into(),
            },
        ];
        let names = HashMap::from([("w1".to_owned(), "Chrome".to_owned())]);
        assert_eq!(
            rate_table(&rates, &names).render(),
            "WORKSPACE ID  WORKSPACE  PER HOUR  CURRENCY\n\
             w1            Chrome     0.50      EUR\n\
             w2            w2         0.125     USD\n"
        );
    }
}
