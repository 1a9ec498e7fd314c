//! The agent's configuration (see `atrium-agent --dump-config`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use atrium_service_kit::Secret;
use atrium_service_kit::telemetry::LogFormat;
use atrium_service_kit::tls::TlsConfig;
use serde::{Deserialize, Serialize};

/// Whether `host` reaches Docker safely: its unix socket, or TCP only with TLS. The one rule,
/// for the configuration and the runtime alike.
pub fn docker_host_is_secure(host: &str, with_tls: bool) -> bool {
    host.starts_with("unix://")
        || (with_tls && (host.starts_with("tcp://") || host.starts_with("https://")))
}

/// Client certificate, key and CA for Docker's TLS port (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Capacity figures that replace what the node reports (an operator's overcommit or reserve).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityOverrides {
    pub cores: Option<f64>,
    pub memory_mib: Option<i64>,
    pub gpus: Option<u32>,
}

/// How session containers are hardened unless an admin's run_config says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HardeningConfig {
    /// Capabilities added back after dropping all of them.
    pub cap_add: Vec<String>,
    /// Process (and thread) limit per container.
    pub pids_limit: i64,
    /// Size of `/dev/shm` (browsers need more than Docker's 64 MiB).
    pub shm_size_mib: i64,
    /// Owner of file mappings and injected SSH keys: Kasm images run as `kasm-user` (1000).
    pub session_uid: u64,
    pub session_gid: u64,
}

impl Default for HardeningConfig {
    fn default() -> Self {
        Self {
            // What Kasm images' start-up needs when it runs as root and drops to kasm-user:
            // fixing ownership of the home directory (CHOWN, DAC_OVERRIDE, FOWNER), switching
            // user (SETUID, SETGID), and signalling its own children across that switch (KILL).
            cap_add: [
                "CHOWN",
                "DAC_OVERRIDE",
                "FOWNER",
                "SETUID",
                "SETGID",
                "KILL",
            ]
            .map(String::from)
            .to_vec(),
            pids_limit: 4096,
            shm_size_mib: 512,
            session_uid: 1000,
            session_gid: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// HTTP address of `/metrics` (OpenMetrics text, for Prometheus); unset for none.
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// This agent's identity in heartbeats and on container labels; the hostname when unset.
    pub agent_id: Option<String>,
    pub zone: String,
    /// How others reach this node: the host in session answers (published ports) and in the
    /// heartbeat's gRPC address.
    pub advertise_host: String,
    /// The address session ports are published on; `advertise_host` when that is an IP
    /// address, else all interfaces.
    pub publish_ip: Option<IpAddr>,
    /// The port inside session containers that is published (Kasm's 6901).
    pub session_port: u16,
    pub capacity: CapacityOverrides,
    pub hardening: HardeningConfig,
    /// TLS for the gRPC and metrics listeners and for calls to identity and policy (mutual
    /// TLS: the session-manager proves who it is with its certificate).
    pub tls: TlsConfig,
    /// Identity's gRPC address. When set (with `policy_endpoint`), administrators may call the
    /// agent's read-only status calls with their own login (`agents.view`) and drain it
    /// (`agents.modify`); unset, only the session-manager may call the agent.
    pub identity_endpoint: Option<String>,
    /// Policy's gRPC address, for users' effective permissions.
    pub policy_endpoint: Option<String>,
    /// Client certificate and CA for a Docker engine reached over TLS (`https://` or `tcp://`
    /// hosts); a unix socket needs none. Plain TCP to Docker is refused.
    pub docker_tls: Option<DockerTls>,
    /// Redis for heartbeats; unset keeps them in-process (`atrium up`).
    pub redis_url: Option<Secret>,
    /// Prefix of this deployment's keys in Redis (`<namespace>:agent:<id>`); the
    /// session-manager's `redis_namespace` must match.
    pub redis_namespace: String,
    pub heartbeat_interval_secs: u64,
    /// How long a drain (SIGTERM or the Drain call) waits for sessions to go before exiting.
    pub drain_deadline_secs: u64,
    /// Docker engine: `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub docker_host: String,
    /// Grace given to a session's processes by a stop before they are killed.
    pub stop_timeout_secs: u32,
    /// Longest an exec may run.
    pub exec_timeout_secs: u64,
    pub shutdown_deadline_secs: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7004)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9104))),
            log_format: LogFormat::Pretty,
            agent_id: None,
            zone: "default".into(),
            advertise_host: "127.0.0.1".into(),
            publish_ip: None,
            session_port: 6901,
            capacity: CapacityOverrides::default(),
            hardening: HardeningConfig::default(),
            tls: TlsConfig::default(),
            identity_endpoint: None,
            policy_endpoint: None,
            docker_tls: None,
            redis_url: None,
            redis_namespace: "atrium".into(),
            heartbeat_interval_secs: 5,
            drain_deadline_secs: 300,
            docker_host: "unix:///var/run/docker.sock".into(),
            stop_timeout_secs: 10,
            exec_timeout_secs: 300,
            shutdown_deadline_secs: 10,
        }
    }
}

