//! Checks for each run_config value: shapes, ranges and names. Every error names the field
//! (`<run_config>.<key>` or `<run_config>.<key>[<index>]`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{Device, Ulimit};
use crate::error::ApiError;
use crate::host_path;

/// One key of a run_config, for naming fields in errors.
pub(super) struct Key<'a> {
    base: &'a str,
    pub name: &'a str,
}

impl<'a> Key<'a> {
    pub fn new(base: &'a str, name: &'a str) -> Self {
        Key { base, name }
    }

    pub fn field(&self) -> String {
        format!("{}.{}", self.base, self.name)
    }

    pub fn at(&self, index: usize) -> String {
        format!("{}.{}[{index}]", self.base, self.name)
    }

    fn invalid(&self, message: impl Into<String>) -> ApiError {
        ApiError::invalid(self.field(), message)
    }
}

/// The longest single string value (a hostname, a user, an environment value, an option).
const MAX_TEXT: usize = 4096;
/// The most entries in any list or object.
const MAX_ITEMS: usize = 256;

fn text(field: &str, s: &str) -> Result<String, ApiError> {
    if s.len() > MAX_TEXT {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_TEXT} bytes"),
        ));
    }
    if s.contains('\0') {
        return Err(ApiError::invalid(field, "must not contain NUL characters"));
    }
    Ok(s.to_owned())
}

fn string(key: &Key<'_>, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => text(&key.field(), s),
        _ => Err(key.invalid("must be a string")),
    }
}

pub fn boolean(key: &Key<'_>, v: &Value) -> Result<bool, ApiError> {
    v.as_bool()
        .ok_or_else(|| key.invalid("must be true or false"))
}

/// A string, number or boolean as text (environment, label and sysctl values).
fn scalar(field: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => text(field, s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ApiError::invalid(
            field,
            "must be a string, a number or a boolean",
        )),
    }
}

fn list<'v>(key: &Key<'_>, v: &'v Value) -> Result<&'v Vec<Value>, ApiError> {
    match v {
        Value::Array(items) if items.len() <= MAX_ITEMS => Ok(items),
        Value::Array(_) => Err(key.invalid(format!("at most {MAX_ITEMS} entries"))),
        _ => Err(key.invalid("must be a list of strings")),
    }
}

/// A list of strings, each checked by `check(field_of_item, item)`.
fn strings(
    key: &Key<'_>,
    v: &Value,
    check: impl Fn(&str, &str) -> Result<String, ApiError>,
) -> Result<Vec<String>, ApiError> {
    list(key, v)?
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => check(&key.at(i), s),
            _ => Err(ApiError::invalid(key.at(i), "must be a string")),
        })
        .collect()
}

fn object<'v>(key: &Key<'_>, v: &'v Value) -> Result<&'v Map<String, Value>, ApiError> {
    match v {
        Value::Object(map) if map.len() <= MAX_ITEMS => Ok(map),
        Value::Object(_) => Err(key.invalid(format!("at most {MAX_ITEMS} entries"))),
        _ => Err(key.invalid("must be an object of names to values")),
    }
}

fn object_pairs(
    key: &Key<'_>,
    map: &Map<String, Value>,
) -> Result<Vec<(String, String)>, ApiError> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), scalar(&format!("{}.{k}", key.field()), v)?)))
        .collect()
}

fn no_control(field: &str, name: &str, what: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{what} must be non-empty, without control characters"),
        ));
    }
    Ok(())
}

pub fn hostname(key: &Key<'_>, v: &Value) -> Result<String, ApiError> {
    let name = string(key, v)?;
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(name)
    } else {
        Err(key.invalid("must be a host name (letters, digits, '-' and '.')"))
    }
}

/// An object `{NAME: value}` or a list of `NAME=value` strings.
pub fn environment(key: &Key<'_>, v: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = match v {
        Value::Object(_) => object_pairs(key, object(key, v)?)?,
        other => strings(key, other, text)?
            .into_iter()
            .map(|s| match s.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (s, String::new()),
            })
            .collect(),
    };
    for (name, _) in &pairs {
        if name.is_empty() || name.contains('=') || name.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                format!("{}.{name}", key.field()),
                "names must be non-empty, without '=' or control characters",
            ));
        }
    }
    Ok(pairs)
}

pub fn labels(key: &Key<'_>, v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let labels = object_pairs(key, object(key, v)?)?;
    for (name, _) in &labels {
        let field = format!("{}.{name}", key.field());
        no_control(&field, name, "label names")?;
        if name.starts_with("atrium.") {
            return Err(ApiError::invalid(field, "the atrium. prefix is reserved"));
        }
    }
    Ok(labels.into_iter().collect())
}

