//! validate() on scalar settings: every refusal names the setting.

use serde_json::json;

use super::super::*;
use super::{accepted, refused};

#[test]
fn booleans() {
    assert_eq!(accepted("allow_kasm_audio", true), Value::Bool(true));
    // A JSON scalar is unwrapped.
    assert_eq!(
        accepted("allow_kasm_audio", json!(false)),
        Value::Bool(false)
    );
    refused(
        "allow_kasm_audio",
        1_i64,
        "expected a boolean, got a number",
    );
    refused(
        "allow_kasm_audio",
        "true",
        "expected a boolean, got a string",
    );
    refused(
        "allow_kasm_audio",
        json!({}),
        "expected a boolean, got a JSON object",
    );
}

#[test]
fn integers() {
    assert_eq!(accepted("max_kasms_per_user", 0_i64), Value::Int(0));
    assert_eq!(accepted("max_kasms_per_user", 2.0), Value::Int(2));
    assert_eq!(accepted("max_kasms_per_user", json!(7)), Value::Int(7));
    refused("max_kasms_per_user", -1_i64, "must not be negative, got -1");
    refused("max_kasms_per_user", 2.5, "expected an integer, got 2.5");
    refused("max_kasms_per_user", f64::NAN, "expected an integer");
    refused("max_kasms_per_user", 1e300, "expected an integer");
    refused("max_kasms_per_user", 10_001_i64, "must be at most 10000");
    refused(
        "max_kasms_per_user",
        "5",
        "expected an integer, got a string",
    );
    refused("chat_history_messages", -3_i64, "must not be negative");
    refused("password_expires", -1_i64, "must not be negative");
    refused("password_expires", 40_000_i64, "must be at most 36500 days");
}

#[test]
fn durations_in_seconds() {
    refused(
        "keepalive_expiration",
        -5_i64,
        "must not be negative, got -5",
    );
    refused(
        "keepalive_expiration",
        i64::MAX,
        "must be at most 3153600000 seconds",
    );
    refused("keepalive_interval", 0_i64, "must be greater than 0, got 0");
    refused("keepalive_interval", -1_i64, "must be greater than 0");
    assert_eq!(accepted("keepalive_interval", 1_i64), Value::Int(1));
    // 0 is a value for session_time_limit, not "not set".
    assert_eq!(accepted("session_time_limit", 0_i64), Value::Int(0));
    refused("session_time_limit", -1_i64, "must not be negative");
}

#[test]
fn floats() {
    assert_eq!(accepted("idle_disconnect", 15_i64), Value::Float(15.0));
    assert_eq!(accepted("idle_disconnect", 0.5), Value::Float(0.5));
    assert_eq!(accepted("idle_disconnect", 0.0), Value::Float(0.0));
    refused("idle_disconnect", -0.5, "must not be negative, got -0.5");
    refused("idle_disconnect", f64::NAN, "must be a finite number");
    refused("idle_disconnect", f64::INFINITY, "must be a finite number");
    refused("idle_disconnect", 1e12, "must be at most");
    refused("idle_disconnect", true, "expected a number, got a boolean");
}

#[test]
fn enums() {
    let name = "keepalive_expiration_action";
    assert_eq!(accepted(name, "STOP"), Value::from("stop"));
    assert_eq!(accepted(name, " Pause "), Value::from("pause"));
    assert_eq!(accepted(name, json!("delete")), Value::from("delete"));
    refused(
        name,
        "destroy",
        "must be one of delete, stop, pause, got \"destroy\"",
    );
    refused(name, "", "must be one of delete, stop, pause");
    refused(
        name,
        true,
        "expected one of delete, stop, pause, got a boolean",
    );
}

#[test]
fn urls() {
    let name = "dashboard_redirect";
    assert_eq!(accepted(name, ""), Value::from(""));
    assert_eq!(
        accepted(name, " https://intranet.example/home "),
        Value::from("https://intranet.example/home")
    );
    assert_eq!(
        accepted(name, "http://10.0.0.1:8080"),
        Value::from("http://10.0.0.1:8080")
    );
    refused(
        name,
        "ftp://files.example",
        "must be an http or https URL, got scheme \"ftp\"",
    );
    refused(name, "javascript:alert(1)", "must be an http or https URL");
    refused(name, "intranet.example", "is not a valid URL");
    refused(name, "http://", "empty host");
    refused(
        name,
        format!("https://x.example/{}", "a".repeat(3000)),
        "at most 2048 bytes",
    );
    refused(name, 3_i64, "expected an http(s) URL string, got a number");
}

#[test]
fn images() {
    let name = "default_image";
    assert_eq!(accepted(name, ""), Value::from(""));
    assert_eq!(
        accepted(name, "0190A5B2-7C3D-7E4F-8A1B-2C3D4E5F6A7B"),
        Value::from("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b")
    );
    refused(
        name,
        "chrome",
        "must be a workspace id (UUID) or empty, got \"chrome\"",
    );
    refused(
        name,
        1_i64,
        "expected a workspace id (UUID) or an empty string",
    );
}

#[test]
fn policies() {
    let name = "web_filter_policy";
    assert_eq!(
        accepted(name, "corp-default:v2"),
        Value::from("corp-default:v2")
    );
    assert_eq!(accepted(name, ""), Value::from(""));
    refused(name, "no spaces please", "must be a policy id");
    refused(name, "p".repeat(300), "at most 256 bytes");
    refused(name, false, "expected a policy id string, got a boolean");
}

#[test]
fn free_text() {
    let name = "disabled_image_message";
    assert_eq!(
        accepted(name, "Ask IT.\nThanks"),
        Value::from("Ask IT.\nThanks")
    );
    refused(
        name,
        "x".repeat(2049),
        "must be at most 2048 bytes long, got 2049",
    );
    refused(name, "bell\u{7}", "must not contain control characters");
    refused(name, json!([]), "expected a string, got a JSON array");
}
