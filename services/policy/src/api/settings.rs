//! Group settings and the effective policy with its explanation.

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;

use crate::api::groups::existing;
use crate::convert::{group_ref, timestamp, value_from_proto, value_to_proto};
use crate::core::Core;
use crate::entity::group_setting;
use crate::repo::Change;
use crate::settings::{self, Definition, SettingError, SettingType, Value};

/// Settings that touch the host: only an administrator may set, change or unset them.
pub const HOST_ACCESS_SETTINGS: [&str; 2] = ["volume_mapping", "run_config"];

/// Setting, changing or unsetting `administrator` or a host-access setting is an
/// administrator's call.
async fn require_for(core: &Core, principal: &Principal, name: &str, verb: &str) -> ApiResult<()> {
    if name == "administrator" {
        core.require_administrator(principal, &format!("{verb} administrator"))
            .await?;
    }
    if HOST_ACCESS_SETTINGS.contains(&name) {
        core.require_administrator(principal, &format!("{verb} {name} (it touches the host)"))
            .await?;
    }
    Ok(())
}

/// The stored value as plain JSON, for the audit trail.
fn plain(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Json(j) => j.clone(),
    }
}

fn setting_error(e: SettingError) -> ApiError {
    ApiError::invalid(e.setting.clone(), e.reason)
}

fn type_name(ty: &SettingType) -> &'static str {
    ty.name()
}

pub fn definitions() -> pb::ListSettingDefinitionsResponse {
    let settings = settings::catalogue()
        .iter()
        .map(|d: &Definition| pb::SettingDefinition {
            name: d.name.to_owned(),
            r#type: type_name(&d.ty).to_owned(),
            default_value: d.default.as_ref().map(value_to_proto),
            description: d.description.to_owned(),
            allowed_values: d
                .ty
                .allowed_values()
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            aliases: d.aliases.iter().map(|a| (*a).to_owned()).collect(),
            resolution: d.resolution.describe().to_owned(),
            unit: d.unit.map(|u| u.as_str().to_owned()).unwrap_or_default(),
        })
        .collect();
    pb::ListSettingDefinitionsResponse { settings }
}

fn to_proto(row: &group_setting::Model) -> ApiResult<pb::GroupSetting> {
    let value = Value::from_storage(&row.value)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored setting {}: {e}", row.name)))?;
    Ok(pb::GroupSetting {
        group_id: row.group_id.clone(),
        name: row.name.clone(),
        value: Some(value_to_proto(&value)),
        updated_at: Some(timestamp(row.updated_at)),
    })
}

pub async fn set(
    core: &Core,
    principal: &Principal,
    req: pb::SetGroupSettingRequest,
) -> ApiResult<pb::GroupSetting> {
    core.require(principal, permissions::SETTINGS_MODIFY)
        .await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    if req.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "is required"));
    }
    let (def, value) = match (&req.value, req.raw_value.is_empty()) {
        (Some(v), true) => {
            let v = value_from_proto(req.name.trim(), v)?;
            settings::validate_named(req.name.trim(), v).map_err(setting_error)?
        }
        (None, false) => {
            settings::parse_named(req.name.trim(), &req.raw_value).map_err(setting_error)?
        }
        (Some(_), false) => {
            return Err(ApiError::invalid(
                "raw_value",
                "give either value or raw_value, not both",
            ));
        }
        (None, true) => return Err(ApiError::invalid("value", "is required (or raw_value)")),
    };
    require_for(core, principal, def.name, "setting").await?;
    let row = group_setting::Model {
        group_id: group.id.clone(),
        name: def.name.to_owned(),
        value: value.to_storage(),
        updated_at: Utc::now(),
    };
    let workspace = match (&def.ty, &value) {
        (SettingType::Image, Value::String(id)) if !id.is_empty() => Some(id.as_str()),
        _ => None,
    };
    let change = Change::new(principal, "setting.set", format!("group:{}", group.id))
        .detail(serde_json::json!({"name": def.name, "value": plain(&value)}));
    core.repo
        .set_setting(row.clone(), workspace, def.name == "administrator", change)
        .await?;
    core.invalidate();
    to_proto(&row)
}

pub async fn unset(
    core: &Core,
    principal: &Principal,
    req: pb::UnsetGroupSettingRequest,
) -> ApiResult<pb::UnsetGroupSettingResponse> {
    core.require(principal, permissions::SETTINGS_MODIFY)
        .await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let def = settings::definition_for(req.name.trim()).map_err(setting_error)?;
    require_for(core, principal, def.name, "unsetting").await?;
    let change = Change::new(principal, "setting.unset", format!("group:{}", group.id))
        .detail(serde_json::json!({"name": def.name}));
    let removed = core
        .repo
        .unset_setting(&group.id, def.name, def.name == "administrator", change)
        .await?;
    core.invalidate();
    Ok(pb::UnsetGroupSettingResponse { removed })
}

pub async fn list(
    core: &Core,
    principal: &Principal,
    req: pb::ListGroupSettingsRequest,
) -> ApiResult<pb::ListGroupSettingsResponse> {
    core.require(principal, permissions::SETTINGS_VIEW).await?;
    let group = existing(core, "group_id", &req.group_id).await?;
    let rows = core
        .repo
        .settings_of(std::slice::from_ref(&group.id))
        .await?;
    Ok(pb::ListGroupSettingsResponse {
        settings: rows.iter().map(to_proto).collect::<ApiResult<_>>()?,
    })
}

pub async fn effective(
    core: &Core,
    principal: &Principal,
    req: pb::ResolveEffectivePolicyRequest,
) -> ApiResult<pb::EffectivePolicy> {
    let user_id = core
        .self_or(principal, &req.user_id, permissions::SETTINGS_VIEW)
        .await?;
    let policy = core.user_policy(&user_id).await?;
    let settings = policy
        .resolved
        .iter()
        .map(|r| pb::EffectiveSetting {
            name: r.name.to_owned(),
            value: r.value.as_ref().map(value_to_proto),
            is_default: r.is_default,
        })
        .collect();
    Ok(pb::EffectivePolicy { user_id, settings })
}

pub async fn explain(
    core: &Core,
    principal: &Principal,
    req: pb::ResolveEffectivePolicyRequest,
) -> ApiResult<pb::PolicyExplanation> {
    let user_id = core
        .self_or(principal, &req.user_id, permissions::SETTINGS_VIEW)
        .await?;
    let policy = core.user_policy(&user_id).await?;
    let groups = policy
        .groups
        .iter()
        .map(|g| pb::GroupRef {
            group_id: g.id.clone(),
            name: g.name.clone(),
            priority: g.priority,
        })
        .collect();
    let settings = policy
        .resolved
        .iter()
        .map(|r| pb::SettingExplanation {
            name: r.name.to_owned(),
            value: r.value.as_ref().map(value_to_proto),
            is_default: r.is_default,
            supplied_by: r.supplied_by.iter().map(group_ref).collect(),
            overridden: r
                .overridden
                .iter()
                .map(|(g, v)| pb::GroupValue {
                    group: Some(group_ref(g)),
                    value: Some(value_to_proto(v)),
                })
                .collect(),
        })
        .collect();
    Ok(pb::PolicyExplanation {
        user_id,
        groups,
        settings,
    })
}
