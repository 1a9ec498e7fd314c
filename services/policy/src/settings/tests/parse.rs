//! parse_raw() and the by-name helpers.

use serde_json::json;

use super::super::*;
use super::def;

fn parsed(name: &str, raw: &str) -> Value {
    parse_raw(def(name), raw).unwrap_or_else(|e| panic!("refused: {e}"))
}

fn unparsed(name: &str, raw: &str, needle: &str) {
    let e = parse_raw(def(name), raw).expect_err(raw);
    assert_eq!(e.setting, name);
    assert!(e.to_string().starts_with(&format!("{name}: ")));
    assert!(e.reason.contains(needle), "{e} lacks {needle:?}");
}

#[test]
fn parse_raw_reads_cli_text() {
    for (raw, b) in [
        ("true", true),
        ("YES", true),
        (" on ", true),
        ("1", true),
        ("false", false),
        ("No", false),
        ("off", false),
        ("0", false),
    ] {
        assert_eq!(parsed("allow_kasm_audio", raw), Value::Bool(b), "{raw}");
    }
    unparsed(
        "allow_kasm_audio",
        "maybe",
        "expected true or false (or yes/no), got \"maybe\"",
    );
    assert_eq!(parsed("keepalive_expiration", " 3600 "), Value::Int(3600));
    assert_eq!(parsed("keepalive_expiration", "1e3"), Value::Int(1000));
    unparsed(
        "keepalive_expiration",
        "an hour",
        "expected an integer, got \"an hour\"",
    );
    unparsed("keepalive_expiration", "-60", "must not be negative");
    unparsed("max_kasms_per_user", "1.5", "expected an integer, got 1.5");
    assert_eq!(parsed("idle_disconnect", "20"), Value::Float(20.0));
    assert_eq!(parsed("idle_disconnect", "2.5"), Value::Float(2.5));
    unparsed("idle_disconnect", "inf", "must be a finite number");
    unparsed("idle_disconnect", "soon", "expected a number, got \"soon\"");
    assert_eq!(
        parsed("keepalive_expiration_action", "Stop"),
        Value::from("stop")
    );
    assert_eq!(
        parsed("disabled_image_message", "  spaced  "),
        Value::from("  spaced  ")
    );
    assert_eq!(parsed("dashboard_redirect", ""), Value::from(""));
    assert_eq!(
        parsed("run_config", r#"{"shm_size": "1g"}"#),
        Value::Json(json!({"shm_size": "1g"}))
    );
    unparsed("run_config", "{not json", "not valid JSON");
    unparsed(
        "run_config",
        "[]",
        "expected a JSON object, got a JSON array",
    );
    assert_eq!(
        parsed(
            "usage_limit",
            r#"{"type":"per_user","interval":"daily","hours":8}"#
        ),
        Value::Json(json!({"type": "per_user", "interval": "daily", "hours": 8.0}))
    );
    unparsed(
        "volume_mapping",
        r#"{"rel": {"bind": "/x", "mode": "rw"}}"#,
        "must be absolute",
    );
}

#[test]
fn named_helpers_accept_aliases_and_name_unknown_settings() {
    let (def, value) = validate_named("enable_two_factor", Value::Bool(true)).unwrap();
    assert_eq!((def.name, value), ("require_2fa", Value::Bool(true)));
    let (def, value) = parse_named("default_workspace_image", "").unwrap();
    assert_eq!((def.name, value), ("default_image", Value::from("")));
    let e = validate_named("enable_totp_two_factor", Value::Int(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "require_2fa: expected a boolean, got a number"
    );
    let e = parse_named("keepalive_intreval", "300").unwrap_err();
    assert_eq!(
        e.to_string(),
        "keepalive_intreval: unknown setting; did you mean \"keepalive_interval\"?"
    );
}
