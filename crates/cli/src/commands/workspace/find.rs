//! Finding a workspace named on the command line: by id, else by image, else by friendly name
//! (for the workspace commands, and any command that takes a workspace).

use atrium_proto::policy::v1::{
    GetWorkspaceRequest, ListLaunchableWorkspacesRequest, ListWorkspacesRequest, Workspace,
};
use tonic::Code;

use crate::args::WorkspaceRef;
use crate::commands::{Ctx, PageArgs, Pager};
use crate::error::{CliError, CliResult, usage};

/// Fetches a workspace by id, or finds it by image or name among all of them.
pub async fn get_workspace(ctx: &mut Ctx, workspace: &WorkspaceRef) -> CliResult<Workspace> {
    match workspace {
        WorkspaceRef::Id(id) => {
            let request = GetWorkspaceRequest {
                workspace_id: id.clone(),
            };
            ctx.policy(request, |mut c, r| async move { c.get_workspace(r).await })
                .await
        }
        WorkspaceRef::Name(name) => {
            let all = PageArgs {
                page_size: None,
                page_token: None,
                all: true,
            };
            let mut pager = Pager::new(&all);
            let mut workspaces = Vec::new();
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
                workspaces.extend(answer.workspaces);
                pager.advance(answer.page.as_ref())?;
            }
            pick(workspaces, name)
        }
    }
}

/// The one workspace whose image, else whose friendly name, is `name`.
fn pick(workspaces: Vec<Workspace>, name: &str) -> CliResult<Workspace> {
    let (by_image, others): (Vec<Workspace>, Vec<Workspace>) =
        workspaces.into_iter().partition(|w| w.name == name);
    let mut found = if by_image.is_empty() {
        others
            .into_iter()
            .filter(|w| w.friendly_name == name)
            .collect()
    } else {
        by_image
    };
    match found.len() {
        0 => Err(CliError::Status(tonic::Status::not_found(format!(
            "no workspace has the image or name {name:?}"
        )))),
        1 => Ok(found.remove(0)),
        n => {
            let ids: Vec<&str> = found.iter().map(|w| w.id.as_str()).collect();
            Err(usage(format!(
                "{n} workspaces match {name:?}; give one of their ids: {}",
                ids.join(", ")
            )))
        }
    }
}

/// The id of a workspace to launch for `user_id` ("" for the caller): a name is looked up
/// among the workspaces that user may launch (which any user may list for themselves), then,
/// for callers with workspaces.view, among all of them.
pub async fn launchable_workspace_id(
    ctx: &mut Ctx,
    workspace: &WorkspaceRef,
    user_id: &str,
) -> CliResult<String> {
    let WorkspaceRef::Name(name) = workspace else {
        return workspace_id(ctx, workspace).await;
    };
    let request = ListLaunchableWorkspacesRequest {
        user_id: user_id.to_owned(),
    };
    let launchable = ctx
        .policy(request, |mut c, r| async move {
            c.list_launchable_workspaces(r).await
        })
        .await?;
    match pick(launchable.workspaces, name) {
        Ok(w) => Ok(w.id),
        Err(CliError::Status(not_found)) if not_found.code() == Code::NotFound => {
            match get_workspace(ctx, workspace).await {
                Ok(w) => Ok(w.id),
                // Without workspaces.view the launchable answer is the one to give.
                Err(CliError::Status(s)) if s.code() == Code::PermissionDenied => {
                    Err(CliError::Status(not_found))
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

pub async fn workspace_id(ctx: &mut Ctx, workspace: &WorkspaceRef) -> CliResult<String> {
    match workspace {
        WorkspaceRef::Id(id) => Ok(id.clone()),
        WorkspaceRef::Name(_) => Ok(get_workspace(ctx, workspace).await?.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(id: &str, image: &str, name: &str) -> Workspace {
        Workspace {
            id: id.into(),
            name: image.into(),
            friendly_name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn workspaces_are_found_by_image_then_name() {
        let all = || {
            vec![
                ws("1", "kasmweb/chrome:1", "Chrome"),
                ws("2", "kasmweb/firefox:1", "Firefox"),
                ws("3", "kasmweb/firefox:2", "Firefox"),
                ws("4", "Chrome", "Odd"),
            ]
        };
        assert_eq!(
            pick(all(), "kasmweb/chrome:1").map(|w| w.id).ok(),
            Some("1".into())
        );
        // An image match wins over a friendly-name match.
        assert_eq!(pick(all(), "Chrome").map(|w| w.id).ok(), Some("4".into()));
        assert!(matches!(pick(all(), "Firefox"), Err(CliError::Usage(m)) if m.contains("2, 3")));
        assert!(
            matches!(pick(all(), "nope"), Err(CliError::Status(s)) if s.code() == tonic::Code::NotFound)
        );
    }
}
