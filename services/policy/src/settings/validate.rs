//! Checking and normalising values against their definition, and parsing CLI text.
//!
//! Every refusal is a [`SettingError`] naming the setting (canonical name) and saying why.

use super::catalogue::{self, STRING_MAX_LEN};
use super::definition::{Definition, SettingType};
use super::error::SettingError;
use super::usage_limit::UsageLimit;
use super::value::Value;
use super::volume::{MAX_VOLUME_ENTRIES, VolumeMapping};

/// The largest JSON setting (run_config), serialised.
pub const JSON_MAX_BYTES: usize = 64 * 1024;
/// The longest policy id.
const POLICY_ID_MAX_LEN: usize = 256;
/// How much of a refused text value an error message repeats.
const ECHO_MAX_CHARS: usize = 80;

/// The definition for a canonical name or alias, or an error naming it (with a suggestion).
pub fn definition_for(name: &str) -> Result<&'static Definition, SettingError> {
    catalogue::lookup(name).ok_or_else(|| SettingError::unknown(name))
}

/// Looks the setting up by name or alias and validates `value` for it.
pub fn validate_named(
    name: &str,
    value: Value,
) -> Result<(&'static Definition, Value), SettingError> {
    let def = definition_for(name)?;
    Ok((def, validate(def, value)?))
}

/// Looks the setting up by name or alias and parses `raw` for it.
pub fn parse_named(name: &str, raw: &str) -> Result<(&'static Definition, Value), SettingError> {
    let def = definition_for(name)?;
    Ok((def, parse_raw(def, raw)?))
}

/// Checks `value` against `def` and returns its normal form:
/// - a JSON scalar given for a scalar setting is unwrapped (`Json(true)` → `Bool(true)`);
/// - an integer for a float setting becomes a float; a whole float for an int setting an int;
/// - enum words are trimmed and lowercased; URLs, images and policy ids are trimmed;
/// - an image id becomes a lowercase hyphenated UUID;
/// - usage_limit and volume_mapping are rewritten in their canonical JSON form.
pub fn validate(def: &Definition, value: Value) -> Result<Value, SettingError> {
    let fail = |reason: String| SettingError::new(def.name, reason);
    let value = match def.ty {
        SettingType::Json | SettingType::UsageLimit | SettingType::VolumeMapping => value,
        _ => unwrap_json_scalar(value),
    };
    match (def.ty, value) {
        (SettingType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (SettingType::Int { min, max }, Value::Int(i)) => {
            check_range(def, i, min, max).map_err(fail)?;
            Ok(Value::Int(i))
        }
        (SettingType::Int { min, max }, Value::Float(x)) => {
            let i = whole(x).ok_or_else(|| fail(format!("expected an integer, got {x}")))?;
            check_range(def, i, min, max).map_err(fail)?;
            Ok(Value::Int(i))
        }
        (SettingType::Float { min, max }, value @ (Value::Int(_) | Value::Float(_))) => {
            let x = value.as_float().unwrap_or(f64::NAN);
            if !x.is_finite() {
                return Err(fail(format!("must be a finite number, got {x}")));
            }
            check_range(def, x, min, max).map_err(fail)?;
            Ok(Value::Float(x))
        }
        (SettingType::String { max_len }, Value::String(s)) => {
            if s.len() > max_len {
                return Err(fail(format!(
                    "must be at most {max_len} bytes long, got {}",
                    s.len()
                )));
            }
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return Err(fail("must not contain control characters".to_owned()));
            }
            Ok(Value::String(s))
        }
        (SettingType::Url, Value::String(s)) => check_url(s.trim()).map_err(fail),
        (SettingType::Enum(allowed), Value::String(s)) => {
            let word = s.trim().to_ascii_lowercase();
            if allowed.contains(&word.as_str()) {
                Ok(Value::String(word))
            } else {
                Err(fail(format!(
                    "must be one of {}, got \"{}\"",
                    allowed.join(", "),
                    echo(&s)
                )))
            }
        }
        (SettingType::Image, Value::String(s)) => check_image(s.trim()).map_err(fail),
        (SettingType::Policy, Value::String(s)) => check_policy(s.trim()).map_err(fail),
        (SettingType::Json, Value::Json(j @ serde_json::Value::Object(_)))
            if def.name == "run_config" && j.to_string().len() <= JSON_MAX_BYTES =>
        {
            // The one run_config validator, shared with workspaces and the agent.
            atrium_service_kit::run_config::RunConfig::from_json(def.name, &j).map_err(
                |e| match e {
                    atrium_service_kit::ApiError::InvalidArgument { field, message } => {
                        SettingError::new(field, message)
                    }
                    other => SettingError::new(def.name, other.to_string()),
                },
            )?;
            Ok(Value::Json(j))
        }
        (SettingType::Json, Value::Json(j @ serde_json::Value::Object(_))) => {
            let size = j.to_string().len();
            if size > JSON_MAX_BYTES {
                return Err(fail(format!(
                    "must be at most {JSON_MAX_BYTES} bytes of JSON, got {size}"
                )));
            }
            Ok(Value::Json(j))
        }
        (SettingType::UsageLimit, Value::Json(j)) => UsageLimit::from_json(&j)
            .map(|limit| Value::Json(limit.to_json()))
            .map_err(fail),
        (SettingType::VolumeMapping, Value::Json(j)) => {
            let mapping = VolumeMapping::from_json(&j).map_err(fail)?;
            if mapping.mounts.len() > MAX_VOLUME_ENTRIES {
                return Err(fail(format!(
                    "at most {MAX_VOLUME_ENTRIES} host paths, got {}",
                    mapping.mounts.len()
                )));
            }
            Ok(Value::Json(mapping.to_json()))
        }
        (ty, other) => Err(fail(format!(
            "expected {}, got {}",
            ty.expected(),
            other.kind()
        ))),
    }
}

