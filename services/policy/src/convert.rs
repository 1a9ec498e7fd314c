//! Conversions between rows, domain values and API messages, and shared input validation.

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::{ApiError, ApiResult};

use crate::entity::group;
use crate::settings::Value;

pub use atrium_service_kit::validate::{required_text, text, timestamp, uuid};

/// An http(s) URL with a host, or empty.
pub fn optional_url(field: &str, raw: &str) -> ApiResult<String> {
    let url = raw.trim();
    if url.is_empty() {
        return Ok(String::new());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or_default())
        .unwrap_or_default();
    if host.is_empty() || url.chars().any(char::is_whitespace) || url.len() > 2048 {
        return Err(ApiError::invalid(
            field,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(url.to_owned())
}

pub fn group_to_proto(g: &group::Model, member_count: u64) -> pb::Group {
    pb::Group {
        id: g.id.clone(),
        name: g.name.clone(),
        description: g.description.clone(),
        priority: g.priority,
        is_system: g.is_system,
        created_at: Some(timestamp(g.created_at)),
        updated_at: Some(timestamp(g.updated_at)),
        member_count: u32::try_from(member_count).unwrap_or(u32::MAX),
    }
}

pub fn group_ref(g: &crate::settings::GroupRef) -> pb::GroupRef {
    pb::GroupRef {
        group_id: g.id.clone(),
        name: g.name.clone(),
        priority: g.priority,
    }
}

pub fn value_to_proto(value: &Value) -> pb::SettingValue {
    use pb::setting_value::Kind;
    let kind = match value {
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Int(i) => Kind::IntValue(*i),
        Value::Float(f) => Kind::FloatValue(*f),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Json(j) => Kind::JsonValue(j.to_string()),
    };
    pb::SettingValue { kind: Some(kind) }
}

/// A typed value from the wire (JSON text is parsed; the settings validator checks the type).
pub fn value_from_proto(field: &str, value: &pb::SettingValue) -> ApiResult<Value> {
    use pb::setting_value::Kind;
    match &value.kind {
        Some(Kind::BoolValue(b)) => Ok(Value::Bool(*b)),
        Some(Kind::IntValue(i)) => Ok(Value::Int(*i)),
        Some(Kind::FloatValue(f)) => Ok(Value::Float(*f)),
        Some(Kind::StringValue(s)) => Ok(Value::String(s.clone())),
        Some(Kind::JsonValue(j)) => serde_json::from_str(j)
            .map(Value::Json)
            .map_err(|e| ApiError::invalid(field, format!("is not valid JSON: {e}"))),
        None => Err(ApiError::invalid(field, "no value given")),
    }
}
