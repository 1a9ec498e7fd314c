//! From a session to a container: validation ([`session`]), the admin's run_config
//! ([`run_config`]), and [`build`], which hardens the container and applies Kasm's conventions.
//!
//! Hardening, unless the run_config says otherwise: not privileged; `no-new-privileges`; every
//! capability dropped and [`crate::config::HardeningConfig::cap_add`] added back; a pids limit;
//! memory limited to the workspace's memory with no extra swap; CPU limited to its cores.
//!
//! How run_config combines with that: `cap_add` adds to the agent's set; `cap_drop` replaces
//! `ALL`; `security_opt` entries follow `no-new-privileges` (so `no-new-privileges:false`
//! wins); `privileged`, `shm_size` and the rest replace the default. Environment precedence:
//! run_config, then the session's environment, then the agent's own variables (`VNC_PW`,
//! `KASM_USER`, `KASM_USER_ID`), which always win. The agent's labels cannot be overridden.

pub mod run_config;
pub mod session;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, PortBinding};

use crate::config::HardeningConfig;
use crate::runtime::{ContainerSpec, FileEntry, FileKind};
pub use session::{SessionId, SessionSpec};

pub const LABEL_SESSION: &str = "atrium.session_id";
pub const LABEL_USER: &str = "atrium.user_id";
pub const LABEL_AGENT: &str = "atrium.agent_id";
pub const LABEL_WORKSPACE: &str = "atrium.workspace_id";
/// The resources a container was created with, so that listing containers (one engine call)
/// is enough to sum what the agent has allocated.
pub const LABEL_CORES: &str = "atrium.cores";
pub const LABEL_MEMORY_MIB: &str = "atrium.memory_mib";
pub const LABEL_GPUS: &str = "atrium.gpu_count";

/// Where Kasm images keep the session user's SSH keys.
pub const SSH_DIR: &str = "/home/kasm-user/.ssh";

/// What the agent contributes to every container it builds.
#[derive(Debug, Clone)]
pub struct BuildContext<'a> {
    pub agent_id: &'a str,
    pub publish_ip: IpAddr,
    pub session_port: u16,
    pub hardening: &'a HardeningConfig,
}

