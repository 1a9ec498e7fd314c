//! validate() on JSON-shaped settings: run_config, usage_limit, volume_mapping.

use serde_json::json;

use super::super::*;
use super::{accepted, refused};

#[test]
fn run_config_must_be_an_object() {
    let name = "run_config";
    let config = json!({"hostname": "kasm", "environment": {"A": "1"}});
    assert_eq!(accepted(name, config.clone()), Value::Json(config));
    refused(name, json!([1]), "expected a JSON object, got a JSON array");
    refused(name, "{}", "expected a JSON object, got a string");
    refused(name, json!(null), "got null");
    refused(
        name,
        json!({"x": "y".repeat(70_000)}),
        "at most 65536 bytes",
    );
}

#[test]
fn usage_limits() {
    let name = "usage_limit";
    assert_eq!(
        accepted(
            name,
            json!({"type": "Per_User", "interval": "WEEKLY", "hours": 10})
        ),
        Value::Json(json!({"type": "per_user", "interval": "weekly", "hours": 10.0}))
    );
    assert_eq!(
        accepted(
            name,
            json!({"type": "per_group", "interval": "total", "hours": 876000})
        ),
        Value::Json(json!({"type": "per_group", "interval": "total", "hours": 876000.0}))
    );
    let ok = |k: &str, v: serde_json::Value| {
        let mut o = json!({"type": "per_user", "interval": "daily", "hours": 1.5});
        o[k] = v;
        o
    };
    refused(
        name,
        ok("type", json!("everyone")),
        "type must be per_user or per_group, got \"everyone\"",
    );
    refused(name, ok("type", json!(1)), "type must be a string");
    refused(
        name,
        ok("interval", json!("hourly")),
        "interval must be daily, weekly, monthly or total",
    );
    refused(
        name,
        ok("hours", json!(0)),
        "hours must be greater than 0, got 0",
    );
    refused(
        name,
        ok("hours", json!(-2.5)),
        "hours must be greater than 0",
    );
    refused(
        name,
        ok("hours", json!(876000.5)),
        "hours must be at most 876000",
    );
    refused(
        name,
        ok("hours", json!("3")),
        "hours must be a number, got a string",
    );
    refused(name, ok("extra", json!(true)), "unknown key \"extra\"");
    refused(
        name,
        json!({"interval": "daily", "hours": 1}),
        "type is required",
    );
    refused(
        name,
        json!({"type": "per_user", "hours": 1}),
        "interval is required",
    );
    refused(
        name,
        json!({"type": "per_user", "interval": "daily"}),
        "hours is required",
    );
    refused(
        name,
        json!([]),
        "expected an object with type, interval and hours, got a JSON array",
    );
    refused(name, 5_i64, "expected a usage limit object, got a number");
}

#[test]
fn volume_mappings() {
    let name = "volume_mapping";
    assert_eq!(
        accepted(
            name,
            json!({"/mnt/share/": {"bind": "/share/", "mode": "RO"}, "/": {"bind": "/host", "mode": "rw"}})
        ),
        Value::Json(
            json!({"/mnt/share": {"bind": "/share", "mode": "ro"}, "/": {"bind": "/host", "mode": "rw"}})
        )
    );
    assert_eq!(accepted(name, json!({})), Value::Json(json!({})));
    let one = |host: &str, entry: serde_json::Value| json!({ host: entry });
    let rw = |bind: &str| json!({"bind": bind, "mode": "rw"});
    refused(
        name,
        one("mnt/share", rw("/share")),
        "host path \"mnt/share\" must be absolute",
    );
    refused(
        name,
        one("/mnt/share", rw("share")),
        "bind path \"share\" must be absolute",
    );
    refused(
        name,
        one("/mnt/../etc", rw("/share")),
        "must not contain \"..\" segments",
    );
    refused(
        name,
        one("/mnt/share", rw("/share/../../x")),
        "must not contain \"..\" segments",
    );
    refused(
        name,
        one("/mnt/./share", rw("/share")),
        "must not contain \".\" segments",
    );
    refused(
        name,
        one("/mnt//share", rw("/share")),
        "must not contain \"//\"",
    );
    refused(name, one("", rw("/share")), "host path must not be empty");
    refused(
        name,
        one("/mnt/share", rw("")),
        "bind path must not be empty",
    );
    refused(name, one("/mnt/share", rw("/")), "must not be \"/\"");
    refused(name, one("/mnt/\u{0}x", rw("/share")), "control characters");
    refused(
        name,
        one("/mnt/share", json!({"mode": "rw"})),
        "needs \"bind\"",
    );
    refused(
        name,
        one("/mnt/share", json!({"bind": "/share"})),
        "needs \"mode\"",
    );
    refused(
        name,
        one("/mnt/share", json!({"bind": "/share", "mode": "rx"})),
        "must be \"rw\" or \"ro\", got \"rx\"",
    );
    refused(
        name,
        one("/mnt/share", json!({"bind": "/share", "mode": true})),
        "must be \"rw\" or \"ro\", got a boolean",
    );
    refused(
        name,
        one("/mnt/share", json!({"bind": 7, "mode": "rw"})),
        "\"bind\" for \"/mnt/share\" must be a string",
    );
    refused(
        name,
        one(
            "/mnt/share",
            json!({"bind": "/share", "mode": "rw", "uid": 1000}),
        ),
        "unknown key \"uid\"",
    );
    refused(
        name,
        one("/mnt/share", json!("/share")),
        "must be an object",
    );
    refused(
        name,
        json!({"/a": rw("/x"), "/a/": rw("/y")}),
        "host path \"/a\" appears twice",
    );
    refused(name, json!(["/a"]), "got a JSON array");
    refused(name, "{}", "expected a volume mapping object, got a string");
    refused(
        name,
        json!({"/a": rw("/same"), "/b": rw("/same")}),
        "container path \"/same\" is the target of two host paths",
    );
    let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_VOLUME_ENTRIES)
        .map(|i| (format!("/d/{i}"), rw(&format!("/x/{i}"))))
        .collect();
    refused(
        name,
        serde_json::Value::Object(many),
        "at most 256 host paths",
    );
}

#[test]
fn typed_usage_and_volume_round_trip() {
    let limit =
        UsageLimit::from_json(&json!({"type": "per_group", "interval": "monthly", "hours": 2.5}))
            .unwrap();
    assert_eq!(
        limit,
        UsageLimit {
            scope: UsageScope::PerGroup,
            interval: UsageInterval::Monthly,
            hours: 2.5
        }
    );
    assert_eq!(UsageLimit::from_json(&limit.to_json()), Ok(limit));
    let mapping = VolumeMapping::from_json(&json!({"/a": {"bind": "/b", "mode": "ro"}})).unwrap();
    let mount = &mapping.mounts["/a"];
    assert_eq!(
        (mount.bind.as_str(), mount.mode),
        ("/b", MountMode::ReadOnly)
    );
    assert_eq!(VolumeMapping::from_json(&mapping.to_json()), Ok(mapping));
}
