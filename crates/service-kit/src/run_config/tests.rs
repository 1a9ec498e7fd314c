use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn field_of(json: Value) -> String {
    match RunConfig::from_json("rc", &json) {
        Err(ApiError::InvalidArgument { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn every_allowed_key_parses() {
    let rc = json!({
        "hostname": "kasm", "environment": {"A": "1"}, "labels": {"team": "blue"},
        "shm_size": "1g", "user": "1000:1000", "working_dir": "/home/kasm-user",
        "dns": ["1.1.1.1"], "extra_hosts": {"db": "10.0.0.9"}, "cap_add": ["NET_ADMIN"],
        "cap_drop": ["ALL"], "security_opt": ["seccomp=unconfined"], "privileged": true,
        "network": "kasm-net", "tmpfs": {"/run": "size=64m"}, "devices": ["/dev/fuse"],
        "entrypoint": "/bin/sh -c 'echo hi'", "command": ["sleep", "1"], "read_only": false,
        "ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        "sysctls": {"net.ipv4.ip_forward": 1}
    });
    assert_eq!(rc.as_object().map(|o| o.len()), Some(ALLOWED_KEYS.len()));
    let parsed = RunConfig::from_json("rc", &rc).expect("valid");
    assert_eq!(parsed.shm_size, Some(1 << 30));
    assert_eq!(parsed.extra_hosts, Some(vec!["db:10.0.0.9".to_owned()]));
    assert_eq!(
        parsed.devices.as_deref().map(|d| d[0].permissions.as_str()),
        Some("rwm")
    );
    assert!(RunConfig::parse("rc", " ").expect("blank").is_empty());
}

#[test]
fn errors_name_the_key_and_the_index() {
    assert_eq!(
        field_of(json!({"cap_add": ["NET_ADMIN", "net admin"]})),
        "rc.cap_add[1]"
    );
    assert_eq!(
        field_of(json!({"devices": ["/dev/fuse", "/dev/a:b:c:d"]})),
        "rc.devices[1]"
    );
    assert_eq!(
        field_of(json!({"devices": ["/dev/../etc/shadow"]})),
        "rc.devices[0]"
    );
    assert_eq!(field_of(json!({"tmpfs": ["/run,x"]})), "rc.tmpfs[0]");
    assert_eq!(field_of(json!({"volumes": {}})), "rc.volumes");
    assert_eq!(field_of(json!({"network": "container:abc"})), "rc.network");
    assert_eq!(
        field_of(json!({"dns": ["8.8.8.8", "dns.example"]})),
        "rc.dns[1]"
    );
    assert_eq!(
        field_of(json!({"security_opt": ["bogus"]})),
        "rc.security_opt[0]"
    );
    assert_eq!(
        field_of(json!({"labels": {"atrium.user_id": "x"}})),
        "rc.labels.atrium.user_id"
    );
    assert_eq!(field_of(json!({"shm_size": 0})), "rc.shm_size");
    assert_eq!(
        field_of(json!({"ulimits": [{"name": "nofile", "soft": 2, "hard": 1}]})),
        "rc.ulimits[0]"
    );
    assert_eq!(
        field_of(json!({"working_dir": "relative"})),
        "rc.working_dir"
    );
    assert_eq!(field_of(json!([])), "rc");
}

#[test]
fn shell_words_split_like_a_shell() {
    assert_eq!(
        shell_words(r#"sh -c 'echo "hi there"' a\ b"#),
        Some(vec![
            "sh".into(),
            "-c".into(),
            "echo \"hi there\"".into(),
            "a b".into()
        ])
    );
    assert_eq!(shell_words("'open"), None);
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5000).prop_map(Value::from),
        "[/a-zA-Z0-9:,._= -]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_.]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Nothing panics, and whatever is accepted holds only allowed keys and valid paths.
    #[test]
    fn accepted_configs_hold_only_allowed_keys_and_plain_paths(
        entries in prop::collection::btree_map(
            prop_oneof![prop::sample::select(ALLOWED_KEYS.to_vec()).prop_map(str::to_owned), "[a-z_]{1,8}"],
            any_json(),
            0..4,
        )
    ) {
        let json = Value::Object(entries.clone().into_iter().collect());
        if let Ok(rc) = RunConfig::from_json("rc", &json) {
            prop_assert!(entries.keys().all(|k| ALLOWED_KEYS.contains(&k.as_str())));
            for d in rc.devices.unwrap_or_default() {
                prop_assert!(crate::host_path::problem(&d.host_path).is_none());
            }
            for path in rc.tmpfs.unwrap_or_default().keys() {
                prop_assert!(crate::host_path::problem(path).is_none());
            }
        }
    }
}
