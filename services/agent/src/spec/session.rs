//! The session a container is made for, validated from the wire: every rule names the field
//! (`spec.<field>`) it checks.

use std::collections::{BTreeMap, HashSet};

use atrium_proto::agent::v1 as pb;
use atrium_service_kit::ApiError;

use super::run_config::{self, RunConfig};

/// A session id: 1–64 of `[A-Za-z0-9_.-]`, starting with a letter or digit (it names the
/// container, `atrium-session-<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let ok_start = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if raw.is_empty() || raw.len() > 64 || !ok_chars || !ok_start {
            return Err(ApiError::invalid(
                field,
                "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of this session's container.
    pub fn container_name(&self) -> String {
        format!("atrium-session-{}", self.0)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
}

/// A file mapping: content written at `destination` with permission bits from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    pub destination: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// The permission bits of a file mapping: the owner gets read, write and execute as flagged;
/// group and others get read and execute as flagged, never write.
pub fn file_mode(readable: bool, writable: bool, executable: bool) -> u32 {
    let r = if readable { 0o444 } else { 0 };
    let w = if writable { 0o200 } else { 0 };
    let x = if executable { 0o111 } else { 0 };
    r | w | x
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SshKeys {
    pub public_key: Option<String>,
    pub private_key: Option<String>,
}

/// A validated session specification.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub session_id: SessionId,
    pub user_id: String,
    pub workspace_id: String,
    pub image: String,
    pub cores: f64,
    pub memory_mib: i64,
    pub gpu_count: u32,
    pub environment: BTreeMap<String, String>,
    pub volumes: Vec<Volume>,
    pub files: Vec<FileMapping>,
    pub run_config: RunConfig,
    /// `KASM_USER` / `KASM_USER_ID`, when the user's policy exposes them.
    pub user_environment: Option<(String, String)>,
    /// Keys to put into `/home/kasm-user/.ssh`, when the user's policy injects them.
    pub ssh_keys: Option<SshKeys>,
}

/// Largest content of one file mapping.
pub const MAX_FILE_BYTES: usize = 1 << 20;

fn label_value(field: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(field, "required"));
    }
    if value.len() > 256 || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must be at most 256 characters without control characters",
        ));
    }
    Ok(value.to_owned())
}

/// An absolute host or container path that Docker's `host:container:mode` syntax can carry:
/// the kit's one path rule, which policy applies when the paths are written.
pub fn absolute_path(field: &str, path: &str) -> Result<(), ApiError> {
    atrium_service_kit::host_path::host(field, path)
}

fn env_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.contains('=') || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "environment names must be non-empty, without '=' or control characters",
        ));
    }
    Ok(())
}

impl TryFrom<pb::SessionSpec> for SessionSpec {
    type Error = ApiError;

    fn try_from(p: pb::SessionSpec) -> Result<Self, ApiError> {
        let session_id = SessionId::parse("spec.session_id", &p.session_id)?;
        let user_id = label_value("spec.user_id", &p.user_id)?;
        let workspace_id = label_value("spec.workspace_id", &p.workspace_id)?;
        if p.image.is_empty() || p.image.len() > 512 || p.image.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid(
                "spec.image",
                "must be a Docker image reference (non-empty, no spaces)",
            ));
        }
        if !(p.cores.is_finite() && p.cores > 0.0 && p.cores <= 1024.0) {
            return Err(ApiError::invalid(
                "spec.cores",
                "must be more than 0 and at most 1024",
            ));
        }
        if !(6..=(1 << 30)).contains(&p.memory_mib) {
            return Err(ApiError::invalid(
                "spec.memory_mib",
                "must be at least 6 (MiB)",
            ));
        }
        for name in p.environment.keys() {
            env_name(&format!("spec.environment.{name}"), name)?;
        }
        let mut volumes = Vec::with_capacity(p.volumes.len());
        for (i, v) in p.volumes.into_iter().enumerate() {
            absolute_path(&format!("spec.volumes[{i}].host_path"), &v.host_path)?;
            let container_field = format!("spec.volumes[{i}].container_path");
            atrium_service_kit::host_path::mount_point(&container_field, &v.container_path)?;
            volumes.push(Volume {
                host_path: v.host_path,
                container_path: v.container_path,
                read_only: v.read_only,
            });
        }
        let mut files = Vec::with_capacity(p.files.len());
        let mut seen = HashSet::new();
        for (i, f) in p.files.into_iter().enumerate() {
            let field = format!("spec.files[{i}].destination");
            absolute_path(&field, &f.destination)?;
            if f.destination.ends_with('/') {
                return Err(ApiError::invalid(
                    field,
                    "must name a file, not a directory",
                ));
            }
            if !seen.insert(f.destination.clone()) {
                return Err(ApiError::invalid(
                    field,
                    "two file mappings have this destination",
                ));
            }
            if f.content.len() > MAX_FILE_BYTES {
                return Err(ApiError::invalid(
                    format!("spec.files[{i}].content"),
                    "must be at most 1 MiB",
                ));
            }
            files.push(FileMapping {
                destination: f.destination,
                content: f.content,
                mode: file_mode(f.readable, f.writable, f.executable),
            });
        }
        let run_config = run_config::parse(&p.run_config_json)?;
        let user_environment = if p.expose_user_environment {
            let username = label_value("spec.username", &p.username).map_err(|_| {
                ApiError::invalid(
                    "spec.username",
                    "required when expose_user_environment is set",
                )
            })?;
            Some((username, user_id.clone()))
        } else {
            None
        };
        let non_empty = |s: String| (!s.trim().is_empty()).then_some(s);
        let ssh_keys = p.inject_ssh_keys.then(|| SshKeys {
            public_key: non_empty(p.ssh_public_key),
            private_key: non_empty(p.ssh_private_key),
        });
        let writes_files = !files.is_empty()
            || ssh_keys
                .as_ref()
                .is_some_and(|k| k.public_key.is_some() || k.private_key.is_some());
        if run_config.read_only == Some(true) && writes_files {
            return Err(ApiError::invalid(
                "spec.run_config_json.read_only",
                "file mappings and SSH keys cannot be written into a read-only root filesystem",
            ));
        }
        Ok(Self {
            session_id,
            user_id,
            workspace_id,
            image: p.image,
            cores: p.cores,
            memory_mib: p.memory_mib,
            gpu_count: p.gpu_count,
            environment: p.environment.into_iter().collect(),
            volumes,
            files,
            run_config,
            user_environment,
            ssh_keys,
        })
    }
}