/// Bytes, as a number or a string with an optional unit: `"512m"`, `"1g"`, `"1024k"`, `"64mb"`;
/// more than 0 and at most 1 TiB.
pub fn size(field: &str, v: &Value) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            "must be a byte count or a size like \"512m\" or \"1g\" (more than 0, at most 1t)",
        )
    };
    let bytes = match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad)?,
        Value::String(s) => {
            let lower = s.trim().to_ascii_lowercase();
            let unitless = lower.strip_suffix('b').unwrap_or(&lower);
            let (digits, multiplier) = match unitless.char_indices().last() {
                Some((i, 'k')) => (&unitless[..i], 1i64 << 10),
                Some((i, 'm')) => (&unitless[..i], 1 << 20),
                Some((i, 'g')) => (&unitless[..i], 1 << 30),
                Some((i, 't')) => (&unitless[..i], 1 << 40),
                _ => (unitless, 1),
            };
            let n: i64 = digits.trim().parse().map_err(|_| bad())?;
            n.checked_mul(multiplier).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if bytes <= 0 || bytes > 1 << 40 {
        return Err(bad());
    }
    Ok(bytes)
}

/// `name`, `uid`, `name:group` or `uid:gid`.
pub fn user(key: &Key<'_>, v: &Value) -> Result<String, ApiError> {
    let user = string(key, v)?;
    let ok = !user.is_empty()
        && user.len() <= 256
        && user.split(':').count() <= 2
        && user.split(':').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
    if ok {
        Ok(user)
    } else {
        Err(key.invalid("must be a user or uid, optionally with :group or :gid"))
    }
}

pub fn working_dir(key: &Key<'_>, v: &Value) -> Result<String, ApiError> {
    let dir = string(key, v)?;
    host_path::host(&key.field(), &dir)?;
    Ok(dir)
}

pub fn dns(key: &Key<'_>, v: &Value) -> Result<Vec<String>, ApiError> {
    strings(key, v, |field, s| {
        s.parse::<IpAddr>()
            .map(|_| s.to_owned())
            .map_err(|_| ApiError::invalid(field, format!("{s:?} is not an IP address")))
    })
}

/// `{"host": "ip"}` or a list of `host:ip` strings; the address may be `host-gateway`.
pub fn extra_hosts(key: &Key<'_>, v: &Value) -> Result<Vec<String>, ApiError> {
    let entries: Vec<(String, String, String)> = match v {
        Value::Object(_) => object(key, v)?
            .iter()
            .map(|(host, ip)| {
                let field = format!("{}.{host}", key.field());
                Ok((field.clone(), host.clone(), scalar(&field, ip)?))
            })
            .collect::<Result<_, ApiError>>()?,
        other => strings(key, other, text)?
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (host, ip) = s.split_once(':').unwrap_or((&s, ""));
                (key.at(i), host.to_owned(), ip.to_owned())
            })
            .collect(),
    };
    entries
        .into_iter()
        .map(|(field, host, ip)| {
            let host_ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
            let ip_ok = ip == "host-gateway" || ip.parse::<IpAddr>().is_ok();
            if host_ok && ip_ok {
                Ok(format!("{host}:{ip}"))
            } else {
                Err(ApiError::invalid(
                    field,
                    "must map a host name to an IP address (or host-gateway)",
                ))
            }
        })
        .collect()
}

/// Capability names: `ALL` or uppercase letters, digits and `_`, with or without `CAP_`.
pub fn capabilities(key: &Key<'_>, v: &Value) -> Result<Vec<String>, ApiError> {
    strings(key, v, |field, s| {
        let name = s.strip_prefix("CAP_").unwrap_or(s);
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(s.to_owned())
        } else {
            Err(ApiError::invalid(
                field,
                format!("{s:?} is not a capability name (e.g. NET_ADMIN, SYS_PTRACE, ALL)"),
            ))
        }
    })
}

/// `no-new-privileges[:true|false]`, `seccomp=…`, `apparmor=…`, `label=…`,
/// `systempaths=unconfined`.
pub fn security_opt(key: &Key<'_>, v: &Value) -> Result<Vec<String>, ApiError> {
    strings(key, v, |field, s| {
        let s = text(field, s)?;
        let ok = match s.split_once(['=', ':']) {
            None => s == "no-new-privileges",
            Some(("no-new-privileges", value)) => matches!(value, "true" | "false"),
            Some(("seccomp" | "apparmor" | "label", value)) => {
                !value.is_empty() && !value.chars().any(char::is_control)
            }
            Some(("systempaths", value)) => value == "unconfined",
            Some(_) => false,
        };
        if ok {
            Ok(s)
        } else {
            Err(ApiError::invalid(
                field,
                format!(
                    "{s:?} is not a security option this platform passes on \
                     (no-new-privileges, seccomp=, apparmor=, label=, systempaths=unconfined)"
                ),
            ))
        }
    })
}

