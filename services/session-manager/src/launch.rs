//! Admission: is the workspace launchable for the user, is the user within their limits (their
//! session count, and their usage allowance from billing-usage), and which agent hosts the
//! session. The answer is recorded (desired running, observed requested)
//! in one transaction with the reservation, so concurrent launches never overcommit an agent.

use std::collections::HashMap;

use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as pb;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;

use crate::config::UnavailablePolicy;
use crate::core::{Core, Hook, LaunchFile, LaunchSpec};
use crate::peers::Settings;
use crate::placement::{self, AgentHealth, Candidate, Need, Placement, Resources, ZoneRule};
use crate::state::{DesiredState, ObservedState};
use crate::store::{AdmissionView, Row, encode_groups};
use crate::usage::{Unavailable, Usage, UsageStatus, UsageVerdict};

pub struct LaunchRequest {
    pub user_id: String,
    pub workspace_id: String,
    pub options: pb::SessionOptions,
    /// Who asked (the audit trail's actor).
    pub actor: String,
}

/// Zone rules by id and by name.
pub fn zone_rules(zones: &[pol::Zone]) -> HashMap<String, ZoneRule> {
    let mut rules = HashMap::new();
    for z in zones {
        let rule = ZoneRule {
            id: z.id.clone(),
            name: z.name.clone(),
            search_alternate_zones: z.search_alternate_zones,
            strategy: placement::Strategy::parse(&z.load_strategy),
        };
        rules.insert(z.id.clone(), rule.clone());
        rules.insert(z.name.clone(), rule);
    }
    rules
}

/// The agents as placement sees them: heartbeats, with what this service has placed.
pub fn candidates(
    agents: &[atrium_heartbeat::AgentStatus],
    view: &AdmissionView,
) -> Vec<Candidate> {
    agents
        .iter()
        .map(|a| {
            let capacity = a.capacity.as_ref().map(|c| Resources {
                cores: c.cores,
                memory_mib: c.memory_mib,
                gpus: c.gpus,
            });
            let reported = a.allocated.as_ref().map(|c| Resources {
                cores: c.cores,
                memory_mib: c.memory_mib,
                gpus: c.gpus,
            });
            let placed = view.reserved.get(&a.agent_id).copied().unwrap_or_default();
            // What the agent holds may include containers this service does not know yet
            // (orphans about to be removed): reserve the larger of the two.
            let reported = reported.unwrap_or_default();
            let reserved = Resources {
                cores: placed.cores.max(reported.cores),
                memory_mib: placed.memory_mib.max(reported.memory_mib),
                gpus: placed.gpus.max(reported.gpus),
            };
            Candidate {
                agent_id: a.agent_id.clone(),
                zone: a.zone.clone(),
                health: match a.state.as_str() {
                    "active" => AgentHealth::Active,
                    "draining" => AgentHealth::Draining,
                    _ => AgentHealth::Unhealthy,
                },
                reason: a.reason.clone(),
                capacity: capacity.unwrap_or_default(),
                reserved,
                images: a.images.clone(),
            }
        })
        .collect()
}

fn check_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// Checks the request's options; errors name the field.
pub fn validate_options(options: &pb::SessionOptions) -> ApiResult<()> {
    if options.environment.len() > 100 {
        return Err(ApiError::invalid(
            "options.environment",
            "at most 100 variables",
        ));
    }
    for (k, v) in &options.environment {
        if !check_env_name(k) {
            return Err(ApiError::invalid(
                format!("options.environment.{k}"),
                "variable names are letters, digits and '_', not starting with a digit",
            ));
        }
        if v.len() > 8192 || v.contains('\0') {
            return Err(ApiError::invalid(
                format!("options.environment.{k}"),
                "values are at most 8192 bytes with no NUL",
            ));
        }
    }
    if !options.url.is_empty() {
        let ok = url_ok(&options.url);
        if !ok {
            return Err(ApiError::invalid(
                "options.url",
                "must be an absolute http:// or https:// URL",
            ));
        }
    }
    for (field, value) in [
        ("options.client_language", &options.client_language),
        ("options.client_timezone", &options.client_timezone),
    ] {
        if value.len() > 64
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.' | '+'))
        {
            return Err(ApiError::invalid(
                field,
                "is not a language tag or time zone name",
            ));
        }
    }
    match options.persistent_profile_mode.as_str() {
        "" | "enabled" | "disabled" => Ok(()),
        _ => Err(ApiError::invalid(
            "options.persistent_profile_mode",
            "must be empty, \"enabled\" or \"disabled\"",
        )),
    }
}

