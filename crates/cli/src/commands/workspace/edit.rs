//! `atrium workspace create` and `atrium workspace update`. UpdateWorkspace replaces the whole
//! workspace, so update reads it, changes only the fields given and sends all of it back
//! (with `host_access_withheld` as read, so a caller who cannot see the host-access fields
//! keeps them; such a caller asking to change one is refused before the call).

use atrium_proto::policy::v1::{
    CreateWorkspaceRequest, ExecHook, ListZonesRequest, UpdateWorkspaceRequest, Workspace, Zone,
};

use super::find::get_workspace;
use super::flags::{FieldArgs, HookEdit};
use super::show::show;
use crate::args::{WorkspaceRef, parse_workspace_ref};
use crate::commands::{Ctx, require_some};
use crate::error::{CliError, CliResult, usage};

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The Docker image, e.g. kasmweb/chrome:1.16.0.
    #[arg(long, value_parser = non_empty_image)]
    pub image: String,
    /// Create it disabled (nobody can launch it until it is enabled).
    #[arg(long)]
    pub disabled: bool,
    /// Hide it from the users' list of workspaces.
    #[arg(long)]
    pub hidden: bool,
    /// Place it only on agents with a GPU (needs --gpus).
    #[arg(long)]
    pub require_gpu: bool,
    /// Do not assign it to All Users, whatever the service does by default.
    #[arg(long)]
    pub no_default_group: bool,
    // Last: its host-access heading applies to every flag after it.
    #[command(flatten)]
    pub fields: FieldArgs,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The workspace (id, image or name).
    #[arg(value_parser = parse_workspace_ref)]
    pub workspace: WorkspaceRef,
    /// A new Docker image.
    #[arg(long, value_parser = non_empty_image)]
    pub image: Option<String>,
    /// Whether users may launch it.
    #[arg(long, value_name = "true|false")]
    pub enabled: Option<bool>,
    /// Whether it is hidden from the users' list of workspaces.
    #[arg(long, value_name = "true|false")]
    pub hidden: Option<bool>,
    /// Place it only on agents with a GPU (needs GPUs).
    #[arg(long, value_name = "true|false")]
    pub require_gpu: Option<bool>,
    // Last: its host-access heading applies to every flag after it.
    #[command(flatten)]
    pub fields: FieldArgs,
}

fn non_empty_image(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("an image reference is required, e.g. kasmweb/chrome:1.16.0".into());
    }
    Ok(value.to_owned())
}

impl FieldArgs {
    fn any(&self) -> bool {
        let h = &self.host;
        self.name.is_some()
            || self.description.is_some()
            || !self.categories.is_empty()
            || self.no_categories
            || self.cores.is_some()
            || self.memory_mib.is_some()
            || self.gpus.is_some()
            || self.session_time_limit.is_some()
            || self.no_session_time_limit
            || self.zone.is_some()
            || self.no_zone
            || self.thumbnail_url.is_some()
            || h.first_given().is_some()
    }
}

pub async fn create(ctx: &mut Ctx, args: CreateArgs) -> CliResult {
    let zone_id = zone_change(ctx, &args.fields).await?;
    let request = create_request(args, zone_id)?;
    let workspace = ctx
        .policy(
            request,
            |mut c, r| async move { c.create_workspace(r).await },
        )
        .await?;
    show(ctx, &workspace);
    Ok(())
}

/// The create request; zero cores or memory ask for the service's defaults.
fn create_request(args: CreateArgs, zone_id: Option<String>) -> CliResult<CreateWorkspaceRequest> {
    let mut workspace = Workspace {
        name: args.image,
        enabled: !args.disabled,
        hidden: args.hidden,
        require_gpu: args.require_gpu,
        ..Default::default()
    };
    apply(&args.fields, zone_id, &mut workspace)?;
    check(&workspace)?;
    Ok(CreateWorkspaceRequest {
        workspace: Some(workspace),
        assign_to_all_users: args.no_default_group.then_some(false),
    })
}

