//! The volume_mapping setting as a type: host paths bind-mounted into sessions.

use std::collections::BTreeMap;

use atrium_service_kit::host_path;
use serde_json::{Map, Value as Json};

/// The most host paths one group's volume_mapping may hold (checked by validation; a combined
/// mapping may hold more).
pub const MAX_VOLUME_ENTRIES: usize = 256;
/// The longest path accepted (Linux PATH_MAX).
const MAX_PATH_LEN: usize = 4096;

/// How the container sees a mounted path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountMode {
    /// `"rw"`.
    ReadWrite,
    /// `"ro"`.
    ReadOnly,
}

impl MountMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MountMode::ReadWrite => "rw",
            MountMode::ReadOnly => "ro",
        }
    }
}

/// Where one host path appears inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VolumeMount {
    /// Absolute, normalised container path; never `/`.
    pub bind: String,
    pub mode: MountMode,
}

/// `{"/host/path": {"bind": "/container/path", "mode": "rw"|"ro"}}`: absolute host paths (keys)
/// to mounts. Paths are absolute, without empty, `.` or `..` segments; a trailing `/` is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeMapping {
    pub mounts: BTreeMap<String, VolumeMount>,
}

impl VolumeMapping {
    /// Reads the JSON form, normalising paths and mode case. The error is the reason only (the
    /// caller names the setting). Does not apply [`MAX_VOLUME_ENTRIES`].
    pub fn from_json(json: &Json) -> Result<VolumeMapping, String> {
        let Json::Object(object) = json else {
            return Err(format!(
                "expected an object mapping host paths to {{\"bind\", \"mode\"}}, got {}",
                super::value::json_kind(json)
            ));
        };
        let mut mounts = BTreeMap::new();
        let mut binds = std::collections::BTreeSet::new();
        for (raw_host, entry) in object {
            let host = normalise_path("host path", raw_host)?;
            let mount = mount_from_json(&host, entry)?;
            if !binds.insert(mount.bind.clone()) {
                return Err(format!(
                    "container path \"{}\" is the target of two host paths; a session can mount only one there",
                    mount.bind
                ));
            }
            if mounts.insert(host.clone(), mount).is_some() {
                return Err(format!(
                    "host path \"{host}\" appears twice (once with a trailing \"/\")"
                ));
            }
        }
        Ok(VolumeMapping { mounts })
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Json {
        let object: Map<String, Json> = self
            .mounts
            .iter()
            .map(|(host, mount)| {
                let mut entry = Map::new();
                entry.insert("bind".to_owned(), Json::from(mount.bind.clone()));
                entry.insert("mode".to_owned(), Json::from(mount.mode.as_str()));
                (host.clone(), Json::Object(entry))
            })
            .collect();
        Json::Object(object)
    }
}

fn mount_from_json(host: &str, entry: &Json) -> Result<VolumeMount, String> {
    let Json::Object(fields) = entry else {
        return Err(format!(
            "the entry for \"{host}\" must be an object {{\"bind\", \"mode\"}}, got {}",
            super::value::json_kind(entry)
        ));
    };
    if let Some(extra) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "bind" | "mode"))
    {
        return Err(format!(
            "unknown key \"{extra}\" in the entry for \"{host}\" (allowed: bind, mode)"
        ));
    }
    let bind = match fields.get("bind") {
        Some(Json::String(path)) => normalise_path("bind path", path)?,
        Some(other) => {
            return Err(format!(
                "\"bind\" for \"{host}\" must be a string, got {}",
                super::value::json_kind(other)
            ));
        }
        None => return Err(format!("the entry for \"{host}\" needs \"bind\"")),
    };
    if bind == "/" {
        return Err(format!(
            "\"bind\" for \"{host}\" must not be \"/\" (the container's root)"
        ));
    }
    let mode = match fields.get("mode") {
        Some(Json::String(mode)) => match mode.trim().to_ascii_lowercase().as_str() {
            "rw" => MountMode::ReadWrite,
            "ro" => MountMode::ReadOnly,
            _ => {
                return Err(format!(
                    "\"mode\" for \"{host}\" must be \"rw\" or \"ro\", got \"{mode}\""
                ));
            }
        },
        Some(other) => {
            return Err(format!(
                "\"mode\" for \"{host}\" must be \"rw\" or \"ro\", got {}",
                super::value::json_kind(other)
            ));
        }
        None => {
            return Err(format!(
                "the entry for \"{host}\" needs \"mode\" (\"rw\" or \"ro\")"
            ));
        }
    };
    Ok(VolumeMount { bind, mode })
}

/// Absolute, no control characters, no empty / `.` / `..` segments; trailing `/`s dropped.
fn normalise_path(what: &str, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!("{what} is longer than {MAX_PATH_LEN} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{what} {path:?} contains control characters"));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "{what} \"{path}\" must be absolute (start with \"/\")"
        ));
    }
    // A trailing "/" is dropped; everything else follows the kit's one path rule (which the
    // agent applies at launch), so a saved mapping never fails there.
    let trimmed = host_path::trim_trailing_slashes(path);
    match host_path::problem(trimmed) {
        None => Ok(trimmed.to_owned()),
        Some(why) => Err(format!("{what} {why}")),
    }
}
