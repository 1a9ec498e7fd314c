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
use crate::entity::{workspace, zone};

/// The docker-run parameters a workspace's run_config may use (mapped onto the container by the
/// agent); anything else is refused.
pub use atrium_service_kit::run_config::ALLOWED_KEYS as RUN_CONFIG_ALLOWED;

pub const DEFAULT_CORES: f64 = 2.0;
pub const DEFAULT_MEMORY_MIB: i64 = 2768;

fn validate_run_config(raw: &str) -> ApiResult<String> {
    const FIELD: &str = "workspace.run_config_json";
    if raw.trim().is_empty() {
        return Ok("{}".into());
    }
    let parsed: Json = serde_json::from_str(raw)
        .map_err(|e| ApiError::invalid(FIELD, format!("is not valid JSON: {e}")))?;
    let Json::Object(map) = &parsed else {
        return Err(ApiError::invalid(
            FIELD,
            "must be a JSON object of docker-run parameters",
        ));
    };
    for (key, value) in map {
        if !RUN_CONFIG_ALLOWED.contains(&key.as_str()) {
            return Err(ApiError::invalid(
                FIELD,
                format!(
                    "docker-run parameter {key:?} is not allowed; allowed: {}",
                    RUN_CONFIG_ALLOWED.join(", ")
                ),
            ));
        }
        let ok = match key.as_str() {
            "privileged" | "read_only" => value.is_boolean(),
            "environment" | "labels" | "tmpfs" | "sysctls" => value.is_object(),
            "dns" | "cap_add" | "cap_drop" | "security_opt" | "devices" | "ulimits" => {
                value.is_array()
            }
            "extra_hosts" => value.is_array() || value.is_object(),
            "shm_size" => value.is_string() || value.is_u64(),
            "entrypoint" | "command" => value.is_string() || value.is_array(),
            _ => value.is_string(),
        };
        if !ok {
            return Err(ApiError::invalid(
                FIELD,
                format!("docker-run parameter {key:?} has the wrong type"),
            ));
        }
    }
    Ok(parsed.to_string())
}

fn validate_hook(field: &str, hook: &Option<pb::ExecHook>) -> ApiResult<()> {
    if let Some(h) = hook
        && h.cmd.trim().is_empty()
    {
        return Err(ApiError::invalid(format!("{field}.cmd"), "is required"));
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
        volumes.push(serde_json::json!({
            "host_path": convert::absolute_path(&format!("{field}.host_path"), &v.host_path)?,
            "container_path": convert::absolute_path(&format!("{field}.container_path"), &v.container_path)?,
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

pub fn to_proto(w: &workspace::Model) -> pb::Workspace {
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
    }
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
    let join = req
        .assign_to_all_users
        .unwrap_or(core.config.new_workspaces_join_all_users);
    let groups = if join {
        vec![ALL_USERS_ID.to_owned()]
    } else {
        Vec::new()
    };
    let row = core.repo.create_workspace(row, &groups).await?;
    Ok(to_proto(&row))
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
            .map(to_proto)
            .ok_or_else(|| ApiError::not_found(format!("workspace {id}")));
    }
    Ok(to_proto(&core.repo.workspace(&id).await?))
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
    let row = to_row(&w, current.id.clone(), current.created_at)?;
    Ok(to_proto(&core.repo.replace_workspace(row).await?))
}

pub async fn delete(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteWorkspaceRequest,
) -> ApiResult<pb::DeleteWorkspaceResponse> {
    core.require(principal, permissions::WORKSPACES_DELETE)
        .await?;
    core.repo
        .delete_workspace(&convert::uuid("workspace_id", &req.workspace_id)?)
        .await?;
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
    Ok(pb::ListWorkspacesResponse {
        workspaces: rows.iter().map(to_proto).collect(),
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
    let changed = if on {
        core.repo.assign(&group.id, &ws.id).await?
    } else {
        core.repo.unassign(&group.id, &ws.id).await?
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
    Ok(pb::ListWorkspacesResponse {
        workspaces: rows.iter().map(to_proto).collect(),
        page: Some(Default::default()),
    })
}

// ---- zones ---------------------------------------------------------------------------------

fn zone_row(z: &pb::Zone, id: String) -> ApiResult<zone::Model> {
    let strategy = match z.load_strategy.as_str() {
        "" | "least_loaded" => "least_loaded",
        "most_loaded" => "most_loaded",
        _ => {
            return Err(ApiError::invalid(
                "load_strategy",
                "must be least_loaded or most_loaded",
            ));
        }
    };
    Ok(zone::Model {
        id,
        name: convert::required_text("name", &z.name, 128)?,
        search_alternate_zones: z.search_alternate_zones,
        load_strategy: strategy.to_owned(),
    })
}

fn zone_to_proto(z: &zone::Model) -> pb::Zone {
    pb::Zone {
        id: z.id.clone(),
        name: z.name.clone(),
        search_alternate_zones: z.search_alternate_zones,
        load_strategy: z.load_strategy.clone(),
    }
}

pub async fn create_zone(core: &Core, principal: &Principal, req: pb::Zone) -> ApiResult<pb::Zone> {
    core.require(principal, permissions::ZONES_MODIFY).await?;
    let row = zone_row(&req, uuid::Uuid::now_v7().hyphenated().to_string())?;
    core.repo.insert_zone(row.clone()).await?;
    Ok(zone_to_proto(&row))
}

pub async fn update_zone(core: &Core, principal: &Principal, req: pb::Zone) -> ApiResult<pb::Zone> {
    core.require(principal, permissions::ZONES_MODIFY).await?;
    let current = core.repo.zone(&convert::uuid("id", &req.id)?).await?;
    Ok(zone_to_proto(
        &core.repo.replace_zone(zone_row(&req, current.id)?).await?,
    ))
}

pub async fn delete_zone(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteZoneRequest,
) -> ApiResult<pb::DeleteZoneResponse> {
    core.require(principal, permissions::ZONES_MODIFY).await?;
    core.repo
        .delete_zone(&convert::uuid("zone_id", &req.zone_id)?)
        .await?;
    Ok(pb::DeleteZoneResponse {})
}

pub async fn list_zones(
    core: &Core,
    principal: &Principal,
    _req: pb::ListZonesRequest,
) -> ApiResult<pb::ListZonesResponse> {
    core.require(principal, permissions::ZONES_VIEW).await?;
    Ok(pb::ListZonesResponse {
        zones: core.repo.zones().await?.iter().map(zone_to_proto).collect(),
    })
}
