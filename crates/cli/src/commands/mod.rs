//! Command handlers: each parses nothing itself (clap did), calls the identity service through
//! [`Identity`] (or the policy service through [`Ctx::policy`], the session-manager through
//! [`Ctx::session`], billing-usage through [`Ctx::usage`]) and prints the answer in the chosen
//! [`Format`].

pub mod agent;
pub mod apikey;
pub mod audit;
pub mod group;
pub mod image;
pub mod login;
pub mod placement;
pub mod policy;
pub mod session;
pub mod setting;
pub mod sshkey;
pub mod twofa;
pub mod usage;
pub mod user;
mod user_edit;
mod user_ops;
pub mod workspace;

use std::future::Future;

use atrium_proto::common::v1::{PageRequest, PageResponse};
use atrium_proto::identity::v1::{GetUserRequest, User};
use atrium_proto::policy::v1::{GetGroupRequest, Group};

use crate::args::{GroupRef, UserRef};
use crate::cli::{Command, GlobalArgs};
use crate::client::{Identity, Lazy, PolicyClient, SessionClient, UsageClient};
use crate::error::{CliError, CliResult, usage};
use crate::output::Format;
use crate::prompt::Prompter;

/// What every handler gets: the output format, the clients, the prompter.
#[derive(Debug)]
pub struct Ctx {
    pub format: Format,
    /// The identity service, and the caller's credential for every service.
    pub identity: Identity,
    /// The policy service (`--policy-endpoint`), dialled at its first call.
    pub policy_conn: Lazy,
    /// The session-manager (`--session-endpoint`), dialled at its first call.
    pub session_conn: Lazy,
    /// Billing-usage (`--usage-endpoint`), dialled at its first call.
    pub usage_conn: Lazy,
    pub prompt: Prompter,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Fetches a user by id or username.
    pub async fn get_user(&mut self, user: &UserRef) -> CliResult<User> {
        let request = GetUserRequest {
            key: Some(user.key()),
        };
        self.identity
            .call(request, |mut c, r| async move { c.get_user(r).await })
            .await
    }

    /// The id of a user named by id or username (a username costs one GetUser).
    pub async fn user_id(&mut self, user: &UserRef) -> CliResult<String> {
        match user {
            UserRef::Id(id) => Ok(id.clone()),
            UserRef::Username(_) => Ok(self.get_user(user).await?.id),
        }
    }

    /// The id of a user, or "" (the caller, for the calls that accept it) when none is given.
    pub async fn user_id_or_caller(&mut self, user: Option<&UserRef>) -> CliResult<String> {
        match user {
            Some(user) => self.user_id(user).await,
            None => Ok(String::new()),
        }
    }

    /// Makes one policy call with the caller's credential (refreshed against identity):
    /// `ctx.policy(req, |mut c, r| async move { c.get_group(r).await })`.
    pub async fn policy<Req, T, F, Fut>(&mut self, request: Req, f: F) -> CliResult<T>
    where
        Req: Clone,
        F: Fn(PolicyClient, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.identity
            .call_policy(&mut self.policy_conn, request, f)
            .await
    }

    /// Makes one session-manager call with the caller's credential (refreshed against
    /// identity): `ctx.session(req, |mut c, r| async move { c.get_session(r).await })`.
    pub async fn session<Req, T, F, Fut>(&mut self, request: Req, f: F) -> CliResult<T>
    where
        Req: Clone,
        F: Fn(SessionClient, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.identity
            .call_session(&mut self.session_conn, request, f)
            .await
    }

    /// Makes one billing-usage call with the caller's credential (refreshed against identity):
    /// `ctx.usage(req, |mut c, r| async move { c.check_usage(r).await })`.
    pub async fn usage<Req, T, F, Fut>(&mut self, request: Req, f: F) -> CliResult<T>
    where
        Req: Clone,
        F: Fn(UsageClient, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.identity
            .call_usage(&mut self.usage_conn, request, f)
            .await
    }

    /// Fetches a group by id or name.
    pub async fn get_group(&mut self, group: &GroupRef) -> CliResult<Group> {
        let request = GetGroupRequest {
            key: Some(group.key()),
        };
        self.policy(request, |mut c, r| async move { c.get_group(r).await })
            .await
    }

    /// The id of a group named by id or name (a name costs one GetGroup).
    pub async fn group_id(&mut self, group: &GroupRef) -> CliResult<String> {
        match group {
            GroupRef::Id(id) => Ok(id.clone()),
            GroupRef::Name(_) => Ok(self.get_group(group).await?.id),
        }
    }
}