pub async fn update(ctx: &mut Ctx, args: UpdateArgs) -> CliResult {
    require_some(
        args.image.is_some()
            || args.fields.any()
            || args.enabled.is_some()
            || args.hidden.is_some()
            || args.require_gpu.is_some(),
        "nothing to update: give at least one field, e.g. --cores 2",
    )?;
    let current = get_workspace(ctx, &args.workspace).await?;
    if current.host_access_withheld
        && let Some(flag) = args.fields.host.first_given()
    {
        return Err(CliError::Status(tonic::Status::permission_denied(format!(
            "{flag}: only administrators see or change a workspace's run config, exec hooks, \
             volume mappings and persistent profile path"
        ))));
    }
    let zone_id = zone_change(ctx, &args.fields).await?;
    let workspace = updated(current, &args, zone_id)?;
    let request = UpdateWorkspaceRequest {
        workspace: Some(workspace),
    };
    let workspace = ctx
        .policy(
            request,
            |mut c, r| async move { c.update_workspace(r).await },
        )
        .await?;
    show(ctx, &workspace);
    Ok(())
}

/// The workspace to send back: `current` with the fields given changed.
fn updated(
    mut workspace: Workspace,
    args: &UpdateArgs,
    zone_id: Option<String>,
) -> CliResult<Workspace> {
    if let Some(image) = &args.image {
        workspace.name = image.clone();
    }
    if let Some(enabled) = args.enabled {
        workspace.enabled = enabled;
    }
    if let Some(hidden) = args.hidden {
        workspace.hidden = hidden;
    }
    if let Some(require_gpu) = args.require_gpu {
        workspace.require_gpu = require_gpu;
    }
    apply(&args.fields, zone_id, &mut workspace)?;
    check(&workspace)?;
    Ok(workspace)
}

/// The rules across fields, checked before the call so the error names a flag.
fn check(w: &Workspace) -> CliResult {
    if w.require_gpu && w.gpu_count == 0 {
        return Err(usage(
            "--require-gpu: needs at least one GPU; give --gpus N as well",
        ));
    }
    Ok(())
}

/// The zone id to set ("" for any zone), when --zone or --no-zone is given: an id as it is, a
/// name looked up among the zones.
async fn zone_change(ctx: &mut Ctx, fields: &FieldArgs) -> CliResult<Option<String>> {
    if fields.no_zone {
        return Ok(Some(String::new()));
    }
    let Some(zone) = &fields.zone else {
        return Ok(None);
    };
    if uuid::Uuid::parse_str(zone).is_ok() {
        return Ok(Some(zone.clone()));
    }
    let zones = ctx
        .policy(ListZonesRequest {}, |mut c, r| async move {
            c.list_zones(r).await
        })
        .await?
        .zones;
    find_zone(&zones, zone).map(Some)
}

