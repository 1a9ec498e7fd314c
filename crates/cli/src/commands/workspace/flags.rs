//! The flags that set a workspace's fields (`atrium workspace create` and `update`). Their
//! values are checked by the parsers in `values` while clap parses the command line, so bad
//! input is refused with the flag named before any call; what needs the current workspace (a
//! hook edited without a command, require_gpu without GPUs) is checked in `edit`.
//! Conventions: a text flag given as `''` clears the field; a repeatable flag replaces the
//! whole list, and its `--no-...` twin empties it.

use atrium_proto::policy::v1::{ExecConfig, VolumeMapping};

use super::values::{
    non_empty_zone, parse_cores, parse_exec_config, parse_memory, parse_profile_path,
    parse_run_config, parse_time_limit, parse_url, parse_volume, parse_workdir,
};
use crate::args::parse_env_pair;

/// The fields `create` and `update` both set (booleans differ: see their own arguments).
#[derive(Debug, Default, clap::Args)]
pub struct FieldArgs {
    /// The name users see ('' for the image).
    #[arg(long)]
    pub name: Option<String>,
    /// What users read about it.
    #[arg(long)]
    pub description: Option<String>,
    /// A category; repeat for several (replaces the list).
    #[arg(long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
    /// Remove every category.
    #[arg(long, conflicts_with = "categories")]
    pub no_categories: bool,
    /// CPU cores, fractions allowed [create's default: the service's, 2].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_cores)]
    pub cores: Option<f64>,
    /// Memory in MiB [create's default: the service's, 2768].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_memory)]
    pub memory_mib: Option<i64>,
    /// GPUs the session gets.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub gpus: Option<u32>,
    /// Seconds (`3600`) or a duration (`1h30m`); `0` is a limit of zero, not "no limit".
    #[arg(
        long,
        value_name = "DURATION",
        allow_negative_numbers = true,
        value_parser = parse_time_limit
    )]
    pub session_time_limit: Option<i64>,
    /// No workspace time limit (the group settings decide).
    #[arg(long, conflicts_with = "session_time_limit")]
    pub no_session_time_limit: bool,
    /// The zone sessions are placed in (id or name).
    #[arg(long, value_name = "ZONE", value_parser = non_empty_zone)]
    pub zone: Option<String>,
    /// Any zone.
    #[arg(long, conflicts_with = "zone")]
    pub no_zone: bool,
    /// An http(s) URL of the picture users see ('' for none).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub thumbnail_url: Option<String>,
    #[command(flatten)]
    pub host: HostArgs,
}

/// The fields that touch the host: only administrators see or change them.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Host access (administrators only)")]
pub struct HostArgs {
    /// docker-run parameters as a JSON object, inline or from @FILE ('{}' for none).
    #[arg(long, value_name = "JSON|@FILE", value_parser = parse_run_config)]
    pub run_config: Option<String>,
    /// Every exec hook as JSON, inline or from @FILE: {"first_launch": {"cmd": ..., "user": ...,
    /// "environment": {...}, "workdir": ..., "privileged": false}, "go": ..., "assign": ...}
    /// ('{}' for none). The --exec-HOOK-* flags then edit the result.
    #[arg(long, value_name = "JSON|@FILE", value_parser = parse_exec_config)]
    pub exec_config: Option<ExecConfig>,
    #[command(flatten)]
    pub first_launch: FirstLaunchArgs,
    #[command(flatten)]
    pub go: GoArgs,
    #[command(flatten)]
    pub assign: AssignArgs,
    /// A bind mount; repeat for several (replaces the list). The mode defaults to rw.
    #[arg(long = "volume", value_name = "HOST:CONTAINER[:ro|rw]", value_parser = parse_volume)]
    pub volumes: Vec<VolumeMapping>,
    /// Remove every volume mapping.
    #[arg(long, conflicts_with = "volumes")]
    pub no_volumes: bool,
    /// Where the profile persists, with {username} or {user_id} ('' for none).
    #[arg(long, value_name = "PATH", value_parser = parse_profile_path)]
    pub persistent_profile_path: Option<String>,
}

