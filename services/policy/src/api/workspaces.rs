//! Workspaces (Kasm's "images"), their assignment to groups, and zones.

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::paging::Page;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;
use serde_json::Value as Json;

use crate::api::groups::existing;
use crate::convert::{self, timestamp};
use crate::core::{ALL_USERS_ID, Core};
use crate::entity::workspace;
use crate::repo::Change;

use atrium_service_kit::host_path;
/// The docker-run parameters a workspace's run_config may use (mapped onto the container by the
/// agent); anything else is refused.
pub use atrium_service_kit::run_config::ALLOWED_KEYS as RUN_CONFIG_ALLOWED;
use atrium_service_kit::run_config::RunConfig;

pub const DEFAULT_CORES: f64 = 2.0;
pub const DEFAULT_MEMORY_MIB: i64 = 2768;

/// The run_config through the kit's one validator (the agent parses it with the same one at
/// launch); stored in canonical JSON form.
fn validate_run_config(raw: &str) -> ApiResult<String> {
    const FIELD: &str = "workspace.run_config_json";
    if raw.trim().is_empty() {
        return Ok("{}".into());
    }
    let parsed: Json = serde_json::from_str(raw)
        .map_err(|e| ApiError::invalid(FIELD, format!("is not valid JSON: {e}")))?;
    RunConfig::from_json(FIELD, &parsed)?;
    Ok(parsed.to_string())
}

fn validate_hook(field: &str, hook: &Option<pb::ExecHook>) -> ApiResult<()> {
    let Some(h) = hook else {
        return Ok(());
    };
    if h.cmd.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field}.cmd"), "is required"));
    }
    if !h.workdir.is_empty() {
        host_path::host(&format!("{field}.workdir"), &h.workdir)?;
    }
    for name in h.environment.keys() {
        if name.is_empty() || name.contains('=') || name.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                format!("{field}.environment.{name}"),
                "names must be non-empty, without '=' or control characters",
            ));
        }
    }
    Ok(())
}

fn exec_config_json(config: &Option<pb::ExecConfig>) -> ApiResult<String> {
    let Some(c) = config else {
        return Ok("{}".into());
    };
    validate_hook("workspace.exec_config.first_launch", &c.first_launch)?;
    validate_hook("workspace.exec_config.go", &c.go)?;
    validate_hook("workspace.exec_config.assign", &c.assign)?;
    let hook = |h: &Option<pb::ExecHook>| {
        h.as_ref().map(|h| {
            serde_json::json!({"cmd": h.cmd, "user": h.user, "environment": h.environment, "workdir": h.workdir, "privileged": h.privileged})
        })
    };
    Ok(serde_json::json!({"first_launch": hook(&c.first_launch), "go": hook(&c.go), "assign": hook(&c.assign)}).to_string())
}

fn exec_config_from_json(raw: &str) -> Option<pb::ExecConfig> {
    let v: Json = serde_json::from_str(raw).ok()?;
    let hook = |key: &str| -> Option<pb::ExecHook> {
        let h = v.get(key)?.as_object()?;
        Some(pb::ExecHook {
            cmd: h.get("cmd")?.as_str()?.to_owned(),
            user: h
                .get("user")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
            environment: serde_json::from_value(h.get("environment").cloned().unwrap_or_default())
                .unwrap_or_default(),
            workdir: h
                .get("workdir")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
            privileged: h.get("privileged").and_then(Json::as_bool).unwrap_or(false),
        })
    };
    Some(pb::ExecConfig {
        first_launch: hook("first_launch"),
        go: hook("go"),
        assign: hook("assign"),
    })
}

fn image_ref(raw: &str) -> ApiResult<String> {
    let name = convert::required_text("workspace.name", raw, 255)?;
    let ok = !name.starts_with(['-', '.', '/', ':'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:@-".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(ApiError::invalid(
            "workspace.name",
            "is not a Docker image reference",
        ))
    }
}

