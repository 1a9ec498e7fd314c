use atrium_proto::agent::v1 as pb;
use serde_json::json;

use proptest::prelude::*;

use super::{build_from, field_of, proto};
use crate::config::HardeningConfig;
use crate::spec::SessionId;
use crate::spec::run_config::{self, ALLOWED_KEYS, RunConfig};

#[test]
fn every_allowed_run_config_key_is_mapped() {
    let rc = json!({
        "hostname": "kasm",
        "environment": {"FROM_RC": "1", "A": "rc"},
        "labels": {"team": "blue"},
        "shm_size": "1g",
        "user": "1000:1000",
        "working_dir": "/home/kasm-user",
        "dns": ["1.1.1.1"],
        "extra_hosts": {"db": "10.0.0.9"},
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["NET_RAW"],
        "security_opt": ["seccomp=unconfined"],
        "privileged": true,
        "network": "kasm-net",
        "tmpfs": {"/run": "size=64m"},
        "devices": ["/dev/fuse"],
        "entrypoint": "/bin/sh -c 'echo hi'",
        "command": ["sleep", "1"],
        "read_only": false,
        "ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        "sysctls": {"net.ipv4.ip_forward": 1}
    });
    assert_eq!(rc.as_object().map(|o| o.len()), Some(ALLOWED_KEYS.len()));
    let c = build_from(pb::SessionSpec {
        run_config_json: rc.to_string(),
        environment: [("A".to_owned(), "session".to_owned())].into(),
        ..proto()
    });
    let b = &c.body;
    assert_eq!(b.hostname.as_deref(), Some("kasm"));
    assert_eq!(b.user.as_deref(), Some("1000:1000"));
    assert_eq!(b.working_dir.as_deref(), Some("/home/kasm-user"));
    let words = |w: &[&str]| Some(w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(b.entrypoint, words(&["/bin/sh", "-c", "echo hi"]));
    assert_eq!(b.cmd, words(&["sleep", "1"]));
    let env = b.env.clone().unwrap_or_default();
    assert!(env.contains(&"FROM_RC=1".to_owned()) && env.contains(&"A=session".to_owned()));
    let labels = b.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("blue"));
    let h = b.host_config.clone().expect("host config");
    assert_eq!(h.shm_size, Some(1 << 30));
    assert_eq!(h.dns, words(&["1.1.1.1"]));
    assert_eq!(h.extra_hosts, words(&["db:10.0.0.9"]));
    let mut caps = HardeningConfig::default().cap_add;
    caps.push("NET_ADMIN".into());
    assert_eq!(h.cap_add, Some(caps));
    assert_eq!(h.cap_drop, words(&["NET_RAW"]));
    assert_eq!(
        h.security_opt,
        words(&["no-new-privileges", "seccomp=unconfined"])
    );
    assert_eq!(h.privileged, Some(true));
    assert_eq!(h.network_mode.as_deref(), Some("kasm-net"));
    assert_eq!(
        h.tmpfs.and_then(|t| t.get("/run").cloned()).as_deref(),
        Some("size=64m")
    );
    let device = &h.devices.expect("devices")[0];
    assert_eq!(device.path_in_container.as_deref(), Some("/dev/fuse"));
    assert_eq!(device.cgroup_permissions.as_deref(), Some("rwm"));
    assert_eq!(h.readonly_rootfs, Some(false));
    let ulimit = &h.ulimits.expect("ulimits")[0];
    assert_eq!((ulimit.soft, ulimit.hard), (Some(1024), Some(2048)));
    assert_eq!(
        h.sysctls
            .and_then(|s| s.get("net.ipv4.ip_forward").cloned())
            .as_deref(),
        Some("1")
    );
}

#[test]
fn run_config_refuses_what_is_not_allowed_naming_the_key() {
    let cases = [
        (json!({"volumes": {}}), "spec.run_config_json.volumes"),
        (json!({"pid_mode": "host"}), "spec.run_config_json.pid_mode"),
        (
            json!({"privileged": "yes"}),
            "spec.run_config_json.privileged",
        ),
        (
            json!({"cap_add": "NET_ADMIN"}),
            "spec.run_config_json.cap_add",
        ),
        (json!({"shm_size": "lots"}), "spec.run_config_json.shm_size"),
        (
            json!({"labels": {"atrium.user_id": "x"}}),
            "spec.run_config_json.labels.atrium.user_id",
        ),
        (
            json!({"devices": ["fuse"]}),
            "spec.run_config_json.devices[0]",
        ),
        (
            json!({"ulimits": [{"name": "nofile"}]}),
            "spec.run_config_json.ulimits[0]",
        ),
        (
            json!({"entrypoint": "sh -c 'oops"}),
            "spec.run_config_json.entrypoint",
        ),
        (json!([1, 2]), "spec.run_config_json"),
    ];
    for (value, field) in cases {
        let err = run_config::parse(&value.to_string()).expect_err(field);
        let message = err.to_string();
        assert_eq!(field_of(err), field, "{value}");
        if field.ends_with("volumes") {
            assert!(message.contains("\"volumes\" is not allowed"), "{message}");
        }
    }
    assert_eq!(run_config::parse("").expect("empty"), RunConfig::default());
    assert_eq!(
        run_config::parse("{}").expect("empty object"),
        RunConfig::default()
    );
    assert_eq!(
        field_of(run_config::parse("{").expect_err("bad json")),
        "spec.run_config_json"
    );
}

#[test]
fn sizes_take_units() {
    let size = |v: serde_json::Value| crate::spec::run_config::size("shm_size", &v).ok();
    assert_eq!(size(json!(1024)), Some(1024));
    assert_eq!(size(json!("512m")), Some(512 << 20));
    assert_eq!(size(json!("2GB")), Some(2 << 30));
    assert_eq!(size(json!("64k")), Some(64 << 10));
    assert_eq!(size(json!("0")), None);
    assert_eq!(size(json!("-1m")), None);
}

proptest! {
    #[test]
    fn accepted_session_ids_make_valid_container_names(raw in ".{0,80}") {
        if let Ok(id) = SessionId::parse("session_id", &raw) {
            let name = id.container_name();
            prop_assert!(name.len() <= 80);
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
        }
    }

    #[test]
    fn shell_strings_round_trip_simple_words(words in proptest::collection::vec("[a-z0-9/=._-]{1,8}", 1..5)) {
        let joined = words.join(" ");
        let parsed = run_config::parse(&json!({"command": joined}).to_string()).expect("parse");
        prop_assert_eq!(parsed.command, Some(words));
    }
}
