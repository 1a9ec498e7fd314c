//! Policy messages as JSON for `--output json` (field names as in policy.proto, timestamps as
//! RFC 3339, setting values as plain JSON values), and setting values and their provenance as
//! text for tables.

use atrium_proto::policy::v1::{
    EffectivePermissions, EffectiveSetting, ExecConfig, ExecHook, Group, GroupMembership,
    GroupPermissions, GroupRef, GroupSetting, GroupValue, SettingDefinition, SettingExplanation,
    SettingValue, Workspace, setting_value::Kind,
};
use serde_json::{Value, json};

use crate::json::time;

/// What a table shows for a setting that has no value (no group sets it and no default).
pub const NOT_SET: &str = "(not set)";

/// A setting value as text: `true`/`false`, integers, floats (always with a fraction, `2.0`),
/// strings as they are (`""` when empty), JSON compact; [`NOT_SET`] when absent.
pub fn value_text(value: Option<&SettingValue>) -> String {
    match value.and_then(|v| v.kind.as_ref()) {
        None => NOT_SET.to_owned(),
        Some(Kind::BoolValue(b)) => b.to_string(),
        Some(Kind::IntValue(i)) => i.to_string(),
        Some(Kind::FloatValue(f)) => float_text(*f),
        Some(Kind::StringValue(s)) if s.is_empty() => "\"\"".to_owned(),
        Some(Kind::StringValue(s)) => s.clone(),
        Some(Kind::JsonValue(j)) => serde_json::from_str::<Value>(j)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| j.clone()),
    }
}

fn float_text(f: f64) -> String {
    let text = f.to_string();
    if f.is_finite() && !text.contains('.') {
        format!("{text}.0")
    } else {
        text
    }
}

/// A setting value as a JSON value (a JSON setting as the document itself); null when absent.
pub fn value(value: Option<&SettingValue>) -> Value {
    match value.and_then(|v| v.kind.as_ref()) {
        None => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::IntValue(i)) => json!(i),
        Some(Kind::FloatValue(f)) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::JsonValue(j)) => {
            serde_json::from_str(j).unwrap_or_else(|_| Value::String(j.clone()))
        }
    }
}

