use atrium_proto::agent::v1 as pb;
use serde_json::json;

use super::{field_of, proto};
use crate::spec::SessionSpec;

#[test]
fn invalid_specs_name_the_field() {
    let cases: Vec<(pb::SessionSpec, &str)> = vec![
        (
            pb::SessionSpec {
                session_id: "../x".into(),
                ..proto()
            },
            "spec.session_id",
        ),
        (
            pb::SessionSpec {
                session_id: String::new(),
                ..proto()
            },
            "spec.session_id",
        ),
        (
            pb::SessionSpec {
                user_id: String::new(),
                ..proto()
            },
            "spec.user_id",
        ),
        (
            pb::SessionSpec {
                image: "a b".into(),
                ..proto()
            },
            "spec.image",
        ),
        (
            pb::SessionSpec {
                cores: 0.0,
                ..proto()
            },
            "spec.cores",
        ),
        (
            pb::SessionSpec {
                cores: f64::NAN,
                ..proto()
            },
            "spec.cores",
        ),
        (
            pb::SessionSpec {
                memory_mib: 0,
                ..proto()
            },
            "spec.memory_mib",
        ),
        (
            pb::SessionSpec {
                environment: [("A=B".to_owned(), String::new())].into(),
                ..proto()
            },
            "spec.environment.A=B",
        ),
        (
            pb::SessionSpec {
                volumes: vec![pb::VolumeMount {
                    host_path: "relative".into(),
                    container_path: "/x".into(),
                    read_only: false,
                }],
                ..proto()
            },
            "spec.volumes[0].host_path",
        ),
        (
            pb::SessionSpec {
                files: vec![
                    pb::FileMount {
                        destination: "/a".into(),
                        ..Default::default()
                    },
                    pb::FileMount {
                        destination: "/a".into(),
                        ..Default::default()
                    },
                ],
                ..proto()
            },
            "spec.files[1].destination",
        ),
        (
            pb::SessionSpec {
                expose_user_environment: true,
                ..proto()
            },
            "spec.username",
        ),
        (
            pb::SessionSpec {
                run_config_json: json!({"read_only": true}).to_string(),
                files: vec![pb::FileMount {
                    destination: "/a".into(),
                    ..Default::default()
                }],
                ..proto()
            },
            "spec.run_config_json.read_only",
        ),
    ];
    for (p, field) in cases {
        let err = SessionSpec::try_from(p).expect_err(field);
        assert_eq!(field_of(err), field);
    }
}
