//! The command tree: global flags and the top-level commands (each command's own arguments
//! live beside its handler in `commands/`).

use std::path::PathBuf;

use atrium_service_kit::auth::Credential;
use clap::{Parser, Subcommand};

use crate::commands::agent::AgentArgs;
use crate::commands::apikey::ApikeyCommand;
use crate::commands::audit::AuditCommand;
use crate::commands::group::GroupCommand;
use crate::commands::image::ImageCommand;
use crate::commands::login::{LoginArgs, LogoutArgs};
use crate::commands::placement::PlacementCommand;
use crate::commands::policy::PolicyCommand;
use crate::commands::session::SessionCommand;
use crate::commands::setting::SettingCommand;
use crate::commands::sshkey::SshKeyCommand;
use crate::commands::twofa::TwoFaCommand;
use crate::commands::usage::UsageCommand;
use crate::commands::user::UserCommand;
use crate::commands::workspace::WorkspaceCommand;
use crate::output::Format;
use crate::up::UpArgs;

/// The identity gRPC address used when neither `--endpoint` nor a login names one.
pub const DEFAULT_ENDPOINT: &str = "https://127.0.0.1:7001";

/// The policy gRPC address used when `--policy-endpoint` is not given.
pub const DEFAULT_POLICY_ENDPOINT: &str = "https://127.0.0.1:7002";

/// The session-manager's gRPC address used when `--session-endpoint` is not given.
pub const DEFAULT_SESSION_ENDPOINT: &str = "https://127.0.0.1:7003";

/// The agent's gRPC address used when `--agent-endpoint` is not given (`atrium up`'s).
pub const DEFAULT_AGENT_ENDPOINT: &str = "https://127.0.0.1:7004";

/// Billing-usage's gRPC address used when `--usage-endpoint` is not given.
pub const DEFAULT_USAGE_ENDPOINT: &str = "https://127.0.0.1:7005";

