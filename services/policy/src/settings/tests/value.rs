use super::super::*;
use serde_json::json;

#[test]
fn storage_format_is_stable() {
    let cases = [
        (Value::Bool(true), r#"{"bool":true}"#),
        (Value::Int(3600), r#"{"int":3600}"#),
        (Value::Int(-1), r#"{"int":-1}"#),
        (Value::Float(20.0), r#"{"float":20.0}"#),
        (Value::Float(2.5), r#"{"float":2.5}"#),
        (Value::from("delete"), r#"{"string":"delete"}"#),
        (
            Value::Json(json!({"a": [1, null]})),
            r#"{"json":{"a":[1,null]}}"#,
        ),
    ];
    for (value, text) in cases {
        assert_eq!(value.to_storage(), text);
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
        assert_eq!(Value::from_storage(text).unwrap(), value);
    }
}

#[test]
fn floats_round_trip_exactly() {
    // Needs serde_json's `float_roundtrip`; the default parser is off by one ulp here.
    for x in [1839.6504274192966, 0.1, 1e-300, f64::MAX, 20.0] {
        let value = Value::Float(x);
        assert_eq!(Value::from_storage(&value.to_storage()).unwrap(), value);
    }
}

#[test]
fn from_storage_refuses_garbage() {
    for text in [
        "",
        "true",
        r#"{"bool":1}"#,
        r#"{"number":1}"#,
        r#"{"int":1.5}"#,
    ] {
        assert!(Value::from_storage(text).is_err(), "{text}");
    }
}

#[test]
fn kinds_accessors_and_display() {
    assert_eq!(Value::Bool(true).kind(), "a boolean");
    assert_eq!(Value::Int(1).kind(), "a number");
    assert_eq!(Value::Float(1.0).kind(), "a number");
    assert_eq!(Value::from("x").kind(), "a string");
    assert_eq!(Value::Json(json!([])).kind(), "a JSON array");
    assert_eq!(Value::Json(json!({})).kind(), "a JSON object");
    assert_eq!(Value::Json(json!(null)).kind(), "null");
    assert_eq!(Value::Int(2).as_float(), Some(2.0));
    assert_eq!(Value::Float(2.0).as_int(), None);
    assert_eq!(Value::from("x").as_str(), Some("x"));
    assert_eq!(Value::Bool(false).as_bool(), Some(false));
    assert_eq!(Value::from(json!({})).as_json(), Some(&json!({})));
    assert_eq!(Value::Float(20.0).to_string(), "20");
    assert_eq!(Value::Float(2.5).to_string(), "2.5");
    assert_eq!(Value::Json(json!({"a": 1})).to_string(), r#"{"a":1}"#);
    assert_eq!(Value::from(String::from("s")).to_string(), "s");
}