/// An absolute http(s) URL of sane length, no whitespace (`kasm_url`, the go hook's URL).
pub fn url_ok(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 4096
        && !url.chars().any(char::is_whitespace)
}

fn hooks(exec: Option<&pol::ExecConfig>) -> HashMap<String, Hook> {
    let mut out = HashMap::new();
    let Some(exec) = exec else { return out };
    for (name, hook) in [
        ("first_launch", &exec.first_launch),
        ("go", &exec.go),
        ("assign", &exec.assign),
    ] {
        if let Some(h) = hook
            && !h.cmd.trim().is_empty()
        {
            out.insert(
                name.to_owned(),
                Hook {
                    cmd: h.cmd.clone(),
                    user: h.user.clone(),
                    environment: h
                        .environment
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    workdir: h.workdir.clone(),
                    privileged: h.privileged,
                },
            );
        }
    }
    out
}

fn decode_file(m: &pol::FileMapping) -> ApiResult<Vec<u8>> {
    use base64::Engine as _;
    if m.content_is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(m.content.trim())
            .map_err(|_| {
                ApiError::FailedPrecondition(format!(
                    "file mapping {:?} holds content that is not valid base64",
                    m.name
                ))
            })
    } else {
        Ok(m.content.clone().into_bytes())
    }
}