/// `bridge`, `host`, `none` or a network name. `container:<id>` is refused: it would join
/// another container's (possibly another user's session's) network namespace.
pub fn network(key: &Key<'_>, v: &Value) -> Result<String, ApiError> {
    let name = string(key, v)?;
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(key.invalid("must be bridge, host, none or a network name (container:… is refused)"))
    }
}

/// `{"/path": "options"}` or a list of `/path[:options]`.
pub fn tmpfs(key: &Key<'_>, v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let mounts: Vec<(String, String, String)> = match v {
        Value::Object(_) => object(key, v)?
            .iter()
            .map(|(path, options)| {
                let field = format!("{}.{path}", key.field());
                Ok((field.clone(), path.clone(), scalar(&field, options)?))
            })
            .collect::<Result<_, ApiError>>()?,
        other => strings(key, other, text)?
            .into_iter()
            .enumerate()
            .map(|(i, s)| match s.split_once(':') {
                Some((path, options)) => (key.at(i), path.to_owned(), options.to_owned()),
                None => (key.at(i), s, String::new()),
            })
            .collect(),
    };
    let mut out = BTreeMap::new();
    for (field, path, options) in mounts {
        host_path::mount_point(&field, &path)?;
        if options.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                field,
                "options must not contain control characters",
            ));
        }
        out.insert(path, options);
    }
    Ok(out)
}

/// A list of `/host/path[:/container/path[:permissions]]`.
pub fn devices(key: &Key<'_>, v: &Value) -> Result<Vec<Device>, ApiError> {
    let specs = strings(key, v, text)?;
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let field = key.at(i);
            let mut parts = spec.split(':');
            let host = parts.next().unwrap_or_default();
            let container = parts.next().unwrap_or(host);
            let permissions = parts.next().unwrap_or("rwm");
            if parts.next().is_some() {
                return Err(ApiError::invalid(
                    field,
                    format!("{spec:?}: expected /host/path[:/container/path[:permissions]]"),
                ));
            }
            host_path::mount_point(&field, host)?;
            host_path::mount_point(&field, container)?;
            if permissions.is_empty()
                || permissions.len() > 3
                || !permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
            {
                return Err(ApiError::invalid(
                    field,
                    format!("{spec:?}: permissions are r, w and m"),
                ));
            }
            Ok(Device {
                host_path: host.to_owned(),
                container_path: container.to_owned(),
                permissions: permissions.to_owned(),
            })
        })
        .collect()
}

/// A list of words, or a string split like a shell would (quotes and backslashes honoured).
pub fn command(key: &Key<'_>, v: &Value) -> Result<Vec<String>, ApiError> {
    match v {
        Value::String(s) => {
            text(&key.field(), s)?;
            shell_words(s).ok_or_else(|| key.invalid("has an unterminated quote"))
        }
        other => strings(key, other, text),
    }
}

/// Splits like a POSIX shell (no expansion); `None` on an unterminated quote or escape.
pub fn shell_words(s: &str) -> Option<Vec<String>> {
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

/// A list of `{"name": …, "soft": n, "hard": n}` (keys in any case); `hard` defaults to `soft`.
pub fn ulimits(key: &Key<'_>, v: &Value) -> Result<Vec<Ulimit>, ApiError> {
    list(key, v)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let shape = || {
                ApiError::invalid(
                    key.at(i),
                    "must be {\"name\", \"soft\", \"hard\"} with a lowercase name and -1 <= soft <= hard",
                )
            };
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
            let hard = match get("hard") {
                None => soft,
                Some(h) => h.as_i64().ok_or_else(shape)?,
            };
            let name_ok = !name.is_empty()
                && name.len() <= 32
                && name.chars().all(|c| c.is_ascii_lowercase());
            let expected = 2 + usize::from(get("hard").is_some());
            if !name_ok || map.len() != expected || soft < -1 || hard < soft {
                return Err(shape());
            }
            Ok(Ulimit {
                name: name.to_owned(),
                soft,
                hard,
            })
        })
        .collect()
}

/// `{"net.ipv4.ip_forward": 1}`: dotted lowercase names to values.
pub fn sysctls(key: &Key<'_>, v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let pairs = object_pairs(key, object(key, v)?)?;
    for (name, _) in &pairs {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
        if !ok {
            return Err(ApiError::invalid(
                format!("{}.{name}", key.field()),
                "is not a sysctl name",
            ));
        }
    }
    Ok(pairs.into_iter().collect())
}
