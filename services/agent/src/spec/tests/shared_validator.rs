//! The agent accepts exactly what policy accepts at write time: a run_config and host volumes
//! are valid for a launch if and only if the kit's validator (the one policy calls) accepts
//! them, and a valid spec always builds a container.

use atrium_proto::agent::v1 as pb;
use atrium_service_kit::host_path;
use atrium_service_kit::run_config::{ALLOWED_KEYS, RunConfig};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{build_from, proto};
use crate::spec::SessionSpec;

/// Paths that are sometimes fine and sometimes not: relative, `..`, `:`, `,`, `//`, trailing `/`.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("/var/run/docker.sock".to_owned()),
        "(/[a-z.]{1,4}){1,3}",
        "[/a-z.:,]{1,10}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-2i64..100_000).prop_map(Value::from),
        path().prop_map(Value::String),
        "[A-Z_]{1,8}".prop_map(Value::String),
        prop::collection::vec(path().prop_map(Value::String), 0..3).prop_map(Value::Array),
        prop::collection::vec("[A-Za-z_ ]{1,8}".prop_map(Value::String), 0..3)
            .prop_map(Value::Array),
        (path(), "[a-z=0-9]{0,6}").prop_map(|(k, v)| json!({ k: v })),
        Just(json!([{"name": "nofile", "soft": 10, "hard": 20}])),
        Just(json!(["1.1.1.1", "::1"])),
    ]
}

fn run_config() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(ALLOWED_KEYS.to_vec()).prop_map(str::to_owned),
        Just("volumes".to_owned()),
        Just("pid_mode".to_owned()),
    ];
    prop::collection::btree_map(key, value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_agent_accepts_exactly_what_the_shared_validator_accepts(
        rc in run_config(),
        volumes in prop::collection::vec((path(), path(), any::<bool>()), 0..3),
    ) {
        let json = rc.to_string();
        let validator_accepts = RunConfig::parse("workspace.run_config_json", &json).is_ok()
            && volumes.iter().all(|(host, container, _)| {
                host_path::host("host_path", host).is_ok()
                    && host_path::mount_point("container_path", container).is_ok()
            });
        let spec = pb::SessionSpec {
            run_config_json: json,
            volumes: volumes
                .iter()
                .map(|(host, container, read_only)| pb::VolumeMount {
                    host_path: host.clone(),
                    container_path: container.clone(),
                    read_only: *read_only,
                })
                .collect(),
            ..proto()
        };
        let agent_accepts = SessionSpec::try_from(spec.clone()).is_ok();
        prop_assert_eq!(validator_accepts, agent_accepts);
        if agent_accepts {
            let container = build_from(spec);
            let binds = container
                .body
                .host_config
                .and_then(|h| h.binds)
                .unwrap_or_default();
            // Every bind the agent writes splits back into exactly host:container:mode.
            prop_assert!(binds.iter().all(|b| b.split(':').count() == 3));
        }
    }
}