impl HostArgs {
    /// The first host-access flag given, if any (for the error when host access is withheld).
    pub fn first_given(&self) -> Option<&'static str> {
        let hooks = [
            ("--exec-first-launch-*", self.first_launch.edit().given()),
            ("--exec-go-*", self.go.edit().given()),
            ("--exec-assign-*", self.assign.edit().given()),
        ];
        if self.run_config.is_some() {
            Some("--run-config")
        } else if self.exec_config.is_some() {
            Some("--exec-config")
        } else if let Some((flag, _)) = hooks.iter().find(|(_, given)| *given) {
            Some(flag)
        } else if !self.volumes.is_empty() || self.no_volumes {
            Some("--volume")
        } else if self.persistent_profile_path.is_some() {
            Some("--persistent-profile-path")
        } else {
            None
        }
    }
}

/// What the `--exec-HOOK-*` flags of one hook ask for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HookEdit {
    /// `first-launch`, `go` or `assign`, as in the flags.
    pub flag: &'static str,
    pub remove: bool,
    pub cmd: Option<String>,
    pub user: Option<String>,
    /// The new environment (empty with `--exec-HOOK-no-env`).
    pub environment: Option<Vec<(String, String)>>,
    pub workdir: Option<String>,
    pub privileged: Option<bool>,
}

impl HookEdit {
    pub fn given(&self) -> bool {
        self.remove
            || self.cmd.is_some()
            || self.user.is_some()
            || self.environment.is_some()
            || self.workdir.is_some()
            || self.privileged.is_some()
    }
}

/// The flags of one exec hook (clap cannot prefix a flattened struct, hence one per hook).
macro_rules! hook_args {
    ($name:ident, $hook:literal) => {
        #[derive(Debug, Default, Clone, clap::Args)]
        pub struct $name {
            #[arg(
                long = concat!("exec-", $hook, "-cmd"),
                id = concat!("exec-", $hook, "-cmd"),
                value_name = "CMD",
                help = concat!("The ", $hook, " hook's command (the hook is created if missing)")
            )]
            cmd: Option<String>,
            #[arg(
                long = concat!("exec-", $hook, "-user"),
                id = concat!("exec-", $hook, "-user"),
                value_name = "USER",
                help = concat!("The user the ", $hook, " hook runs as ('' for the image's)")
            )]
            user: Option<String>,
            #[arg(
                long = concat!("exec-", $hook, "-env"),
                id = concat!("exec-", $hook, "-env"),
                value_name = "NAME=VALUE",
                value_parser = parse_env_pair,
                help = concat!("An environment variable of the ", $hook, " hook; repeat for several (replaces them)")
            )]
            env: Vec<(String, String)>,
            #[arg(
                long = concat!("exec-", $hook, "-no-env"),
                id = concat!("exec-", $hook, "-no-env"),
                conflicts_with = concat!("exec-", $hook, "-env"),
                help = concat!("Remove the ", $hook, " hook's environment")
            )]
            no_env: bool,
            #[arg(
                long = concat!("exec-", $hook, "-workdir"),
                id = concat!("exec-", $hook, "-workdir"),
                value_name = "DIR",
                value_parser = parse_workdir,
                help = concat!("The directory the ", $hook, " hook runs in ('' for the image's)")
            )]
            workdir: Option<String>,
            #[arg(
                long = concat!("exec-", $hook, "-privileged"),
                id = concat!("exec-", $hook, "-privileged"),
                value_name = "true|false",
                help = concat!("Whether the ", $hook, " hook runs privileged")
            )]
            privileged: Option<bool>,
            #[arg(
                long = concat!("no-exec-", $hook),
                id = concat!("no-exec-", $hook),
                conflicts_with_all = [
                    concat!("exec-", $hook, "-cmd"),
                    concat!("exec-", $hook, "-user"),
                    concat!("exec-", $hook, "-env"),
                    concat!("exec-", $hook, "-no-env"),
                    concat!("exec-", $hook, "-workdir"),
                    concat!("exec-", $hook, "-privileged"),
                ],
                help = concat!("Remove the ", $hook, " hook")
            )]
            remove: bool,
        }

        impl $name {
            pub fn edit(&self) -> HookEdit {
                HookEdit {
                    flag: $hook,
                    remove: self.remove,
                    cmd: self.cmd.clone(),
                    user: self.user.clone(),
                    environment: if self.no_env {
                        Some(Vec::new())
                    } else if self.env.is_empty() {
                        None
                    } else {
                        Some(self.env.clone())
                    },
                    workdir: self.workdir.clone(),
                    privileged: self.privileged,
                }
            }
        }
    };
}

hook_args!(FirstLaunchArgs, "first-launch");
hook_args!(GoArgs, "go");
hook_args!(AssignArgs, "assign");