fn find_zone(zones: &[Zone], name: &str) -> CliResult<String> {
    let found: Vec<&Zone> = zones.iter().filter(|z| z.name == name).collect();
    match found.as_slice() {
        [zone] => Ok(zone.id.clone()),
        [] => {
            let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
            Err(usage(format!(
                "--zone: no zone is named {name:?} (zones: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )))
        }
        _ => Err(usage(format!(
            "--zone: several zones are named {name:?}; give its id"
        ))),
    }
}

/// Sets the fields given in `f` on `w` (`zone_id` already resolved); pure.
fn apply(f: &FieldArgs, zone_id: Option<String>, w: &mut Workspace) -> CliResult {
    if let Some(name) = &f.name {
        w.friendly_name = name.clone();
    }
    if let Some(description) = &f.description {
        w.description = description.clone();
    }
    if f.no_categories {
        w.categories.clear();
    } else if !f.categories.is_empty() {
        w.categories = f.categories.clone();
    }
    if let Some(cores) = f.cores {
        w.cores = cores;
    }
    if let Some(memory) = f.memory_mib {
        w.memory_mib = memory;
    }
    if let Some(gpus) = f.gpus {
        w.gpu_count = gpus;
    }
    if f.no_session_time_limit {
        w.session_time_limit_secs = None;
    } else if let Some(limit) = f.session_time_limit {
        w.session_time_limit_secs = Some(limit);
    }
    if let Some(zone_id) = zone_id {
        w.zone_id = zone_id;
    }
    if let Some(url) = &f.thumbnail_url {
        w.thumbnail_url = url.clone();
    }
    let h = &f.host;
    if let Some(run_config) = &h.run_config {
        w.run_config_json = run_config.clone();
    }
    if let Some(exec) = &h.exec_config {
        w.exec_config = Some(exec.clone());
    }
    let mut exec = w.exec_config.take().unwrap_or_default();
    edit_hook(&mut exec.first_launch, &h.first_launch.edit())?;
    edit_hook(&mut exec.go, &h.go.edit())?;
    edit_hook(&mut exec.assign, &h.assign.edit())?;
    let hooks = exec.first_launch.is_some() || exec.go.is_some() || exec.assign.is_some();
    w.exec_config = hooks.then_some(exec);
    if h.no_volumes {
        w.volume_mappings.clear();
    } else if !h.volumes.is_empty() {
        w.volume_mappings = h.volumes.clone();
    }
    if let Some(path) = &h.persistent_profile_path {
        w.persistent_profile_path = path.clone();
    }
    Ok(())
}

/// Applies one hook's `--exec-HOOK-*` flags; a hook left without a command is refused.
fn edit_hook(hook: &mut Option<ExecHook>, edit: &HookEdit) -> CliResult {
    if edit.remove {
        *hook = None;
        return Ok(());
    }
    if !edit.given() {
        return Ok(());
    }
    let mut h = hook.take().unwrap_or_default();
    if let Some(cmd) = &edit.cmd {
        h.cmd = cmd.clone();
    }
    if let Some(user) = &edit.user {
        h.user = user.clone();
    }
    if let Some(environment) = &edit.environment {
        h.environment = environment.iter().cloned().collect();
    }
    if let Some(workdir) = &edit.workdir {
        h.workdir = workdir.clone();
    }
    if let Some(privileged) = edit.privileged {
        h.privileged = privileged;
    }
    if h.cmd.trim().is_empty() {
        return Err(usage(format!(
            "--exec-{0}-cmd: the {0} hook needs a command",
            edit.flag
        )));
    }
    *hook = Some(h);
    Ok(())
}

#[cfg(test)]
mod tests {
    use atrium_proto::policy::v1::{ExecConfig, VolumeMapping};
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::commands::workspace::WorkspaceCommand;

    fn parse(args: &[&str]) -> Result<WorkspaceCommand, clap::Error> {
        let cli = Cli::try_parse_from(
            ["atrium", "workspace"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        match cli.command {
            Command::Workspace(cmd) => Ok(cmd),
            other => panic!("not a workspace command: {other:?}"),
        }
    }

    fn update_args(args: &[&str]) -> UpdateArgs {
        let mut all = vec!["update", "00000000-0000-7000-8000-000000000001"];
        all.extend(args);
        match parse(&all) {
            Ok(WorkspaceCommand::Update(args)) => args,
            other => panic!("expected update: {other:?}"),
        }
    }

    fn current() -> Workspace {
        Workspace {
            id: "00000000-0000-7000-8000-000000000001".into(),
            name: "kasmweb/chrome:1".into(),
            friendly_name: "Chrome".into(),
            categories: vec!["Browsers".into()],
            enabled: true,
            cores: 2.0,
            memory_mib: 2768,
            run_config_json: r#"{"hostname":"x"}"#.into(),
            exec_config: Some(ExecConfig {
                go: Some(ExecHook {
                    cmd: "open".into(),
                    user: "root".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            volume_mappings: vec![VolumeMapping {
                host_path: "/srv".into(),
                container_path: "/srv".into(),
                mode: "ro".into(),
            }],
            session_time_limit_secs: Some(0),
            zone_id: "z1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn create_leaves_defaults_to_the_service() {
        assert!(parse(&["create"]).is_err());
        let Ok(WorkspaceCommand::Create(args)) = parse(&[
            "create",
            "--image",
            "kasmweb/chrome:1.16.0",
            "--cores",
            "1.5",
            "--no-default-group",
        ]) else {
            panic!("expected create");
        };
        let request = create_request(args, None).expect("valid");
        assert_eq!(request.assign_to_all_users, Some(false));
        let w = request.workspace.unwrap_or_default();
        assert_eq!(w.name, "kasmweb/chrome:1.16.0");
        assert_eq!((w.cores, w.memory_mib, w.enabled), (1.5, 0, true));
        assert_eq!(w.session_time_limit_secs, None);
        assert_eq!(w.exec_config, None);
        let Ok(WorkspaceCommand::Create(args)) =
            parse(&["create", "--image", "x", "--disabled", "--hidden"])
        else {
            panic!("expected create");
        };
        let request = create_request(args, None).expect("valid");
        assert_eq!(request.assign_to_all_users, None);
        let w = request.workspace.unwrap_or_default();
        assert!(!w.enabled && w.hidden);
    }

    #[test]
    fn update_changes_only_what_is_given() {
        let args = update_args(&["--cores", "4", "--session-time-limit", "1h"]);
        let w = updated(current(), &args, None).expect("valid");
        assert_eq!(w.cores, 4.0);
        assert_eq!(w.session_time_limit_secs, Some(3600));
        let unchanged = Workspace {
            cores: 4.0,
            session_time_limit_secs: Some(3600),
            ..current()
        };
        assert_eq!(w, unchanged);
    }

    #[test]
    fn update_clears_fields() {
        let args = update_args(&[
            "--no-categories",
            "--no-volumes",
            "--no-exec-go",
            "--no-session-time-limit",
            "--no-zone",
            "--run-config",
            "{}",
            "--description",
            "",
        ]);
        let w = updated(current(), &args, Some(String::new())).expect("valid");
        assert!(w.categories.is_empty());
        assert!(w.volume_mappings.is_empty());
        // The last hook gone: no exec config at all.
        assert_eq!(w.exec_config, None);
        assert_eq!(w.session_time_limit_secs, None);
        assert_eq!(w.zone_id, "");
        assert_eq!(w.run_config_json, "{}");
        let args = update_args(&["--exec-config", "{}"]);
        assert_eq!(
            updated(current(), &args, None).map(|w| w.exec_config).ok(),
            Some(None)
        );
    }

    #[test]
    fn rules_across_fields_name_a_flag() {
        let args = update_args(&["--exec-first-launch-user", "root"]);
        let err = updated(current(), &args, None).err().map(|e| e.message());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.starts_with("--exec-first-launch-cmd")),
            "{err:?}"
        );
        let args = update_args(&["--require-gpu", "true"]);
        let err = updated(current(), &args, None).err().map(|e| e.message());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.starts_with("--require-gpu"))
        );
    }

    #[test]
    fn host_flags_are_recognised() {
        assert_eq!(
            update_args(&["--cores", "1"]).fields.host.first_given(),
            None
        );
        for (args, flag) in [
            (vec!["--run-config", "{}"], "--run-config"),
            (vec!["--exec-go-no-env"], "--exec-go-*"),
            (vec!["--no-volumes"], "--volume"),
            (
                vec!["--persistent-profile-path", ""],
                "--persistent-profile-path",
            ),
        ] {
            assert_eq!(update_args(&args).fields.host.first_given(), Some(flag));
        }
    }

    #[test]
    fn zones_are_found_by_name() {
        let zones = vec![
            Zone {
                id: "z1".into(),
                name: "east".into(),
                ..Default::default()
            },
            Zone {
                id: "z2".into(),
                name: "west".into(),
                ..Default::default()
            },
        ];
        assert_eq!(find_zone(&zones, "west").ok(), Some("z2".into()));
        let err = find_zone(&zones, "north").err().map(|e| e.message());
        assert!(err.as_deref().is_some_and(|m| m.contains("east, west")));
    }
}