/// Validates a workspace message into a row (id and timestamps supplied by the caller).
fn to_row(
    w: &pb::Workspace,
    id: String,
    created_at: chrono::DateTime<Utc>,
) -> ApiResult<workspace::Model> {
    let name = image_ref(&w.name)?;
    let cores = if w.cores == 0.0 {
        DEFAULT_CORES
    } else {
        w.cores
    };
    if !(cores.is_finite() && cores > 0.0 && cores <= 256.0) {
        return Err(ApiError::invalid(
            "workspace.cores",
            "must be between 0 and 256",
        ));
    }
    let memory = if w.memory_mib == 0 {
        DEFAULT_MEMORY_MIB
    } else {
        w.memory_mib
    };
    if !(64..=1_048_576).contains(&memory) {
        return Err(ApiError::invalid(
            "workspace.memory_mib",
            "must be between 64 and 1048576",
        ));
    }
    if w.gpu_count > 16 {
        return Err(ApiError::invalid(
            "workspace.gpu_count",
            "must be at most 16",
        ));
    }
    if w.require_gpu && w.gpu_count == 0 {
        return Err(ApiError::invalid(
            "workspace.require_gpu",
            "needs gpu_count of at least 1",
        ));
    }
    let profile = convert::text(
        "workspace.persistent_profile_path",
        &w.persistent_profile_path,
        1024,
    )?;
    if !profile.is_empty() && !profile.contains("{username}") && !profile.contains("{user_id}") {
        return Err(ApiError::invalid(
            "workspace.persistent_profile_path",
            "must contain {username} or {user_id}",
        ));
    }
    if w.session_time_limit_secs.is_some_and(|s| s < 0) {
        return Err(ApiError::invalid(
            "workspace.session_time_limit_secs",
            "must not be negative",
        ));
    }
    let zone_id = if w.zone_id.trim().is_empty() {
        None
    } else {
        // Checked (and held) by the write itself.
        Some(convert::uuid("workspace.zone_id", &w.zone_id)?)
    };
    if w.categories.len() > 32 {
        return Err(ApiError::invalid(
            "workspace.categories",
            "at most 32 categories",
        ));
    }
    let mut categories = Vec::with_capacity(w.categories.len());
    for (i, c) in w.categories.iter().enumerate() {
        categories.push(convert::required_text(
            &format!("workspace.categories[{i}]"),
            c,
            64,
        )?);
    }
    let mut volumes = Vec::with_capacity(w.volume_mappings.len());
    for (i, v) in w.volume_mappings.iter().enumerate() {
        let field = format!("workspace.volume_mappings[{i}]");
        let mode = match v.mode.as_str() {
            "" | "rw" => "rw",
            "ro" => "ro",
            _ => {
                return Err(ApiError::invalid(
                    format!("{field}.mode"),
                    "must be rw or ro",
                ));
            }
        };
        // The kit's one path rule, which the agent applies at launch.
        host_path::host(&format!("{field}.host_path"), &v.host_path)?;
        host_path::mount_point(&format!("{field}.container_path"), &v.container_path)?;
        volumes.push(serde_json::json!({
            "host_path": v.host_path,
            "container_path": v.container_path,
            "mode": mode,
        }));
    }
    let friendly = convert::text("workspace.friendly_name", &w.friendly_name, 255)?;
    Ok(workspace::Model {
        id,
        friendly_name: if friendly.is_empty() {
            name.clone()
        } else {
            friendly
        },
        name,
        description: convert::text("workspace.description", &w.description, 4096)?,
        categories: serde_json::to_string(&categories).unwrap_or_else(|_| "[]".into()),
        enabled: w.enabled,
        hidden: w.hidden,
        cores,
        memory_mib: memory,
        gpu_count: i32::try_from(w.gpu_count).unwrap_or(0),
        require_gpu: w.require_gpu,
        run_config: validate_run_config(&w.run_config_json)?,
        exec_config: exec_config_json(&w.exec_config)?,
        volume_mappings: Json::Array(volumes).to_string(),
        persistent_profile_path: profile,
        session_time_limit_secs: w.session_time_limit_secs,
        zone_id,
        thumbnail_url: convert::optional_url("workspace.thumbnail_url", &w.thumbnail_url)?,
        created_at,
        updated_at: Utc::now(),
    })
}

/// What the caller is told when host access is withheld.
const HOST_ACCESS: &str =
    "run_config, exec hooks, volume mappings and the persistent profile path (they touch the host)";

/// The parts of a workspace that touch the host (and carry environment): only administrators
/// set or change them, and only administrators and services read them.
#[derive(Debug, PartialEq)]
struct HostAccess<'a> {
    run_config: &'a str,
    exec_config: Option<pb::ExecConfig>,
    volume_mappings: &'a str,
    persistent_profile_path: &'a str,
}

fn host_access(w: &workspace::Model) -> HostAccess<'_> {
    HostAccess {
        run_config: &w.run_config,
        exec_config: exec_config_from_json(&w.exec_config)
            .filter(|c| c.first_launch.is_some() || c.go.is_some() || c.assign.is_some()),
        volume_mappings: &w.volume_mappings,
        persistent_profile_path: &w.persistent_profile_path,
    }
}