/// Where an effective value came from: the supplying group(s), or `default`.
pub fn from_text(is_default: bool, supplied_by: &[GroupRef]) -> String {
    if is_default || supplied_by.is_empty() {
        return "default".to_owned();
    }
    supplied_by
        .iter()
        .map(|g| g.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The groups whose values lost, as `All Users=false, Staff=true`.
pub fn overrides_text(overridden: &[GroupValue]) -> String {
    overridden
        .iter()
        .map(|o| {
            let name = o.group.as_ref().map(|g| g.name.as_str()).unwrap_or("?");
            format!("{name}={}", value_text(o.value.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A setting's type for tables: `int (seconds)`, `enum: delete|stop|pause`.
pub fn type_text(d: &SettingDefinition) -> String {
    let mut text = d.r#type.clone();
    if !d.allowed_values.is_empty() {
        text = format!("{text}: {}", d.allowed_values.join("|"));
    }
    if !d.unit.is_empty() {
        text = format!("{text} ({})", d.unit);
    }
    text
}

pub fn group(g: &Group) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "priority": g.priority,
        "is_system": g.is_system,
        "member_count": g.member_count,
        "created_at": time(g.created_at.as_ref()),
        "updated_at": time(g.updated_at.as_ref()),
    })
}

pub fn membership(m: &GroupMembership) -> Value {
    json!({
        "group_id": m.group_id,
        "user_id": m.user_id,
        "added_at": time(m.added_at.as_ref()),
        "source": m.source,
    })
}

pub fn group_permissions(p: &GroupPermissions) -> Value {
    json!({ "group_id": p.group_id, "permissions": p.permissions })
}

pub fn effective_permissions(p: &EffectivePermissions) -> Value {
    json!({
        "user_id": p.user_id,
        "administrator": p.administrator,
        "permissions": p.permissions,
    })
}

pub fn group_setting(s: &GroupSetting) -> Value {
    json!({
        "group_id": s.group_id,
        "name": s.name,
        "value": value(s.value.as_ref()),
        "updated_at": time(s.updated_at.as_ref()),
    })
}

pub fn setting_definition(d: &SettingDefinition) -> Value {
    json!({
        "name": d.name,
        "type": d.r#type,
        "default_value": value(d.default_value.as_ref()),
        "description": d.description,
        "allowed_values": d.allowed_values,
        "aliases": d.aliases,
        "resolution": d.resolution,
        "unit": d.unit,
    })
}

pub fn group_ref(g: &GroupRef) -> Value {
    json!({ "group_id": g.group_id, "name": g.name, "priority": g.priority })
}

pub fn effective_setting(s: &EffectiveSetting) -> Value {
    json!({
        "name": s.name,
        "value": value(s.value.as_ref()),
        "is_default": s.is_default,
    })
}

pub fn setting_explanation(s: &SettingExplanation) -> Value {
    json!({
        "name": s.name,
        "value": value(s.value.as_ref()),
        "is_default": s.is_default,
        "supplied_by": s.supplied_by.iter().map(group_ref).collect::<Vec<_>>(),
        "overridden": s.overridden.iter().map(|o| json!({
            "group": o.group.as_ref().map(group_ref),
            "value": value(o.value.as_ref()),
        })).collect::<Vec<_>>(),
    })
}

fn exec_hook(h: Option<&ExecHook>) -> Value {
    match h {
        None => Value::Null,
        Some(h) => json!({
            "cmd": h.cmd,
            "user": h.user,
            "environment": h.environment,
            "workdir": h.workdir,
            "privileged": h.privileged,
        }),
    }
}

fn exec_config(c: Option<&ExecConfig>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "first_launch": exec_hook(c.first_launch.as_ref()),
            "go": exec_hook(c.go.as_ref()),
            "assign": exec_hook(c.assign.as_ref()),
        }),
    }
}

/// A workspace; `run_config_json` is kept as the text the server sent.
pub fn workspace(w: &Workspace) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "friendly_name": w.friendly_name,
        "description": w.description,
        "categories": w.categories,
        "enabled": w.enabled,
        "hidden": w.hidden,
        "cores": w.cores,
        "memory_mib": w.memory_mib,
        "gpu_count": w.gpu_count,
        "require_gpu": w.require_gpu,
        "run_config_json": w.run_config_json,
        "exec_config": exec_config(w.exec_config.as_ref()),
        "volume_mappings": w.volume_mappings.iter().map(|v| json!({
            "host_path": v.host_path,
            "container_path": v.container_path,
            "mode": v.mode,
        })).collect::<Vec<_>>(),
        "persistent_profile_path": w.persistent_profile_path,
        "session_time_limit_secs": w.session_time_limit_secs,
        "zone_id": w.zone_id,
        "thumbnail_url": w.thumbnail_url,
        "created_at": time(w.created_at.as_ref()),
        "updated_at": time(w.updated_at.as_ref()),
        "host_access_withheld": w.host_access_withheld,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(kind: Kind) -> Option<SettingValue> {
        Some(SettingValue { kind: Some(kind) })
    }

    fn gref(name: &str) -> GroupRef {
        GroupRef {
            group_id: format!("id-{name}"),
            name: name.into(),
            priority: 10,
        }
    }

    #[test]
    fn values_as_text() {
        assert_eq!(value_text(v(Kind::BoolValue(true)).as_ref()), "true");
        assert_eq!(value_text(v(Kind::BoolValue(false)).as_ref()), "false");
        assert_eq!(value_text(v(Kind::IntValue(-3600)).as_ref()), "-3600");
        assert_eq!(value_text(v(Kind::FloatValue(2.0)).as_ref()), "2.0");
        assert_eq!(value_text(v(Kind::FloatValue(0.25)).as_ref()), "0.25");
        assert_eq!(
            value_text(v(Kind::StringValue("delete".into())).as_ref()),
            "delete"
        );
        assert_eq!(
            value_text(v(Kind::StringValue(String::new())).as_ref()),
            "\"\""
        );
        assert_eq!(
            value_text(v(Kind::JsonValue("{ \"a\" : [1, 2] }".into())).as_ref()),
            r#"{"a":[1,2]}"#
        );
        assert_eq!(
            value_text(v(Kind::JsonValue("{oops".into())).as_ref()),
            "{oops"
        );
        assert_eq!(value_text(None), NOT_SET);
        assert_eq!(value_text(Some(&SettingValue { kind: None })), NOT_SET);
    }

    #[test]
    fn values_as_json() {
        assert_eq!(value(v(Kind::BoolValue(true)).as_ref()), json!(true));
        assert_eq!(value(v(Kind::IntValue(300)).as_ref()), json!(300));
        assert_eq!(value(v(Kind::FloatValue(1.5)).as_ref()), json!(1.5));
        assert_eq!(value(v(Kind::StringValue("x".into())).as_ref()), json!("x"));
        assert_eq!(
            value(v(Kind::JsonValue(r#"{"a":1}"#.into())).as_ref()),
            json!({"a": 1})
        );
        assert_eq!(
            value(v(Kind::JsonValue("nope".into())).as_ref()),
            json!("nope")
        );
        assert_eq!(value(v(Kind::FloatValue(f64::NAN)).as_ref()), json!("NaN"));
        assert!(value(None).is_null());
    }

    #[test]
    fn provenance_as_text() {
        assert_eq!(from_text(true, &[]), "default");
        assert_eq!(from_text(false, &[]), "default");
        assert_eq!(from_text(false, &[gref("Staff")]), "Staff");
        assert_eq!(
            from_text(false, &[gref("Staff"), gref("All Users")]),
            "Staff, All Users"
        );
        let overridden = vec![
            GroupValue {
                group: Some(gref("All Users")),
                value: v(Kind::BoolValue(false)),
            },
            GroupValue {
                group: Some(gref("Staff")),
                value: v(Kind::BoolValue(true)),
            },
        ];
        assert_eq!(overrides_text(&overridden), "All Users=false, Staff=true");
        assert_eq!(overrides_text(&[]), "");
    }

    #[test]
    fn types_name_their_values_and_units() {
        let enumeration = SettingDefinition {
            r#type: "enum".into(),
            allowed_values: vec!["delete".into(), "stop".into()],
            ..Default::default()
        };
        assert_eq!(type_text(&enumeration), "enum: delete|stop");
        let seconds = SettingDefinition {
            r#type: "int".into(),
            unit: "seconds".into(),
            ..Default::default()
        };
        assert_eq!(type_text(&seconds), "int (seconds)");
    }

    #[test]
    fn explanations_carry_groups_and_values() {
        let s = SettingExplanation {
            name: "allow_kasm_pause".into(),
            value: v(Kind::BoolValue(true)),
            is_default: false,
            supplied_by: vec![gref("Staff")],
            overridden: vec![GroupValue {
                group: Some(gref("All Users")),
                value: v(Kind::BoolValue(false)),
            }],
        };
        let j = setting_explanation(&s);
        assert_eq!(j["value"], true);
        assert_eq!(j["supplied_by"][0]["name"], "Staff");
        assert_eq!(j["overridden"][0]["group"]["name"], "All Users");
        assert_eq!(j["overridden"][0]["value"], false);
    }
}
