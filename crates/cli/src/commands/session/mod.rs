//! `atrium session ...`: sessions through the session-manager (`--session-endpoint`). Calls
//! record intent and return at once; `launch` and `go` then follow the session live until it
//! runs or fails (`follow`), `watch` until it ends. How sessions are printed is in `view`.
//! Workspaces are named by id, image or name (a name looked up among those the user may
//! launch); users by id or username.

mod follow;
mod view;

use atrium_proto::common::v1::PageRequest;
use atrium_proto::session::v1::{
    ExecRequest, GetSessionRequest, GoSessionRequest, ListSessionsRequest, ObservedState,
    RequestSessionRequest, Session, SessionOptions, SessionRef,
};
use serde_json::json;

use super::workspace::launchable_workspace_id;
use super::{Ctx, PageArgs, Pager};
use crate::args::{UserRef, WorkspaceRef, parse_env_pair, parse_user_ref, parse_workspace_ref};
use crate::error::{CliError, CliResult};
use crate::output::{print_fields, print_json};
use follow::{Goal, follow};
use view::{
    action_line, explanation_fields, explanation_json, keepalive_json, keepalive_text,
    session_fields, session_json, session_table,
};

#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Launch a workspace and follow it until it runs (exit 0) or fails (exit 1, with why).
    Launch(LaunchArgs),
    /// List sessions: your own, or with sessions.view anyone's.
    List(ListArgs),
    /// Show one session.
    Show(SessionId),
    /// Follow a session's state, progress and messages until it ends (deleted or failed).
    Watch(SessionId),
    /// Move a session's keepalive deadline.
    Keepalive(SessionId),
    /// Pause a session (its container is paused, its memory kept).
    Pause(SessionId),
    /// Stop a session (its container is stopped; resume starts it again).
    Stop(SessionId),
    /// Resume a paused or stopped session.
    Resume(SessionId),
    /// Delete a session (its container is removed).
    Delete {
        #[command(flatten)]
        id: SessionId,
        /// Mark it deleted at once, whatever its agent says (ForceDelete; sessions.delete).
        #[arg(long)]
        force: bool,
    },
    /// Why a session is alive and how it will end.
    Explain(SessionId),
    /// Run a workspace hook, or (administrators) a command, in a running session.
    Exec(ExecArgs),
    /// Your default workspace: resume its live session, else launch one, and follow it.
    Go(GoArgs),
}

#[derive(Debug, clap::Args)]
pub struct SessionId {
    /// The session's id.
    #[arg(value_name = "SESSION", value_parser = parse_session_id)]
    pub id: String,
}

fn parse_session_id(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("a session id is required".into());
    }
    Ok(value.to_owned())
}

/// What a launch asks for besides the workspace.
#[derive(Debug, Default, clap::Args)]
pub struct LaunchOptions {
    /// An environment variable for the session; repeat for several.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,
    /// The page a browser workspace opens (kasm_url).
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub url: Option<String>,
    /// The zone to place it in, by id or name (needs allow_zone_selection).
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// Return once the session is requested, without following it.
    #[arg(long)]
    pub no_watch: bool,
}

impl LaunchOptions {
    fn session_options(&self) -> SessionOptions {
        SessionOptions {
            environment: self.env.iter().cloned().collect(),
            url: self.url.clone().unwrap_or_default(),
            zone_id: self.zone.clone().unwrap_or_default(),
            ..Default::default()
        }
    }
}

fn parse_http_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    let host = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    if host.is_empty() || value.chars().any(char::is_whitespace) {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(value.to_owned())
}

#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    /// The workspace (id, image or name).
    #[arg(value_parser = parse_workspace_ref)]
    pub workspace: WorkspaceRef,
    /// Launch for this user (id or username; needs sessions.modify) [default: you].
    #[arg(long, value_parser = parse_user_ref)]
    pub user: Option<UserRef>,
    #[command(flatten)]
    pub options: LaunchOptions,
}

#[derive(Debug, clap::Args)]
pub struct GoArgs {
    /// For this user (id or username; needs sessions.modify) [default: you].
    #[arg(long, value_parser = parse_user_ref)]
    pub user: Option<UserRef>,
    #[command(flatten)]
    pub options: LaunchOptions,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Every user's sessions (sessions.view).
    #[arg(long)]
    pub all: bool,
    /// This user's sessions (id or username).
    #[arg(long, value_parser = parse_user_ref)]
    pub user: Option<UserRef>,
    /// Sessions of this workspace (id, image or name).
    #[arg(long, value_parser = parse_workspace_ref)]
    pub workspace: Option<WorkspaceRef>,
    /// Sessions on this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Sessions in this observed state.
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// Include deleted and failed sessions.
    #[arg(long)]
    pub include_ended: bool,
    /// Results per page (server default 50, at most 1000).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// Continue from a previous answer's next page token.
    #[arg(long, conflicts_with = "all_pages")]
    pub page_token: Option<String>,
    /// Follow next page tokens until the last page.
    #[arg(long)]
    pub all_pages: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    Requested,
    Starting,
    Running,
    Pausing,
    Paused,
    Stopping,
    Stopped,
    Deleting,
    Deleted,
    Failed,
    Lost,
}