impl AgentConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.tls.validate("tls")?;
        if self.identity_endpoint.is_some() != self.policy_endpoint.is_some() {
            anyhow::bail!(
                "policy_endpoint: set both identity_endpoint and policy_endpoint, or neither"
            );
        }
        if let Some(id) = &self.agent_id {
            validate_agent_id(id).map_err(|m| anyhow::anyhow!("agent_id: {m}"))?;
        }
        if self.advertise_host.trim().is_empty() {
            anyhow::bail!("advertise_host: must not be empty");
        }
        if self.heartbeat_interval_secs == 0 {
            anyhow::bail!("heartbeat_interval_secs: must be at least 1");
        }
        if let Some(cores) = self.capacity.cores
            && !(cores.is_finite() && cores >= 0.0)
        {
            anyhow::bail!("capacity.cores: must be a non-negative number");
        }
        if self.capacity.memory_mib.is_some_and(|m| m < 0) {
            anyhow::bail!("capacity.memory_mib: must not be negative");
        }
        if self.hardening.pids_limit < 1 {
            anyhow::bail!("hardening.pids_limit: must be at least 1");
        }
        if !docker_host_is_secure(&self.docker_host, self.docker_tls.is_some()) {
            anyhow::bail!(
                "docker_host: must be unix:///path, or tcp:// / https:// with docker_tls (ca, cert, key); plain TCP to Docker is refused"
            );
        }
        Ok(())
    }

    /// The configured agent id, or the hostname.
    pub fn resolved_agent_id(&self) -> String {
        self.agent_id.clone().unwrap_or_else(hostname)
    }

    /// Where session ports are published.
    pub fn resolved_publish_ip(&self) -> IpAddr {
        self.publish_ip.unwrap_or_else(|| {
            self.advertise_host
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        })
    }

    /// `host:port` of this agent's gRPC API as others should dial it.
    pub fn advertised_address(&self, bound: SocketAddr) -> String {
        let host = &self.advertise_host;
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", bound.port())
        } else {
            format!("{host}:{}", bound.port())
        }
    }
}

/// Agent ids go into Redis keys and container labels: 1–64 of `[A-Za-z0-9._-]`.
pub fn validate_agent_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("may contain only letters, digits, '.', '_' and '-'".into());
    }
    Ok(())
}

fn hostname() -> String {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let from_env = std::env::var("HOSTNAME").ok();
    from_kernel
        .into_iter()
        .chain(from_env)
        .map(|h| h.trim().to_owned())
        .find(|h| validate_agent_id(h).is_ok())
        .unwrap_or_else(|| "agent".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_only_tls_files() {
        let mut config = AgentConfig::default();
        assert!(config.validate().is_err());
        config.tls = TlsConfig::in_dir(
            std::path::Path::new("/tls"),
            atrium_service_kit::auth::ServiceId::Agent,
        );
        config.validate().expect("valid");
        assert!(validate_agent_id(&config.resolved_agent_id()).is_ok());
        assert_eq!(config.resolved_publish_ip().to_string(), "127.0.0.1");
        config.advertise_host = "node-1.example".into();
        assert_eq!(config.resolved_publish_ip().to_string(), "0.0.0.0");
        assert_eq!(
            config.advertised_address(SocketAddr::from(([0, 0, 0, 0], 7004))),
            "node-1.example:7004"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let base = AgentConfig {
            tls: TlsConfig {
                insecure_plaintext: true,
                ..TlsConfig::default()
            },
            ..AgentConfig::default()
        };
        type Tweak = Box<dyn Fn(&mut AgentConfig)>;
        let cases: Vec<(&str, Tweak)> = vec![
            ("agent_id", Box::new(|c| c.agent_id = Some("a b".into()))),
            (
                "heartbeat_interval_secs",
                Box::new(|c| c.heartbeat_interval_secs = 0),
            ),
            (
                "capacity.cores",
                Box::new(|c| c.capacity.cores = Some(f64::NAN)),
            ),
            (
                "docker_host",
                Box::new(|c| c.docker_host = "/var/run/docker.sock".into()),
            ),
            (
                "docker_host",
                Box::new(|c| c.docker_host = "http://127.0.0.1:2375".into()),
            ),
            (
                "docker_host",
                Box::new(|c| c.docker_host = "tcp://127.0.0.1:2376".into()),
            ),
            ("tls.ca", Box::new(|c| c.tls = TlsConfig::default())),
            (
                "policy_endpoint",
                Box::new(|c| c.identity_endpoint = Some("https://127.0.0.1:7001".into())),
            ),
        ];
        for (key, tweak) in cases {
            let mut config = base.clone();
            tweak(&mut config);
            let err = config.validate().expect_err(key).to_string();
            assert!(err.starts_with(key), "{key}: {err}");
        }
    }
}
