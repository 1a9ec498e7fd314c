//! A workspace's run_config: the `docker run` parameters an admin may set, as a JSON object
//! with docker-py's key names. Only the keys in [`ALLOWED_KEYS`] are accepted; any other is
//! refused by name, as is a value of the wrong shape.

use std::collections::{BTreeMap, HashMap};

use atrium_service_kit::ApiError;
use bollard::models::{DeviceMapping, ResourcesUlimits};
use serde_json::{Map, Value};

pub use atrium_service_kit::run_config::ALLOWED_KEYS;

/// The parsed run_config. How each key combines with the agent's defaults is
/// [`super::build`]'s business.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunConfig {
    pub hostname: Option<String>,
    pub environment: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub shm_size: Option<i64>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub dns: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub cap_add: Vec<String>,
    pub cap_drop: Option<Vec<String>>,
    pub security_opt: Vec<String>,
    pub privileged: Option<bool>,
    pub network: Option<String>,
    pub tmpfs: Option<HashMap<String, String>>,
    pub devices: Option<Vec<DeviceMapping>>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub ulimits: Option<Vec<ResourcesUlimits>>,
    pub sysctls: Option<HashMap<String, String>>,
}

const FIELD: &str = "spec.run_config_json";

fn invalid(key: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(format!("{FIELD}.{key}"), message)
}

