//! A workspace's run_config at launch. Parsing and validation are the kit's
//! ([`atrium_service_kit::run_config`]), the same validator policy applies when the run_config
//! is written, so what policy saved the agent runs and what the agent refuses policy never
//! saves. This module only names the field (`spec.run_config_json`) and converts the kit's
//! types into Docker's.

use std::collections::HashMap;

use atrium_service_kit::ApiError;
use bollard::models::{DeviceMapping, ResourcesUlimits};

pub use atrium_service_kit::run_config::{ALLOWED_KEYS, RunConfig, size};

/// How the run_config is named in errors.
pub const FIELD: &str = "spec.run_config_json";

/// Parses and validates the run_config of a session spec; an empty string means `{}`.
pub fn parse(json: &str) -> Result<RunConfig, ApiError> {
    RunConfig::parse(FIELD, json)
}

pub fn devices(rc: &RunConfig) -> Option<Vec<DeviceMapping>> {
    rc.devices.as_ref().map(|devices| {
        devices
            .iter()
            .map(|d| DeviceMapping {
                path_on_host: Some(d.host_path.clone()),
                path_in_container: Some(d.container_path.clone()),
                cgroup_permissions: Some(d.permissions.clone()),
            })
            .collect()
    })
}

pub fn ulimits(rc: &RunConfig) -> Option<Vec<ResourcesUlimits>> {
    rc.ulimits.as_ref().map(|limits| {
        limits
            .iter()
            .map(|u| ResourcesUlimits {
                name: Some(u.name.clone()),
                soft: Some(u.soft),
                hard: Some(u.hard),
            })
            .collect()
    })
}

pub fn tmpfs(rc: &RunConfig) -> Option<HashMap<String, String>> {
    rc.tmpfs
        .as_ref()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub fn sysctls(rc: &RunConfig) -> Option<HashMap<String, String>> {
    rc.sysctls
        .as_ref()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}
