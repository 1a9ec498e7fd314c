mod run_config;
mod shared_validator;
mod validation;

use std::net::{IpAddr, Ipv4Addr};

use atrium_proto::agent::v1 as pb;
use atrium_service_kit::ApiError;

use crate::config::HardeningConfig;
use crate::spec::session::file_mode;
use crate::spec::*;

pub fn proto() -> pb::SessionSpec {
    pb::SessionSpec {
        session_id: "s-1".into(),
        user_id: "u-1".into(),
        workspace_id: "w-1".into(),
        image: "atrium/workspace-demo:latest".into(),
        cores: 1.5,
        memory_mib: 2048,
        ..Default::default()
    }
}

pub fn build_from(p: pb::SessionSpec) -> ContainerSpec {
    let spec = SessionSpec::try_from(p).expect("valid spec");
    let hardening = HardeningConfig::default();
    let ctx = BuildContext {
        agent_id: "agent-a",
        publish_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
        session_port: 6901,
        hardening: &hardening,
    };
    build(&spec, &ctx, "pw")
}

pub fn field_of(e: ApiError) -> String {
    match e {
        ApiError::InvalidArgument { field, .. } => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn env_of(c: &ContainerSpec) -> Vec<String> {
    c.body.env.clone().unwrap_or_default()
}

#[test]
fn containers_are_hardened_labelled_and_published_by_default() {
    let c = build_from(proto());
    assert_eq!(c.name, "atrium-session-s-1");
    let labels = c.body.labels.clone().unwrap_or_default();
    for (k, v) in [
        (LABEL_SESSION, "s-1"),
        (LABEL_USER, "u-1"),
        (LABEL_AGENT, "agent-a"),
        (LABEL_WORKSPACE, "w-1"),
        (LABEL_CORES, "1.5"),
        (LABEL_MEMORY_MIB, "2048"),
        (LABEL_GPUS, "0"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(resources_from_labels(&labels), (1.5, 2048, 0));
    let h = c.body.host_config.clone().expect("host config");
    assert_eq!(h.nano_cpus, Some(1_500_000_000));
    assert_eq!(h.memory, Some(2048 << 20));
    assert_eq!(h.memory_swap, Some(2048 << 20));
    assert_eq!(h.pids_limit, Some(4096));
    assert_eq!(h.shm_size, Some(512 << 20));
    assert_eq!(h.privileged, Some(false));
    assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_owned()]));
    assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(h.cap_add, Some(HardeningConfig::default().cap_add));
    assert!(h.device_requests.is_none());
    let bindings = h.port_bindings.expect("ports");
    let binding = &bindings["6901/tcp"].as_ref().expect("binding")[0];
    assert_eq!(binding.host_ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(binding.host_port.as_deref(), Some(""));
    assert_eq!(c.body.exposed_ports, Some(vec!["6901/tcp".to_owned()]));
    assert_eq!(env_of(&c), vec!["VNC_PW=pw".to_owned()]);
    assert!(c.files.is_empty());
}

#[test]
fn gpus_become_a_device_request() {
    let c = build_from(pb::SessionSpec {
        gpu_count: 2,
        ..proto()
    });
    let requests = c
        .body
        .host_config
        .and_then(|h| h.device_requests)
        .expect("gpus");
    assert_eq!(requests[0].count, Some(2));
    assert_eq!(requests[0].capabilities, Some(vec![vec!["gpu".to_owned()]]));
}

#[test]
fn kasm_conventions_environment_ssh_keys_and_file_modes() {
    let c = build_from(pb::SessionSpec {
        environment: [
            ("A".to_owned(), "1".to_owned()),
            ("VNC_PW".to_owned(), "mine".to_owned()),
        ]
        .into(),
        expose_user_environment: true,
        username: "alice".into(),
        inject_ssh_keys: true,
        ssh_public_key: "ssh-ed25519 AAAA alice".into(),
        ssh_private_key:
            "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----".into(),
        files: vec![pb::FileMount {
            destination: "/etc/policy.json".into(),
            content: b"{}".to_vec(),
            readable: true,
            writable: true,
            executable: false,
        }],
        volumes: vec![pb::VolumeMount {
            host_path: "/srv/share".into(),
            container_path: "/share".into(),
            read_only: true,
        }],
        ..proto()
    });
    let env = env_of(&c);
    for want in ["A=1", "VNC_PW=pw", "KASM_USER=alice", "KASM_USER_ID=u-1"] {
        assert!(env.contains(&want.to_owned()), "{want} in {env:?}");
    }
    assert!(!env.contains(&"VNC_PW=mine".to_owned()));
    let binds = c.body.host_config.and_then(|h| h.binds);
    assert_eq!(binds, Some(vec!["/srv/share:/share:ro".to_owned()]));
    let by_path = |p: &str| c.files.iter().find(|f| f.path == p).cloned().expect(p);
    let policy = by_path("/etc/policy.json");
    assert_eq!((policy.mode, policy.uid, policy.gid), (0o644, 1000, 1000));
    assert_eq!(by_path(SSH_DIR).kind, FileKind::Directory);
    assert_eq!(by_path(SSH_DIR).mode, 0o700);
    let private = by_path("/home/kasm-user/.ssh/id_ed25519");
    assert_eq!(private.mode, 0o600);
    let FileKind::File(content) = private.kind else {
        panic!("private key is a file")
    };
    assert!(content.ends_with(b"-----\n"));
    assert_eq!(by_path("/home/kasm-user/.ssh/id_ed25519.pub").mode, 0o644);
}

#[test]
fn file_modes_follow_the_flags() {
    assert_eq!(file_mode(true, false, false), 0o444);
    assert_eq!(file_mode(true, true, false), 0o644);
    assert_eq!(file_mode(true, false, true), 0o555);
    assert_eq!(file_mode(true, true, true), 0o755);
    assert_eq!(file_mode(false, true, false), 0o200);
    assert_eq!(file_mode(false, false, false), 0);
}