impl RunConfig {
    /// Parses the JSON object; an empty string means `{}`.
    pub fn parse(json: &str) -> Result<Self, ApiError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_str(json)
            .map_err(|e| ApiError::invalid(FIELD, format!("not valid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(ApiError::invalid(FIELD, "must be a JSON object"));
        };
        let mut config = Self::default();
        for (key, value) in object {
            config.set(&key, value)?;
        }
        Ok(config)
    }

    fn set(&mut self, key: &str, v: Value) -> Result<(), ApiError> {
        match key {
            "hostname" => self.hostname = Some(string(key, v)?),
            "environment" => self.environment = pairs(key, v, '=')?,
            "labels" => {
                let labels = string_map(key, v)?;
                if let Some((reserved, _)) = labels.iter().find(|(k, _)| k.starts_with("atrium.")) {
                    return Err(invalid(
                        key,
                        format!("label {reserved:?}: the atrium. prefix is reserved"),
                    ));
                }
                self.labels = labels.into_iter().collect();
            }
            "shm_size" => self.shm_size = Some(size(key, &v)?),
            "user" => self.user = Some(string(key, v)?),
            "working_dir" => self.working_dir = Some(string(key, v)?),
            "dns" => self.dns = Some(strings(key, v)?),
            "extra_hosts" => {
                let hosts = match v {
                    Value::Object(map) => object_pairs(key, map)?
                        .into_iter()
                        .map(|(host, ip)| format!("{host}:{ip}"))
                        .collect(),
                    other => strings(key, other)?,
                };
                self.extra_hosts = Some(hosts);
            }
            "cap_add" => self.cap_add = strings(key, v)?,
            "cap_drop" => self.cap_drop = Some(strings(key, v)?),
            "security_opt" => self.security_opt = strings(key, v)?,
            "privileged" => self.privileged = Some(boolean(key, v)?),
            "network" => self.network = Some(string(key, v)?),
            "tmpfs" => {
                let mounts = match v {
                    Value::Object(map) => object_pairs(key, map)?,
                    other => strings(key, other)?
                        .into_iter()
                        .map(|s| match s.split_once(':') {
                            Some((path, options)) => (path.to_owned(), options.to_owned()),
                            None => (s, String::new()),
                        })
                        .collect(),
                };
                self.tmpfs = Some(mounts.into_iter().collect());
            }
            "devices" => {
                let devices = strings(key, v)?
                    .iter()
                    .map(|d| device(key, d))
                    .collect::<Result<_, _>>()?;
                self.devices = Some(devices);
            }
            "entrypoint" => self.entrypoint = Some(command(key, v)?),
            "command" => self.command = Some(command(key, v)?),
            "read_only" => self.read_only = Some(boolean(key, v)?),
            "ulimits" => self.ulimits = Some(ulimits(key, v)?),
            "sysctls" => self.sysctls = Some(string_map(key, v)?.into_iter().collect()),
            other => {
                return Err(ApiError::invalid(
                    format!("{FIELD}.{other}"),
                    format!(
                        "key {other:?} is not allowed; allowed keys: {}",
                        ALLOWED_KEYS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn string(key: &str, v: Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(invalid(key, "must be a string")),
    }
}

fn boolean(key: &str, v: Value) -> Result<bool, ApiError> {
    v.as_bool()
        .ok_or_else(|| invalid(key, "must be true or false"))
}

/// A string, number or boolean as text (environment, label and sysctl values).
fn scalar(key: &str, v: Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(invalid(key, "values must be strings, numbers or booleans")),
    }
}

fn strings(key: &str, v: Value) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = v else {
        return Err(invalid(key, "must be a list of strings"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(invalid(key, "must be a list of strings")),
        })
        .collect()
}

fn object_pairs(key: &str, map: Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    map.into_iter()
        .map(|(k, v)| Ok((k, scalar(key, v)?)))
        .collect()
}

fn string_map(key: &str, v: Value) -> Result<Vec<(String, String)>, ApiError> {
    match v {
        Value::Object(map) => object_pairs(key, map),
        _ => Err(invalid(key, "must be an object of names to values")),
    }
}

/// An object `{NAME: value}` or a list of `NAME<sep>value` strings.
fn pairs(key: &str, v: Value, sep: char) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = match v {
        Value::Object(map) => object_pairs(key, map)?,
        other => strings(key, other)?
            .into_iter()
            .map(|s| match s.split_once(sep) {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (s, String::new()),
            })
            .collect(),
    };
    if pairs.iter().any(|(k, _)| k.is_empty() || k.contains('=')) {
        return Err(invalid(key, "names must be non-empty and contain no '='"));
    }
    Ok(pairs)
}

/// Bytes, as a number or a string with an optional unit: `"512m"`, `"1g"`, `"1024k"`, `"64mb"`.
pub fn size(key: &str, v: &Value) -> Result<i64, ApiError> {
    let bad = || {
        invalid(
            key,
            "must be a byte count or a size like \"512m\" or \"1g\"",
        )
    };
    let bytes = match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad)?,
        Value::String(s) => {
            let lower = s.trim().to_ascii_lowercase();
            let unitless = lower.strip_suffix('b').unwrap_or(&lower);
            let (digits, multiplier) = match unitless.chars().last() {
                Some('k') => (&unitless[..unitless.len() - 1], 1i64 << 10),
                Some('m') => (&unitless[..unitless.len() - 1], 1 << 20),
                Some('g') => (&unitless[..unitless.len() - 1], 1 << 30),
                _ => (unitless, 1),
            };
            let n: i64 = digits.trim().parse().map_err(|_| bad())?;
            n.checked_mul(multiplier).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if bytes <= 0 {
        return Err(bad());
    }
    Ok(bytes)
}

/// A list of words, or a string split like a shell would (quotes and backslashes honoured).
fn command(key: &str, v: Value) -> Result<Vec<String>, ApiError> {
    match v {
        Value::String(s) => {
            shell_words(&s).ok_or_else(|| invalid(key, "has an unterminated quote"))
        }
        other => strings(key, other),
    }
}

fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// `host[:container[:permissions]]`.
fn device(key: &str, spec: &str) -> Result<DeviceMapping, ApiError> {
    let mut parts = spec.split(':');
    let host = parts.next().unwrap_or_default();
    let container = parts.next().unwrap_or(host);
    let permissions = parts.next().unwrap_or("rwm");
    if !host.starts_with('/') || !container.starts_with('/') || parts.next().is_some() {
        return Err(invalid(
            key,
            format!("{spec:?}: expected /host/path[:/container/path[:permissions]]"),
        ));
    }
    if permissions.is_empty() || !permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid(
            key,
            format!("{spec:?}: permissions are r, w and m"),
        ));
    }
    Ok(DeviceMapping {
        path_on_host: Some(host.to_owned()),
        path_in_container: Some(container.to_owned()),
        cgroup_permissions: Some(permissions.to_owned()),
    })
}

/// A list of `{"name": …, "soft": n, "hard": n}` (keys in any case).
fn ulimits(key: &str, v: Value) -> Result<Vec<ResourcesUlimits>, ApiError> {
    let shape = || {
        invalid(
            key,
            "must be a list of {\"name\", \"soft\", \"hard\"} objects",
        )
    };
    let Value::Array(items) = v else {
        return Err(shape());
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Object(map) = item else {
                return Err(shape());
            };
            let get = |name: &str| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let name = get("name").and_then(Value::as_str).ok_or_else(shape)?;
            let soft = get("soft").and_then(Value::as_i64).ok_or_else(shape)?;
            let hard = get("hard").and_then(Value::as_i64).unwrap_or(soft);
            if map.len() > 3 || hard < soft {
                return Err(shape());
            }
            Ok(ResourcesUlimits {
                name: Some(name.to_owned()),
                soft: Some(soft),
                hard: Some(hard),
            })
        })
        .collect()
}