/// Whether the workspace touches the host at all.
fn has_host_access(w: &workspace::Model) -> bool {
    let h = host_access(w);
    h.run_config != "{}"
        || h.exec_config.is_some()
        || h.volume_mappings != "[]"
        || !h.persistent_profile_path.is_empty()
}

/// The workspace as `sees_host_access` callers see it; others get it without host access.
pub fn to_proto(w: &workspace::Model, sees_host_access: bool) -> pb::Workspace {
    let full = to_proto_full(w);
    if sees_host_access {
        return full;
    }
    pb::Workspace {
        run_config_json: String::new(),
        exec_config: None,
        volume_mappings: Vec::new(),
        persistent_profile_path: String::new(),
        host_access_withheld: true,
        ..full
    }
}

fn to_proto_full(w: &workspace::Model) -> pb::Workspace {
    let volumes: Vec<Json> = serde_json::from_str(&w.volume_mappings).unwrap_or_default();
    pb::Workspace {
        id: w.id.clone(),
        name: w.name.clone(),
        friendly_name: w.friendly_name.clone(),
        description: w.description.clone(),
        categories: serde_json::from_str(&w.categories).unwrap_or_default(),
        enabled: w.enabled,
        hidden: w.hidden,
        cores: w.cores,
        memory_mib: w.memory_mib,
        gpu_count: u32::try_from(w.gpu_count).unwrap_or(0),
        require_gpu: w.require_gpu,
        run_config_json: w.run_config.clone(),
        exec_config: exec_config_from_json(&w.exec_config),
        volume_mappings: volumes
            .iter()
            .map(|v| pb::VolumeMapping {
                host_path: v["host_path"].as_str().unwrap_or_default().to_owned(),
                container_path: v["container_path"].as_str().unwrap_or_default().to_owned(),
                mode: v["mode"].as_str().unwrap_or("rw").to_owned(),
            })
            .collect(),
        persistent_profile_path: w.persistent_profile_path.clone(),
        session_time_limit_secs: w.session_time_limit_secs,
        zone_id: w.zone_id.clone().unwrap_or_default(),
        thumbnail_url: w.thumbnail_url.clone(),
        created_at: Some(timestamp(w.created_at)),
        updated_at: Some(timestamp(w.updated_at)),
        host_access_withheld: false,
    }
}

fn workspace_change(principal: &Principal, kind: &'static str, w: &workspace::Model) -> Change {
    Change::new(principal, kind, format!("workspace:{}", w.id)).detail(serde_json::json!({
        "name": w.name,
        "friendly_name": w.friendly_name,
        "enabled": w.enabled,
        "host_access": has_host_access(w),
    }))
}

pub async fn create(
    core: &Core,
    principal: &Principal,
    req: pb::CreateWorkspaceRequest,
) -> ApiResult<pb::Workspace> {
    core.require(principal, permissions::WORKSPACES_CREATE)
        .await?;
    let w = req
        .workspace
        .ok_or_else(|| ApiError::invalid("workspace", "is required"))?;
    let row = to_row(
        &w,
        uuid::Uuid::now_v7().hyphenated().to_string(),
        Utc::now(),
    )?;
    if has_host_access(&row) {
        core.require_administrator(principal, &format!("setting {HOST_ACCESS}"))
            .await?;
    }
    let join = req
        .assign_to_all_users
        .unwrap_or(core.config.new_workspaces_join_all_users);
    let groups = if join {
        vec![ALL_USERS_ID.to_owned()]
    } else {
        Vec::new()
    };
    let change = workspace_change(principal, "workspace.create", &row);
    let row = core.repo.create_workspace(row, &groups, change).await?;
    Ok(to_proto(&row, core.sees_host_access(principal).await?))
}

pub async fn get(
    core: &Core,
    principal: &Principal,
    req: pb::GetWorkspaceRequest,
) -> ApiResult<pb::Workspace> {
    let id = convert::uuid("workspace_id", &req.workspace_id)?;
    if let Err(denied) = core.require(principal, permissions::WORKSPACES_VIEW).await {
        // Users may read the workspaces they can launch; other callers need the permission.
        let Some(user) = principal.full_user() else {
            return Err(denied);
        };
        let policy = core.user_policy(&user.user_id).await?;
        let launchable = core.repo.workspaces_of(&policy.group_ids()).await?;
        return launchable
            .iter()
            .find(|w| w.id == id)
            .map(|w| to_proto(w, false))
            .ok_or_else(|| ApiError::not_found(format!("workspace {id}")));
    }
    let sees = core.sees_host_access(principal).await?;
    Ok(to_proto(&core.repo.workspace(&id).await?, sees))
}