/// Runs every command but `up`.
pub async fn run(global: &GlobalArgs, command: Command) -> CliResult {
    let use_stored = !matches!(command, Command::Login(_));
    // Policy, session and usage commands dial identity only when they need it (a username, a
    // refresh), so they work with --token against a policy service, a session-manager or
    // billing-usage alone.
    let policy_command = matches!(
        command,
        Command::Group(_)
            | Command::Setting(_)
            | Command::Policy(_)
            | Command::Workspace(_)
            | Command::Session(_)
            | Command::Placement(_)
            | Command::Usage(_)
    );
    let identity = if policy_command {
        Identity::prepare(global, use_stored)?
    } else {
        Identity::connect(global, use_stored).await?
    };
    let mut ctx = Ctx {
        format: global.output,
        identity,
        policy_conn: Lazy::new(global.policy_endpoint.clone(), "--policy-endpoint"),
        session_conn: Lazy::new(global.session_endpoint.clone(), "--session-endpoint"),
        usage_conn: Lazy::new(global.usage_endpoint.clone(), "--usage-endpoint"),
        prompt: Prompter::new(),
    };
    match command {
        Command::Login(args) => login::login(&mut ctx, args).await,
        Command::Logout(args) => login::logout(&mut ctx, args).await,
        Command::Whoami => login::whoami(&mut ctx).await,
        Command::User(cmd) => user::run(&mut ctx, cmd).await,
        Command::Apikey(cmd) => apikey::run(&mut ctx, cmd).await,
        Command::TwoFa(cmd) => twofa::run(&mut ctx, cmd).await,
        Command::Audit(cmd) => audit::run(&mut ctx, cmd).await,
        Command::SshKey(cmd) => sshkey::run(&mut ctx, cmd).await,
        Command::Group(cmd) => group::run(&mut ctx, cmd).await,
        Command::Setting(cmd) => setting::run(&mut ctx, cmd).await,
        Command::Policy(cmd) => policy::run(&mut ctx, cmd).await,
        Command::Workspace(cmd) => workspace::run(&mut ctx, cmd).await,
        Command::Session(cmd) => session::run(&mut ctx, cmd).await,
        Command::Placement(cmd) => placement::run(&mut ctx, cmd).await,
        Command::Usage(cmd) => usage::run(&mut ctx, cmd).await,
        Command::Up(_) => Err(CliError::Usage("`up` does not connect to a server".into())),
        Command::Image(_) => Err(CliError::Usage(
            "`image` does not connect to a server".into(),
        )),
        Command::Agent(_) => Err(CliError::Usage(
            "`agent` does not use the identity service".into(),
        )),
    }
}

/// Paging flags shared by the list commands.
#[derive(Debug, Clone, clap::Args)]
pub struct PageArgs {
    /// Results per page (server default 50, at most 1000).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// Continue from a previous answer's next page token.
    #[arg(long, conflicts_with = "all")]
    pub page_token: Option<String>,
    /// Follow next page tokens until the last page.
    #[arg(long)]
    pub all: bool,
}

/// Walks pages: `while let Some(page) = pager.next() { ...; pager.advance(resp.page)?; }`.
#[derive(Debug)]
pub struct Pager {
    size: u32,
    token: String,
    all: bool,
    done: bool,
}

impl Pager {
    pub fn new(args: &PageArgs) -> Self {
        Self {
            size: args.page_size.unwrap_or(0),
            token: args.page_token.clone().unwrap_or_default(),
            all: args.all,
            done: false,
        }
    }

    /// The next page to ask for, or `None` when done.
    pub fn next(&self) -> Option<PageRequest> {
        (!self.done).then(|| PageRequest {
            page_size: self.size,
            page_token: self.token.clone(),
        })
    }

    /// Records an answer's page; refuses a server that hands back the token it was given.
    pub fn advance(&mut self, page: Option<&PageResponse>) -> CliResult {
        let next = page.map(|p| p.next_page_token.clone()).unwrap_or_default();
        if self.all && !next.is_empty() && next == self.token {
            return Err(CliError::Local(anyhow::anyhow!(
                "the server returned the same page token twice; stopping"
            )));
        }
        self.done = !self.all || next.is_empty();
        self.token = next;
        Ok(())
    }

    /// The token for the page after the last one fetched ("" when there is none).
    pub fn next_token(&self) -> &str {
        &self.token
    }

    /// Tells a person how to get the next page (tables only; JSON carries `next_page_token`).
    pub fn hint(&self) {
        if !self.all && !self.token.is_empty() {
            eprintln!("more results: --page-token {} (or --all)", self.token);
        }
    }
}

/// Refuses a command that was given nothing to do.
pub fn require_some(any: bool, what: &str) -> CliResult {
    if any {
        Ok(())
    } else {
        Err(usage(what.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(token: &str) -> PageResponse {
        PageResponse {
            next_page_token: token.into(),
        }
    }

    #[test]
    fn a_single_page_stops_after_one_answer_and_keeps_the_token() {
        let mut pager = Pager::new(&PageArgs {
            page_size: Some(10),
            page_token: None,
            all: false,
        });
        assert_eq!(pager.next().map(|p| p.page_size), Some(10));
        pager.advance(Some(&page("t2"))).expect("advance");
        assert!(pager.next().is_none());
        assert_eq!(pager.next_token(), "t2");
    }

    #[test]
    fn all_follows_tokens_to_the_end() {
        let mut pager = Pager::new(&PageArgs {
            page_size: None,
            page_token: None,
            all: true,
        });
        let mut asked = Vec::new();
        let answers = ["t2", "t3", ""];
        let mut i = 0;
        while let Some(p) = pager.next() {
            asked.push(p.page_token);
            pager.advance(Some(&page(answers[i]))).expect("advance");
            i += 1;
        }
        assert_eq!(asked, vec!["", "t2", "t3"]);
    }

    #[test]
    fn all_refuses_a_repeated_token() {
        let mut pager = Pager::new(&PageArgs {
            page_size: None,
            page_token: None,
            all: true,
        });
        pager.advance(Some(&page("t2"))).expect("advance");
        assert!(pager.advance(Some(&page("t2"))).is_err());
    }
}