/// Atrium: administer users, API keys, login sessions, groups, settings, permissions,
/// workspaces, sessions and usage, or run every service (`atrium up`).
#[derive(Debug, Parser)]
#[command(name = "atrium", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// The identity service's gRPC address [default: the one `atrium login` stored, else
    /// https://127.0.0.1:7001].
    #[arg(long, global = true, env = "ATRIUM_ENDPOINT")]
    pub endpoint: Option<String>,

    /// The policy service's gRPC address (group, setting, policy and workspace commands; they
    /// call with the same credential, refreshed against identity).
    #[arg(long, global = true, env = "ATRIUM_POLICY_ENDPOINT", default_value = DEFAULT_POLICY_ENDPOINT)]
    pub policy_endpoint: String,

    /// The session-manager's gRPC address (session and placement commands; they call with the
    /// same credential, refreshed against identity).
    #[arg(long, global = true, env = "ATRIUM_SESSION_ENDPOINT", default_value = DEFAULT_SESSION_ENDPOINT)]
    pub session_endpoint: String,

    /// Billing-usage's gRPC address (usage commands; they call with the same credential,
    /// refreshed against identity).
    #[arg(long, global = true, env = "ATRIUM_USAGE_ENDPOINT", default_value = DEFAULT_USAGE_ENDPOINT)]
    pub usage_endpoint: String,

    /// A node agent's gRPC address (agent commands; they call with your login, which needs
    /// agents.view, or agents.modify to drain).
    #[arg(long, global = true, env = "ATRIUM_AGENT_ENDPOINT", default_value = DEFAULT_AGENT_ENDPOINT)]
    pub agent_endpoint: String,

    /// How results are printed.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// An access token to call with (instead of the stored login).
    #[arg(long, global = true, env = "ATRIUM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// An API key to call with, as ID:SECRET (instead of the stored login; --token wins).
    #[arg(
        long,
        global = true,
        env = "ATRIUM_API_KEY",
        hide_env_values = true,
        value_name = "ID:SECRET",
        value_parser = crate::args::parse_api_key
    )]
    pub api_key: Option<Credential>,

    /// The CA certificate (PEM) that the services' TLS certificates chain to [default:
    /// `tls/ca.pem` under ATRIUM_DATA_DIR or ./.atrium, where `atrium up` makes it].
    #[arg(long, global = true, env = "ATRIUM_CA")]
    pub ca: Option<PathBuf>,

    /// Where `atrium login` keeps credentials.json [default: ~/.config/atrium].
    #[arg(long, global = true, env = "ATRIUM_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only add noise"
)]
pub enum Command {
    /// Log in and store the tokens (handles 2FA, forced password change and 2FA enrolment).
    Login(LoginArgs),
    /// End the stored login session (or every session of a user) and forget the tokens.
    Logout(LogoutArgs),
    /// Show who the server thinks the caller is.
    Whoami,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Two-factor authentication (TOTP) for the logged-in user.
    #[command(name = "2fa", subcommand)]
    TwoFa(TwoFaCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Users' SSH key pairs.
    #[command(name = "ssh-key", subcommand)]
    SshKey(SshKeyCommand),
    /// Manage groups: members, permissions (settings: `atrium setting`).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Group settings and the settings catalogue.
    #[command(subcommand)]
    Setting(SettingCommand),
    /// A user's effective policy: settings with where they came from, permissions.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage workspaces (Kasm's images) and their assignment to groups.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Sessions: launch, follow, keep alive, pause, stop, resume, delete, explain, exec.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Where a workspace's session would be placed, and why each agent was or was not chosen.
    #[command(subcommand)]
    Placement(PlacementCommand),
    /// Session time: a user's usage_limit and what is left of it, reports with costs, and
    /// the cost rates of workspaces (billing-usage).
    #[command(subcommand)]
    Usage(UsageCommand),
    /// Run every service in one process.
    Up(UpArgs),
    /// Container images: build the demo workspace image.
    #[command(subcommand)]
    Image(ImageCommand),
    /// A node agent: its status and the session containers it holds (needs agents.view).
    Agent(AgentArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "atrium",
            "user",
            "list",
            "--output",
            "json",
            "--endpoint",
            "http://h:1",
        ])
        .expect("parse");
        assert_eq!(cli.global.output, Format::Json);
        assert_eq!(cli.global.endpoint.as_deref(), Some("http://h:1"));
    }

    #[test]
    fn api_keys_need_id_and_secret() {
        let cli =
            Cli::try_parse_from(["atrium", "--api-key", "k1:s3cret", "whoami"]).expect("parse");
        assert_eq!(
            cli.global.api_key,
            Some(Credential::ApiKey {
                id: "k1".into(),
                secret: "s3cret".into()
            })
        );
        assert!(Cli::try_parse_from(["atrium", "--api-key", "nosecret", "whoami"]).is_err());
    }

    #[test]
    fn the_policy_endpoint_has_a_default_and_a_flag() {
        let cli = Cli::try_parse_from(["atrium", "group", "list"]).expect("parse");
        // The environment may set it; only check the flag wins.
        assert!(!cli.global.policy_endpoint.is_empty());
        let cli =
            Cli::try_parse_from(["atrium", "group", "list", "--policy-endpoint", "http://p:2"])
                .expect("parse");
        assert_eq!(cli.global.policy_endpoint, "http://p:2");
    }

    #[test]
    fn the_session_endpoint_has_a_default_and_a_flag() {
        let cli = Cli::try_parse_from(["atrium", "session", "list"]).expect("parse");
        // The environment may set it; only check the flag wins.
        assert!(!cli.global.session_endpoint.is_empty());
        let cli = Cli::try_parse_from([
            "atrium",
            "session",
            "list",
            "--session-endpoint",
            "http://s:3",
        ])
        .expect("parse");
        assert_eq!(cli.global.session_endpoint, "http://s:3");
    }

    #[test]
    fn up_has_its_defaults() {
        let cli = Cli::try_parse_from(["atrium", "up"]).expect("parse");
        let Command::Up(args) = cli.command else {
            panic!("expected up");
        };
        assert_eq!(args.identity_port, 7001);
        assert_eq!(args.billing_usage_port, 7005);
        assert_eq!(args.listen_host, "127.0.0.1");
        let cli =
            Cli::try_parse_from(["atrium", "up", "--timezone", "Europe/Berlin"]).expect("parse");
        let Command::Up(args) = cli.command else {
            panic!("expected up");
        };
        assert_eq!(args.timezone, "Europe/Berlin");
        let error = Cli::try_parse_from(["atrium", "up", "--timezone", "Mars/Olympus"])
            .expect_err("not a timezone")
            .to_string();
        assert!(error.contains("--timezone"), "{error}");
    }

    #[test]
    fn the_usage_endpoint_has_a_default_and_a_flag() {
        let cli = Cli::try_parse_from(["atrium", "usage", "rate", "list"]).expect("parse");
        assert!(!cli.global.usage_endpoint.is_empty());
        let cli = Cli::try_parse_from([
            "atrium",
            "usage",
            "rate",
            "list",
            "--usage-endpoint",
            "http://u:5",
        ])
        .expect("parse");
        assert_eq!(cli.global.usage_endpoint, "http://u:5");
    }
}