pub async fn update(
    core: &Core,
    principal: &Principal,
    req: pb::UpdateWorkspaceRequest,
) -> ApiResult<pb::Workspace> {
    core.require(principal, permissions::WORKSPACES_MODIFY)
        .await?;
    let w = req
        .workspace
        .ok_or_else(|| ApiError::invalid("workspace", "is required"))?;
    let current = core
        .repo
        .workspace(&convert::uuid("workspace.id", &w.id)?)
        .await?;
    let row = if w.host_access_withheld {
        // The caller saw the workspace without host access and sends it back so: keep it.
        let without = pb::Workspace {
            run_config_json: String::new(),
            exec_config: None,
            volume_mappings: Vec::new(),
            persistent_profile_path: String::new(),
            ..w
        };
        let mut row = to_row(&without, current.id.clone(), current.created_at)?;
        row.run_config = current.run_config.clone();
        row.exec_config = current.exec_config.clone();
        row.volume_mappings = current.volume_mappings.clone();
        row.persistent_profile_path = current.persistent_profile_path.clone();
        row
    } else {
        let row = to_row(&w, current.id.clone(), current.created_at)?;
        if host_access(&row) != host_access(&current) {
            core.require_administrator(principal, &format!("changing {HOST_ACCESS}"))
                .await?;
        }
        row
    };
    let change = workspace_change(principal, "workspace.update", &row);
    let sees = core.sees_host_access(principal).await?;
    Ok(to_proto(
        &core.repo.replace_workspace(row, change).await?,
        sees,
    ))
}

pub async fn delete(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteWorkspaceRequest,
) -> ApiResult<pb::DeleteWorkspaceResponse> {
    core.require(principal, permissions::WORKSPACES_DELETE)
        .await?;
    let current = core
        .repo
        .workspace(&convert::uuid("workspace_id", &req.workspace_id)?)
        .await?;
    let change = workspace_change(principal, "workspace.delete", &current);
    core.repo.delete_workspace(&current.id, change).await?;
    // Settings naming it are gone.
    core.invalidate();
    Ok(pb::DeleteWorkspaceResponse {})
}

pub async fn list(
    core: &Core,
    principal: &Principal,
    req: pb::ListWorkspacesRequest,
) -> ApiResult<pb::ListWorkspacesResponse> {
    core.require(principal, permissions::WORKSPACES_VIEW)
        .await?;
    let page = Page::from_request(req.page.as_ref())?;
    let rows = core
        .repo
        .list_workspaces(
            req.include_disabled,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
    let (rows, page) = page.finish(rows, |w| w.id.clone());
    let sees = core.sees_host_access(principal).await?;
    Ok(pb::ListWorkspacesResponse {
        workspaces: rows.iter().map(|w| to_proto(w, sees)).collect(),
        page: Some(page),
    })
}

pub async fn assign(
    core: &Core,
    principal: &Principal,
    req: pb::WorkspaceAssignmentRequest,
    on: bool,
) -> ApiResult<pb::WorkspaceAssignmentResponse> {
    core.require(principal, permissions::WORKSPACES_MODIFY)
        .await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let ws = core
        .repo
        .workspace(&convert::uuid("workspace_id", &req.workspace_id)?)
        .await?;
    let detail = serde_json::json!({"group_id": group.id, "group": group.name});
    let changed = if on {
        // Assigning gives the group's members launches of it, host access included.
        if has_host_access(&ws) {
            core.require_administrator(
                principal,
                &format!("assigning a workspace with {HOST_ACCESS}"),
            )
            .await?;
        }
        let change = Change::new(
            principal,
            "workspace.assign",
            format!("workspace:{}", ws.id),
        )
        .detail(detail);
        core.repo.assign(&group.id, &ws.id, change).await?
    } else {
        let change = Change::new(
            principal,
            "workspace.unassign",
            format!("workspace:{}", ws.id),
        )
        .detail(detail);
        core.repo.unassign(&group.id, &ws.id, change).await?
    };
    Ok(pb::WorkspaceAssignmentResponse { changed })
}

pub async fn launchable(
    core: &Core,
    principal: &Principal,
    req: pb::ListLaunchableWorkspacesRequest,
) -> ApiResult<pb::ListWorkspacesResponse> {
    let user_id = core
        .self_or(principal, &req.user_id, permissions::WORKSPACES_VIEW)
        .await?;
    let policy = core.user_policy(&user_id).await?;
    let rows = core.repo.workspaces_of(&policy.group_ids()).await?;
    let sees = core.sees_host_access(principal).await?;
    Ok(pb::ListWorkspacesResponse {
        workspaces: rows.iter().map(|w| to_proto(w, sees)).collect(),
        page: Some(Default::default()),
    })
}