/// The effective session_time_limit: the stricter of the workspace's and the owner's.
pub fn time_limit(workspace: &pol::Workspace, settings: &Settings) -> Option<i64> {
    match (
        workspace.session_time_limit_secs,
        settings.session_time_limit_secs,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Builds what the container is made from.
async fn launch_spec(
    core: &Core,
    req: &LaunchRequest,
    username: &str,
    workspace: &pol::Workspace,
    settings: &Settings,
) -> ApiResult<LaunchSpec> {
    let mut environment: Vec<(String, String)> = req
        .options
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    environment.sort();
    if !req.options.url.is_empty() {
        environment.push(("KASM_URL".into(), req.options.url.clone()));
    }
    if !req.options.client_language.is_empty() {
        environment.push(("LANG".into(), req.options.client_language.clone()));
    }
    if !req.options.client_timezone.is_empty() {
        environment.push(("TZ".into(), req.options.client_timezone.clone()));
    }
    let mut volumes = settings.volumes.clone();
    for v in &workspace.volume_mappings {
        volumes.push((
            v.host_path.clone(),
            v.container_path.clone(),
            v.mode == "ro",
        ));
    }
    let profile_wanted = match req.options.persistent_profile_mode.as_str() {
        "disabled" => false,
        _ => settings.allow_persistent_profile,
    };
    if req.options.persistent_profile_mode == "enabled" && !settings.allow_persistent_profile {
        return Err(ApiError::PermissionDenied(
            "options.persistent_profile_mode: persistent profiles are not allowed for you (allow_persistent_profile)".into(),
        ));
    }
    if profile_wanted && !workspace.persistent_profile_path.is_empty() {
        let host = workspace
            .persistent_profile_path
            .replace("{username}", username)
            .replace("{user_id}", &req.user_id);
        volumes.push((host, "/home/kasm-user".into(), false));
    }
    let mut run_config = settings.run_config.clone();
    if !workspace.run_config_json.trim().is_empty() {
        let own: serde_json::Value =
            serde_json::from_str(&workspace.run_config_json).map_err(|e| {
                ApiError::FailedPrecondition(format!(
                    "workspace {} has a run_config that is not JSON: {e}",
                    workspace.id
                ))
            })?;
        if let Some(map) = own.as_object() {
            for (k, v) in map {
                run_config.insert(k.clone(), v.clone());
            }
        }
    }
    let mut files = Vec::new();
    for m in core
        .peers
        .file_mappings(&req.user_id, &workspace.id)
        .await?
    {
        files.push(LaunchFile {
            destination: m.destination.clone(),
            content: decode_file(&m)?,
            executable: m.executable,
            readable: m.readable,
            writable: m.writable,
        });
    }
    Ok(LaunchSpec {
        environment,
        volumes,
        files,
        run_config_json: if run_config.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(run_config).to_string()
        },
        expose_user_environment: settings.expose_user_environment,
        inject_ssh_keys: settings.inject_ssh_keys,
        hooks: hooks(workspace.exec_config.as_ref()),
    })
}

/// The workspace's needs and the zone to place in, after the zone-selection rule.
pub fn need(workspace: &pol::Workspace, picked_zone: &str, settings: &Settings) -> ApiResult<Need> {
    let picked = !picked_zone.is_empty();
    if picked && !settings.allow_zone_selection {
        return Err(ApiError::invalid(
            "options.zone_id",
            "you may not pick a zone (allow_zone_selection is off for you)",
        ));
    }
    let zone = if picked {
        Some(picked_zone.to_owned())
    } else if workspace.zone_id.is_empty() {
        None
    } else {
        Some(workspace.zone_id.clone())
    };
    Ok(Need {
        resources: Resources {
            cores: workspace.cores,
            memory_mib: workspace.memory_mib,
            gpus: workspace.gpu_count,
        },
        image: workspace.name.clone(),
        zone,
        user_picked_zone: picked,
    })
}

/// What admission concluded about the user's usage allowance.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageAdmission {
    /// No usage service is configured: nobody's allowance is spent.
    NotConfigured,
    /// billing-usage answered: no limit applies, or time is left.
    Within(UsageVerdict),
    /// billing-usage could not answer and `usage.when_unavailable` is `allow`: admitted, and
    /// the session records that it was not checked.
    Unchecked(Unavailable),
}

/// The usage rule of admission: a spent allowance refuses (saying how much of what was used
/// and when it renews); an unanswered check follows `usage.when_unavailable`.
pub fn usage_admission(
    status: UsageStatus,
    when_unavailable: UnavailablePolicy,
) -> ApiResult<UsageAdmission> {
    match status {
        UsageStatus::NotConfigured => Ok(UsageAdmission::NotConfigured),
        UsageStatus::Checked(v) if !v.allowed => {
            Err(ApiError::FailedPrecondition(v.spent_reason()))
        }
        UsageStatus::Checked(v) => Ok(UsageAdmission::Within(v)),
        UsageStatus::Unavailable(e) => match when_unavailable {
            UnavailablePolicy::Allow => Ok(UsageAdmission::Unchecked(e)),
            UnavailablePolicy::Refuse => Err(ApiError::Unavailable(
                "usage could not be checked (billing-usage is unavailable) and usage.when_unavailable is refuse".into(),
            )),
        },
    }
}

/// Asks billing-usage (through the cache) whether the user may start a session.
pub async fn check_usage(usage: &Usage, user_id: &str) -> ApiResult<UsageAdmission> {
    usage_admission(usage.check(user_id).await, usage.when_unavailable())
}

/// The workspace, if the user may launch it.
pub async fn launchable_workspace(
    core: &Core,
    user_id: &str,
    workspace_id: &str,
) -> ApiResult<pol::Workspace> {
    let launchable = core.peers.launchable(user_id).await?;
    if !launchable.iter().any(|w| w.id == workspace_id) {
        return Err(ApiError::FailedPrecondition(format!(
            "workspace {workspace_id} is not launchable for this user (not assigned to any of their groups, disabled, or missing)"
        )));
    }
    core.peers.workspace(workspace_id).await
}