/// The container for `spec`, with `password` as its `VNC_PW`.
pub fn build(spec: &SessionSpec, ctx: &BuildContext<'_>, password: &str) -> ContainerSpec {
    let rc = &spec.run_config;
    let hardening = ctx.hardening;

    let mut env: BTreeMap<String, String> = rc.environment.iter().cloned().collect();
    env.extend(spec.environment.clone());
    env.insert("VNC_PW".into(), password.to_owned());
    if let Some((username, user_id)) = &spec.user_environment {
        env.insert("KASM_USER".into(), username.clone());
        env.insert("KASM_USER_ID".into(), user_id.clone());
    }

    let mut labels: HashMap<String, String> = rc.labels.clone().into_iter().collect();
    labels.extend([
        (LABEL_SESSION.to_owned(), spec.session_id.to_string()),
        (LABEL_USER.to_owned(), spec.user_id.clone()),
        (LABEL_AGENT.to_owned(), ctx.agent_id.to_owned()),
        (LABEL_WORKSPACE.to_owned(), spec.workspace_id.clone()),
        (LABEL_CORES.to_owned(), spec.cores.to_string()),
        (LABEL_MEMORY_MIB.to_owned(), spec.memory_mib.to_string()),
        (LABEL_GPUS.to_owned(), spec.gpu_count.to_string()),
    ]);

    let port = format!("{}/tcp", ctx.session_port);
    let memory = spec.memory_mib.saturating_mul(1 << 20);
    let mut cap_add = hardening.cap_add.clone();
    cap_add.extend(rc.cap_add.iter().cloned());
    let mut security_opt = vec!["no-new-privileges".to_owned()];
    security_opt.extend(rc.security_opt.iter().cloned());
    let binds = spec
        .volumes
        .iter()
        .map(|v| {
            let mode = if v.read_only { "ro" } else { "rw" };
            format!("{}:{}:{mode}", v.host_path, v.container_path)
        })
        .collect::<Vec<_>>();
    let device_requests = (spec.gpu_count > 0).then(|| {
        vec![DeviceRequest {
            count: Some(i64::from(spec.gpu_count)),
            capabilities: Some(vec![vec!["gpu".to_owned()]]),
            ..Default::default()
        }]
    });

    let host_config = HostConfig {
        nano_cpus: Some((spec.cores * 1e9).round() as i64),
        memory: Some(memory),
        memory_swap: Some(memory),
        pids_limit: Some(hardening.pids_limit),
        shm_size: Some(rc.shm_size.unwrap_or(hardening.shm_size_mib << 20)),
        privileged: Some(rc.privileged.unwrap_or(false)),
        security_opt: Some(security_opt),
        cap_drop: Some(rc.cap_drop.clone().unwrap_or_else(|| vec!["ALL".into()])),
        cap_add: Some(cap_add),
        binds: (!binds.is_empty()).then_some(binds),
        device_requests,
        port_bindings: Some(HashMap::from([(
            port.clone(),
            Some(vec![PortBinding {
                host_ip: Some(ctx.publish_ip.to_string()),
                host_port: Some(String::new()),
            }]),
        )])),
        network_mode: rc.network.clone(),
        dns: rc.dns.clone(),
        extra_hosts: rc.extra_hosts.clone(),
        tmpfs: run_config::tmpfs(rc),
        devices: run_config::devices(rc),
        readonly_rootfs: rc.read_only,
        ulimits: run_config::ulimits(rc),
        sysctls: run_config::sysctls(rc),
        ..Default::default()
    };

    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: rc.hostname.clone(),
        user: rc.user.clone(),
        working_dir: rc.working_dir.clone(),
        entrypoint: rc.entrypoint.clone(),
        cmd: rc.command.clone(),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: Some(vec![port]),
        host_config: Some(host_config),
        ..Default::default()
    };

    ContainerSpec {
        name: spec.session_id.container_name(),
        body,
        files: files(spec, hardening),
    }
}

/// File mappings and SSH keys as archive entries, owned by the session user.
fn files(spec: &SessionSpec, hardening: &HardeningConfig) -> Vec<FileEntry> {
    let entry = |path: String, kind: FileKind, mode: u32| FileEntry {
        path,
        kind,
        mode,
        uid: hardening.session_uid,
        gid: hardening.session_gid,
    };
    let mut entries: Vec<FileEntry> = spec
        .files
        .iter()
        .map(|f| {
            entry(
                f.destination.clone(),
                FileKind::File(f.content.clone()),
                f.mode,
            )
        })
        .collect();
    if let Some(keys) = &spec.ssh_keys {
        let mut ssh = Vec::new();
        if let Some(private) = &keys.private_key {
            let mut content = private.clone().into_bytes();
            if !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            ssh.push(entry(
                format!("{SSH_DIR}/id_ed25519"),
                FileKind::File(content),
                0o600,
            ));
        }
        if let Some(public) = &keys.public_key {
            let mut content = public.trim_end().as_bytes().to_vec();
            content.push(b'\n');
            ssh.push(entry(
                format!("{SSH_DIR}/id_ed25519.pub"),
                FileKind::File(content),
                0o644,
            ));
        }
        if !ssh.is_empty() {
            entries.push(entry(SSH_DIR.to_owned(), FileKind::Directory, 0o700));
            entries.extend(ssh);
        }
    }
    entries
}

/// The resources recorded on a container's labels: `(cores, memory_mib, gpus)`.
pub fn resources_from_labels(labels: &HashMap<String, String>) -> (f64, i64, u32) {
    let get = |key: &str| labels.get(key).map(String::as_str).unwrap_or("0");
    (
        get(LABEL_CORES).parse().unwrap_or(0.0),
        get(LABEL_MEMORY_MIB).parse().unwrap_or(0),
        get(LABEL_GPUS).parse().unwrap_or(0),
    )
}