/// Parses the text form of a value (as the CLI passes it) by the setting's type, then validates:
/// booleans `true`/`false`/`yes`/`no`/`on`/`off`/`1`/`0` (any case), integers, decimal numbers,
/// JSON for json-shaped settings; everything else is the text itself (trimmed, except free text).
pub fn parse_raw(def: &Definition, raw: &str) -> Result<Value, SettingError> {
    let fail = |reason: String| SettingError::new(def.name, reason);
    let text = raw.trim();
    let value = match def.ty {
        SettingType::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Value::Bool(true),
            "false" | "no" | "off" | "0" => Value::Bool(false),
            _ => {
                return Err(fail(format!(
                    "expected true or false (or yes/no), got \"{}\"",
                    echo(text)
                )));
            }
        },
        SettingType::Int { .. } => match (text.parse::<i64>(), text.parse::<f64>()) {
            (Ok(i), _) => Value::Int(i),
            (Err(_), Ok(x)) => Value::Float(x),
            (Err(_), Err(_)) => {
                return Err(fail(format!("expected an integer, got \"{}\"", echo(text))));
            }
        },
        SettingType::Float { .. } => match text.parse::<f64>() {
            Ok(x) => Value::Float(x),
            Err(_) => return Err(fail(format!("expected a number, got \"{}\"", echo(text)))),
        },
        SettingType::String { .. } => Value::String(raw.to_owned()),
        SettingType::Url | SettingType::Enum(_) | SettingType::Image | SettingType::Policy => {
            Value::String(text.to_owned())
        }
        SettingType::Json | SettingType::UsageLimit | SettingType::VolumeMapping => {
            match serde_json::from_str(text) {
                Ok(json) => Value::Json(json),
                Err(e) => return Err(fail(format!("not valid JSON: {e}"))),
            }
        }
    };
    validate(def, value)
}

/// `Json(true)` → `Bool(true)`, `Json(3)` → `Int(3)`, `Json(2.5)` → `Float(2.5)`,
/// `Json("x")` → `String("x")`; anything else is returned unchanged.
fn unwrap_json_scalar(value: Value) -> Value {
    match value {
        Value::Json(serde_json::Value::Bool(b)) => Value::Bool(b),
        Value::Json(serde_json::Value::String(s)) => Value::String(s),
        Value::Json(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => other,
    }
}

/// `x` as an i64 when it is finite, whole and in range.
fn whole(x: f64) -> Option<i64> {
    // 2^63 is exactly representable; every whole f64 below it fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (x.is_finite() && x.fract() == 0.0 && (-LIMIT..LIMIT).contains(&x)).then_some(x as i64)
}

/// `n` within `min..=max`; the reason names the bound and the unit.
fn check_range<N>(def: &Definition, n: N, min: N, max: N) -> Result<(), String>
where
    N: PartialOrd + std::fmt::Display + Default + Copy,
{
    let unit = def
        .unit
        .map(|u| format!(" {}", u.as_str()))
        .unwrap_or_default();
    if n < min {
        let zero = N::default();
        return Err(if min == zero {
            format!("must not be negative, got {n}")
        } else if n <= zero {
            format!("must be greater than 0, got {n}")
        } else {
            format!("must be at least {min}{unit}, got {n}")
        });
    }
    if n > max {
        return Err(format!("must be at most {max}{unit}, got {n}"));
    }
    Ok(())
}

/// Empty (none) or an http(s) URL with a host.
fn check_url(s: &str) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::String(String::new()));
    }
    if s.len() > STRING_MAX_LEN {
        return Err(format!("must be at most {STRING_MAX_LEN} bytes long"));
    }
    let url = url::Url::parse(s).map_err(|e| format!("\"{}\" is not a valid URL: {e}", echo(s)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http or https URL, got scheme \"{}\"",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{}\" has no host", echo(s)));
    }
    Ok(Value::String(s.to_owned()))
}

/// Empty (none) or a UUID, normalised to lowercase hyphenated form.
fn check_image(s: &str) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::String(String::new()));
    }
    uuid::Uuid::parse_str(s)
        .map(|id| Value::String(id.hyphenated().to_string()))
        .map_err(|_| {
            format!(
                "must be a workspace id (UUID) or empty, got \"{}\"",
                echo(s)
            )
        })
}

/// Empty (explicitly none) or an id of letters, digits, `-`, `_`, `.`, `:`.
fn check_policy(s: &str) -> Result<Value, String> {
    if s.len() > POLICY_ID_MAX_LEN {
        return Err(format!("must be at most {POLICY_ID_MAX_LEN} bytes long"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(format!(
            "must be a policy id (letters, digits, '-', '_', '.', ':') or empty, got \"{}\"",
            echo(s)
        ));
    }
    Ok(Value::String(s.to_owned()))
}

/// At most `ECHO_MAX_CHARS` of user text, for error messages.
fn echo(s: &str) -> String {
    let mut out: String = s.chars().take(ECHO_MAX_CHARS).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
