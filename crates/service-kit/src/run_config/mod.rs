//! A run_config: the `docker run` parameters an administrator may add to a session's container,
//! as a JSON object with docker-py's key names. This is the one validator: policy checks a
//! workspace's run_config and the group `run_config` setting with it when they are written, and
//! the agent parses the run_config it is asked to launch with it, so what policy accepts the
//! agent runs, and what the agent would refuse policy refuses with the field named.
//!
//! Only [`ALLOWED_KEYS`] are accepted; values are type- and range-checked (capability names,
//! IP addresses, sizes, host paths by [`crate::host_path`]). Errors name the field as
//! `<field>.<key>` or `<field>.<key>[<index>]`, e.g. `workspace.run_config_json.cap_add[1]`.
//! How each key combines with the agent's hardening is the agent's business, not this module's.

mod values;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use values::Key;

pub use values::{shell_words, size};

/// The keys a run_config may use.
pub const ALLOWED_KEYS: [&str; 20] = [
    "hostname",
    "environment",
    "labels",
    "shm_size",
    "user",
    "working_dir",
    "dns",
    "extra_hosts",
    "cap_add",
    "cap_drop",
    "security_opt",
    "privileged",
    "network",
    "tmpfs",
    "devices",
    "entrypoint",
    "command",
    "read_only",
    "ulimits",
    "sysctls",
];

/// The largest run_config accepted, serialised.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A host device passed into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub host_path: String,
    pub container_path: String,
    /// Some of `r`, `w`, `m`.
    pub permissions: String,
}

/// A resource limit (`ulimit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A validated run_config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunConfig {
    pub hostname: Option<String>,
    pub environment: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    /// Bytes.
    pub shm_size: Option<i64>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub dns: Option<Vec<String>>,
    /// `host:ip` entries.
    pub extra_hosts: Option<Vec<String>>,
    pub cap_add: Vec<String>,
    pub cap_drop: Option<Vec<String>>,
    pub security_opt: Vec<String>,
    pub privileged: Option<bool>,
    pub network: Option<String>,
    /// Mount point → mount options.
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub devices: Option<Vec<Device>>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub sysctls: Option<BTreeMap<String, String>>,
}

impl RunConfig {
    /// Parses JSON text; an empty (or blank) string means `{}`. `field` names the run_config in
    /// errors (`spec.run_config_json`, `workspace.run_config_json`, `run_config`).
    pub fn parse(field: &str, json: &str) -> Result<Self, ApiError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_str(json)
            .map_err(|e| ApiError::invalid(field, format!("is not valid JSON: {e}")))?;
        Self::from_json(field, &value)
    }

    /// Validates a parsed JSON value, which must be an object.
    pub fn from_json(field: &str, value: &Value) -> Result<Self, ApiError> {
        let Value::Object(object) = value else {
            return Err(ApiError::invalid(
                field,
                "must be a JSON object of docker-run parameters",
            ));
        };
        let size = value.to_string().len();
        if size > MAX_JSON_BYTES {
            return Err(ApiError::invalid(
                field,
                format!("must be at most {MAX_JSON_BYTES} bytes of JSON, got {size}"),
            ));
        }
        let mut config = Self::default();
        for (key, value) in object {
            config.set(&Key::new(field, key), value)?;
        }
        Ok(config)
    }

    /// Whether this run_config changes nothing (`{}`).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn set(&mut self, key: &Key<'_>, v: &Value) -> Result<(), ApiError> {
        match key.name {
            "hostname" => self.hostname = Some(values::hostname(key, v)?),
            "environment" => self.environment = values::environment(key, v)?,
            "labels" => self.labels = values::labels(key, v)?,
            "shm_size" => self.shm_size = Some(size(&key.field(), v)?),
            "user" => self.user = Some(values::user(key, v)?),
            "working_dir" => self.working_dir = Some(values::working_dir(key, v)?),
            "dns" => self.dns = Some(values::dns(key, v)?),
            "extra_hosts" => self.extra_hosts = Some(values::extra_hosts(key, v)?),
            "cap_add" => self.cap_add = values::capabilities(key, v)?,
            "cap_drop" => self.cap_drop = Some(values::capabilities(key, v)?),
            "security_opt" => self.security_opt = values::security_opt(key, v)?,
            "privileged" => self.privileged = Some(values::boolean(key, v)?),
            "network" => self.network = Some(values::network(key, v)?),
            "tmpfs" => self.tmpfs = Some(values::tmpfs(key, v)?),
            "devices" => self.devices = Some(values::devices(key, v)?),
            "entrypoint" => self.entrypoint = Some(values::command(key, v)?),
            "command" => self.command = Some(values::command(key, v)?),
            "read_only" => self.read_only = Some(values::boolean(key, v)?),
            "ulimits" => self.ulimits = Some(values::ulimits(key, v)?),
            "sysctls" => self.sysctls = Some(values::sysctls(key, v)?),
            other => {
                return Err(ApiError::invalid(
                    key.field(),
                    format!(
                        "docker-run parameter {other:?} is not allowed; allowed: {}",
                        ALLOWED_KEYS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}
