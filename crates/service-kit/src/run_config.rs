//! The `docker run` parameters a workspace's run_config may use: policy validates workspaces
//! against this list, and the agent maps exactly these onto the container. Keys use docker-py's
//! names.

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