/// Admits and records the session; returns it in state `requested`.
pub async fn admit(core: &Core, req: LaunchRequest) -> ApiResult<Row> {
    validate_options(&req.options)?;
    if req.workspace_id.trim().is_empty() {
        return Err(ApiError::invalid("workspace_id", "is required"));
    }
    let user = core.peers.user(&req.user_id).await?;
    if user.disabled {
        return Err(ApiError::FailedPrecondition(format!(
            "user {} is disabled",
            user.username
        )));
    }
    if user.locked {
        return Err(ApiError::FailedPrecondition(format!(
            "user {} is locked",
            user.username
        )));
    }
    let workspace = launchable_workspace(core, &req.user_id, &req.workspace_id).await?;
    let settings = core.peers.settings(&req.user_id).await?;
    let need = need(&workspace, &req.options.zone_id, &settings)?;
    let usage = check_usage(&core.usage, &req.user_id).await?;
    let usage_unchecked = matches!(usage, UsageAdmission::Unchecked(_));
    let rules = zone_rules(&core.peers.zones().await?);
    let agents = core.agents().await?;
    let spec = launch_spec(core, &req, &user.username, &workspace, &settings).await?;
    let spec_sealed = core.seal_spec(&spec)?;
    let now = Utc::now();
    let id = uuid::Uuid::new_v4().to_string();
    let limit = time_limit(&workspace, &settings);
    let max = settings.max_kasms_per_user;
    let row = core
        .store
        .admit(
            &req.user_id,
            |view| {
                if i64::try_from(view.user_live).unwrap_or(i64::MAX) >= max {
                    return Err(ApiError::FailedPrecondition(format!(
                        "you already have {} session(s), the most you may hold at once (max_kasms_per_user {max})",
                        view.user_live
                    )));
                }
                let placement: Placement = placement::place(&candidates(&agents, view), &need, &rules);
                let Some(agent_id) = placement.chosen.clone() else {
                    return Err(ApiError::FailedPrecondition(placement.summary()));
                };
                let zone_id = agents
                    .iter()
                    .find(|a| a.agent_id == agent_id)
                    .map(|a| a.zone.clone())
                    .unwrap_or_default();
                Ok(Row {
                    id: id.clone(),
                    user_id: req.user_id.clone(),
                    username: user.username.clone(),
                    workspace_id: workspace.id.clone(),
                    image: workspace.name.clone(),
                    zone_id,
                    agent_id: agent_id.clone(),
                    desired_state: DesiredState::Running.as_str().into(),
                    observed_state: ObservedState::Requested.as_str().into(),
                    generation: 1,
                    progress: 5,
                    message: if usage_unchecked {
                        format!("placed on agent {agent_id}; admitted without a usage check (billing-usage is unavailable)")
                    } else {
                        format!("placed on agent {agent_id}")
                    },
                    host: String::new(),
                    port: 0,
                    container_id: String::new(),
                    secret_sealed: None,
                    spec_sealed: spec_sealed.clone(),
                    url: req.options.url.clone(),
                    reserve_cores: need.resources.cores,
                    reserve_memory_mib: need.resources.memory_mib,
                    reserve_gpus: i32::try_from(need.resources.gpus).unwrap_or(i32::MAX),
                    keepalive_secs: settings.keepalive_expiration_secs,
                    time_limit_secs: limit,
                    expiration_action: settings.keepalive_expiration_action.clone(),
                    first_launch_done: false,
                    attempts: 0,
                    created_at: now,
                    started_at: None,
                    last_keepalive_at: None,
                    updated_at: now,
                    state_since: now,
                    ended_at: None,
                    lease_owner: None,
                    lease_until: None,
                    group_ids: encode_groups(&settings.group_ids),
                    usage_unchecked,
                })
            },
            &req.actor,
        )
        .await?;
    let deadline = core.deadline_for(&row, settings.keepalive_expiration_secs, now);
    if let Err(e) = core.set_deadline(&row.id, deadline).await {
        // The rebuild after the store returns gives it one; meanwhile nothing is reaped.
        tracing::warn!(session_id = %row.id, error = %e, "launched without a deadline for now");
    }
    core.changed(&row);
    if let UsageAdmission::Unchecked(e) = &usage {
        tracing::warn!(session_id = %row.id, user_id = %row.user_id, error = %e, "admitted without a usage check (usage.when_unavailable = allow)");
    }
    tracing::info!(session_id = %row.id, user_id = %row.user_id, agent_id = %row.agent_id, workspace = %row.image, "session admitted");
    Ok(row)
}