impl From<StateArg> for ObservedState {
    fn from(state: StateArg) -> ObservedState {
        match state {
            StateArg::Requested => ObservedState::Requested,
            StateArg::Starting => ObservedState::Starting,
            StateArg::Running => ObservedState::Running,
            StateArg::Pausing => ObservedState::Pausing,
            StateArg::Paused => ObservedState::Paused,
            StateArg::Stopping => ObservedState::Stopping,
            StateArg::Stopped => ObservedState::Stopped,
            StateArg::Deleting => ObservedState::Deleting,
            StateArg::Deleted => ObservedState::Deleted,
            StateArg::Failed => ObservedState::Failed,
            StateArg::Lost => ObservedState::Lost,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["hook", "cmd"])))]
pub struct ExecArgs {
    #[command(flatten)]
    pub id: SessionId,
    /// The workspace's hook to run.
    #[arg(long, value_parser = ["first_launch", "go", "assign"])]
    pub hook: Option<String>,
    /// For the go hook: the URL to open (KASM_URL).
    #[arg(long, conflicts_with = "cmd", value_parser = parse_http_url)]
    pub url: Option<String>,
    /// A command to run instead (administrators), after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

pub async fn run(ctx: &mut Ctx, command: SessionCommand) -> CliResult {
    match command {
        SessionCommand::Launch(args) => launch(ctx, args).await,
        SessionCommand::List(args) => list(ctx, args).await,
        SessionCommand::Show(SessionId { id }) => {
            let session = get(ctx, &id).await?;
            show(ctx, &session);
            Ok(())
        }
        SessionCommand::Watch(SessionId { id }) => {
            let session = get(ctx, &id).await?;
            follow(ctx, session, Goal::End).await
        }
        SessionCommand::Keepalive(SessionId { id }) => {
            let request = SessionRef {
                session_id: id.clone(),
            };
            let answer = ctx
                .session(request, |mut c, r| async move { c.keepalive(r).await })
                .await?;
            if ctx.json() {
                print_json(&keepalive_json(&id, &answer));
            } else {
                println!("{}", keepalive_text(&id, &answer));
            }
            Ok(())
        }
        SessionCommand::Pause(SessionId { id }) => act(ctx, Action::Pause, id).await,
        SessionCommand::Stop(SessionId { id }) => act(ctx, Action::Stop, id).await,
        SessionCommand::Resume(SessionId { id }) => act(ctx, Action::Resume, id).await,
        SessionCommand::Delete { id, force: false } => act(ctx, Action::Delete, id.id).await,
        SessionCommand::Delete { id, force: true } => act(ctx, Action::ForceDelete, id.id).await,
        SessionCommand::Explain(SessionId { id }) => explain(ctx, id).await,
        SessionCommand::Exec(args) => exec(ctx, args).await,
        SessionCommand::Go(args) => go(ctx, args).await,
    }
}

async fn get(ctx: &mut Ctx, id: &str) -> CliResult<Session> {
    let request = GetSessionRequest {
        session_id: id.to_owned(),
    };
    ctx.session(request, |mut c, r| async move { c.get_session(r).await })
        .await
}

fn show(ctx: &Ctx, session: &Session) {
    if ctx.json() {
        print_json(&session_json(session));
    } else {
        print_fields(&session_fields(session));
    }
}

async fn launch(ctx: &mut Ctx, args: LaunchArgs) -> CliResult {
    let user_id = ctx.user_id_or_caller(args.user.as_ref()).await?;
    let workspace_id = launchable_workspace_id(ctx, &args.workspace, &user_id).await?;
    let request = RequestSessionRequest {
        user_id,
        workspace_id,
        options: Some(args.options.session_options()),
    };
    let session = ctx
        .session(
            request,
            |mut c, r| async move { c.request_session(r).await },
        )
        .await?;
    started(ctx, session, args.options.no_watch).await
}

async fn go(ctx: &mut Ctx, args: GoArgs) -> CliResult {
    let request = GoSessionRequest {
        user_id: ctx.user_id_or_caller(args.user.as_ref()).await?,
        options: Some(args.options.session_options()),
    };
    let session = ctx
        .session(request, |mut c, r| async move { c.go_session(r).await })
        .await?;
    started(ctx, session, args.options.no_watch).await
}

/// After a launch or go: the session as recorded, or followed until it runs.
async fn started(ctx: &mut Ctx, session: Session, no_watch: bool) -> CliResult {
    if no_watch {
        show(ctx, &session);
        return Ok(());
    }
    if !ctx.json() {
        println!("session {} ({})", session.id, session.image);
    }
    follow(ctx, session, Goal::Running).await
}

async fn list(ctx: &mut Ctx, args: ListArgs) -> CliResult {
    let user_id = ctx.user_id_or_caller(args.user.as_ref()).await?;
    let workspace_id = match &args.workspace {
        Some(w) => launchable_workspace_id(ctx, w, &user_id).await?,
        None => String::new(),
    };
    let mut pager = Pager::new(&PageArgs {
        page_size: args.page_size,
        page_token: args.page_token.clone(),
        all: args.all_pages,
    });
    let mut sessions = Vec::new();
    while let Some(page) = pager.next() {
        let request = list_request(&args, page, &user_id, &workspace_id);
        let answer = ctx
            .session(request, |mut c, r| async move { c.list_sessions(r).await })
            .await?;
        sessions.extend(answer.sessions);
        pager.advance(answer.page.as_ref())?;
    }
    if ctx.json() {
        print_json(&json!({
            "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
            "next_page_token": pager.next_token(),
        }));
        return Ok(());
    }
    session_table(&sessions).print();
    pager.hint();
    Ok(())
}

fn list_request(
    args: &ListArgs,
    page: PageRequest,
    user_id: &str,
    workspace_id: &str,
) -> ListSessionsRequest {
    ListSessionsRequest {
        page: Some(page),
        user_id: user_id.to_owned(),
        workspace_id: workspace_id.to_owned(),
        agent_id: args.agent.clone().unwrap_or_default(),
        observed_state: args.state.map_or(0, |s| ObservedState::from(s) as i32),
        all_users: args.all,
        include_ended: args.include_ended,
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Pause,
    Stop,
    Resume,
    Delete,
    ForceDelete,
}

async fn act(ctx: &mut Ctx, action: Action, id: String) -> CliResult {
    let request = SessionRef { session_id: id };
    let session = match action {
        Action::Pause => {
            ctx.session(request, |mut c, r| async move { c.pause(r).await })
                .await?
        }
        Action::Stop => {
            ctx.session(request, |mut c, r| async move { c.stop(r).await })
                .await?
        }
        Action::Resume => {
            ctx.session(request, |mut c, r| async move { c.resume(r).await })
                .await?
        }
        Action::Delete => {
            ctx.session(request, |mut c, r| async move { c.delete(r).await })
                .await?
        }
        Action::ForceDelete => {
            ctx.session(request, |mut c, r| async move { c.force_delete(r).await })
                .await?
        }
    };
    if ctx.json() {
        print_json(&session_json(&session));
        return Ok(());
    }
    let verb = match action {
        Action::Pause => "pause",
        Action::Stop => "stop",
        Action::Resume => "resume",
        Action::Delete => "delete",
        Action::ForceDelete => "forced delete",
    };
    println!("{}", action_line(verb, &session));
    Ok(())
}

async fn explain(ctx: &mut Ctx, id: String) -> CliResult {
    let request = SessionRef { session_id: id };
    let answer = ctx
        .session(
            request,
            |mut c, r| async move { c.explain_session(r).await },
        )
        .await?;
    if ctx.json() {
        print_json(&explanation_json(&answer));
        return Ok(());
    }
    print_fields(&explanation_fields(&answer));
    if !answer.reasons.is_empty() {
        println!("why:");
        for reason in &answer.reasons {
            println!("  - {reason}");
        }
    }
    Ok(())
}

fn exec_request(args: ExecArgs) -> ExecRequest {
    ExecRequest {
        session_id: args.id.id,
        hook: args.hook.unwrap_or_default(),
        cmd: args.cmd,
        url: args.url.unwrap_or_default(),
    }
}

/// Prints what the command wrote; a non-zero exit code is an error (exit 1) that names it.
async fn exec(ctx: &mut Ctx, args: ExecArgs) -> CliResult {
    let request = exec_request(args);
    let what = if request.hook.is_empty() {
        format!("{:?}", request.cmd.join(" "))
    } else {
        format!("the {} hook", request.hook)
    };
    let answer = ctx
        .session(request, |mut c, r| async move { c.exec(r).await })
        .await?;
    if ctx.json() {
        print_json(&json!({ "exit_code": answer.exit_code, "output": answer.output }));
    } else {
        print!("{}", answer.output);
        if !answer.output.is_empty() && !answer.output.ends_with('\n') {
            println!();
        }
    }
    if answer.exit_code != 0 {
        return Err(CliError::Status(tonic::Status::aborted(format!(
            "{what} exited with code {}",
            answer.exit_code
        ))));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
