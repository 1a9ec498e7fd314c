//! Names for the ids billing-usage answers with: groups, workspaces and zones through policy's
//! List calls (every page). Names are a courtesy: when policy cannot be asked (no right to
//! list, not reachable), the ids are shown and a note says why, on stderr.

use std::collections::HashMap;

use atrium_proto::policy::v1::{ListGroupsRequest, ListWorkspacesRequest, ListZonesRequest};

use super::By;
use crate::commands::{Ctx, PageArgs, Pager};
use crate::error::CliResult;

/// Every page, as many rows per page as the server allows.
fn every_page() -> Pager {
    Pager::new(&PageArgs {
        page_size: Some(1000),
        page_token: None,
        all: true,
    })
}

/// Workspace id → friendly name (else image).
pub async fn workspaces(ctx: &mut Ctx) -> CliResult<HashMap<String, String>> {
    let mut names = HashMap::new();
    let mut pager = every_page();
    while let Some(page) = pager.next() {
        let request = ListWorkspacesRequest {
            page: Some(page),
            include_disabled: true,
        };
        let answer = ctx
            .policy(
                request,
                |mut c, r| async move { c.list_workspaces(r).await },
            )
            .await?;
        for w in answer.workspaces {
            let name = if w.friendly_name.is_empty() {
                w.name
            } else {
                w.friendly_name
            };
            names.insert(w.id, name);
        }
        pager.advance(answer.page.as_ref())?;
    }
    Ok(names)
}

async fn groups(ctx: &mut Ctx) -> CliResult<HashMap<String, String>> {
    let mut names = HashMap::new();
    let mut pager = every_page();
    while let Some(page) = pager.next() {
        let request = ListGroupsRequest {
            page: Some(page),
            name_contains: String::new(),
        };
        let answer = ctx
            .policy(request, |mut c, r| async move { c.list_groups(r).await })
            .await?;
        names.extend(answer.groups.into_iter().map(|g| (g.id, g.name)));
        pager.advance(answer.page.as_ref())?;
    }
    Ok(names)
}

async fn zones(ctx: &mut Ctx) -> CliResult<HashMap<String, String>> {
    let answer = ctx
        .policy(ListZonesRequest {}, |mut c, r| async move {
            c.list_zones(r).await
        })
        .await?;
    Ok(answer.zones.into_iter().map(|z| (z.id, z.name)).collect())
}

/// The names for a report's keys (none needed for users: their rows carry the username).
pub async fn for_report(ctx: &mut Ctx, by: By) -> HashMap<String, String> {
    let found = match by {
        By::User => return HashMap::new(),
        By::Group => groups(ctx).await,
        By::Workspace => workspaces(ctx).await,
        By::Zone => zones(ctx).await,
    };
    or_ids(found, by.name())
}

/// The names found, or none (the ids are shown) with a note on stderr.
pub fn or_ids(found: CliResult<HashMap<String, String>>, what: &str) -> HashMap<String, String> {
    found.unwrap_or_else(|e| {
        eprintln!(
            "note: showing {what} ids: their names could not be read from policy ({})",
            e.message()
        );
        HashMap::new()
    })
}