/// ExplainPlacement: every agent, and the choice, without reserving anything.
pub async fn explain(
    core: &Core,
    user_id: &str,
    workspace_id: &str,
    zone_id: &str,
) -> ApiResult<Placement> {
    let workspace = launchable_workspace(core, user_id, workspace_id).await?;
    let settings = core.peers.settings(user_id).await?;
    let need = need(&workspace, zone_id, &settings)?;
    let rules = zone_rules(&core.peers.zones().await?);
    let agents = core.agents().await?;
    let view = core.store.reservations(user_id).await?;
    Ok(placement::place(&candidates(&agents, &view), &need, &rules))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::config::UsageConfig;
    use crate::usage::memory::{MemoryUsage, weekly};

    fn window_end() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn usage(gate: Arc<MemoryUsage>, when_unavailable: UnavailablePolicy) -> Usage {
        Usage::new(
            gate,
            &UsageConfig {
                endpoint: Some("http://billing.invalid:1".into()),
                when_unavailable,
                ..UsageConfig::default()
            },
        )
    }

    #[tokio::test]
    async fn a_spent_allowance_refuses_and_names_the_limit() {
        let gate = Arc::new(MemoryUsage::new());
        gate.set("alice", weekly("Students", 2.0, 2.0, window_end()));
        let refused = check_usage(&usage(gate, UnavailablePolicy::Allow), "alice")
            .await
            .expect_err("spent");
        match refused {
            ApiError::FailedPrecondition(m) => assert_eq!(
                m,
                "usage limit spent: 2.00 of 2 hours used this week (group Students, shared by its members); it renews at 2026-11-30 00:00 UTC"
            ),
            other => panic!("expected FailedPrecondition, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn time_left_or_no_limit_admits() {
        let gate = Arc::new(MemoryUsage::new());
        gate.set("alice", weekly("Students", 2.0, 1.2, window_end()));
        let usage = usage(gate, UnavailablePolicy::Refuse);
        match check_usage(&usage, "alice").await.expect("admitted") {
            UsageAdmission::Within(v) => assert!(v.allowed && v.limit.is_some()),
            other => panic!("{other:?}"),
        }
        // bob has no usage_limit.
        match check_usage(&usage, "bob").await.expect("admitted") {
            UsageAdmission::Within(v) => assert!(v.limit.is_none()),
            other => panic!("{other:?}"),
        }
        // No usage service configured: admitted, as before billing-usage existed.
        assert_eq!(
            check_usage(&Usage::disabled(), "alice")
                .await
                .expect("admitted"),
            UsageAdmission::NotConfigured
        );
    }

    #[tokio::test]
    async fn billing_away_follows_when_unavailable() {
        let gate = Arc::new(MemoryUsage::new());
        gate.set_down(true);
        let allow = usage(gate.clone(), UnavailablePolicy::Allow);
        assert!(matches!(
            check_usage(&allow, "alice").await.expect("allowed"),
            UsageAdmission::Unchecked(_)
        ));
        let refuse = usage(gate, UnavailablePolicy::Refuse);
        match check_usage(&refuse, "alice").await.expect_err("refused") {
            ApiError::Unavailable(m) => assert_eq!(
                m,
                "usage could not be checked (billing-usage is unavailable) and usage.when_unavailable is refuse"
            ),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
