//! The parsers of the workspace flags' values (clap value parsers: an error becomes "invalid
//! value ... for '--flag'"). Paths go through the kit's one path rule and run_configs through
//! its one run_config validator, the ones policy and the agent apply.

use std::collections::HashMap;

use atrium_proto::policy::v1::{ExecConfig, ExecHook, VolumeMapping};
use atrium_service_kit::host_path;
use atrium_service_kit::run_config::RunConfig;
use serde_json::Value;

use crate::args::{check_env_name, parse_duration};

/// `--cores`: a finite number above zero (the service checks the upper bound).
pub fn parse_cores(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(cores) if cores.is_finite() && cores > 0.0 => Ok(cores),
        Ok(_) => Err("must be a number of cores above 0, e.g. 2 or 0.5".into()),
        Err(_) => Err("must be a number, e.g. 2 or 0.5".into()),
    }
}

/// `--memory-mib`: a whole number of MiB above zero.
pub fn parse_memory(value: &str) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(mib) if mib > 0 => Ok(mib),
        _ => Err("must be a whole number of MiB above 0, e.g. 4096".into()),
    }
}

/// `--session-time-limit`: seconds, or a duration such as `1h30m`; never negative.
pub fn parse_time_limit(value: &str) -> Result<i64, String> {
    let value = value.trim();
    if value.starts_with('-') {
        return Err("must not be negative".into());
    }
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        return value
            .parse()
            .map_err(|_| format!("`{value}`: too many seconds"));
    }
    parse_duration(value).map(|d| d.num_seconds())
}

pub fn non_empty_zone(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("give a zone id or name (--no-zone for any zone)".into());
    }
    Ok(value.to_owned())
}

/// `--thumbnail-url`: '' or an http(s) URL with a host.
pub fn parse_url(value: &str) -> Result<String, String> {
    let url = value.trim();
    if url.is_empty() {
        return Ok(String::new());
    }
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url.to_owned())
}

/// `--persistent-profile-path`: '' or a path template naming the user.
pub fn parse_profile_path(value: &str) -> Result<String, String> {
    let path = value.trim();
    if !path.is_empty() && !path.contains("{username}") && !path.contains("{user_id}") {
        return Err("must contain {username} or {user_id}, e.g. /profiles/{username}".into());
    }
    Ok(path.to_owned())
}

pub fn parse_workdir(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    match host_path::problem(value) {
        None => Ok(value.to_owned()),
        Some(why) => Err(why),
    }
}

/// `--volume HOST:CONTAINER[:ro|rw]`, with the paths checked by the kit's one path rule (the
/// rule forbids ':' in paths, so the split is unambiguous).
pub fn parse_volume(value: &str) -> Result<VolumeMapping, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let (host, container, mode) = match parts.as_slice() {
        [host, container] => (*host, *container, "rw"),
        [host, container, mode] => (*host, *container, *mode),
        _ => return Err("expected HOST:CONTAINER or HOST:CONTAINER:ro|rw".into()),
    };
    if !matches!(mode, "ro" | "rw") {
        return Err(format!("mode `{mode}` must be ro or rw"));
    }
    if let Some(why) = host_path::problem(host) {
        return Err(format!("host path: {why}"));
    }
    if let Some(why) = host_path::problem(container) {
        return Err(format!("container path: {why}"));
    }
    if container == "/" {
        return Err("container path: must not be \"/\" (the container's root)".into());
    }
    Ok(VolumeMapping {
        host_path: host.to_owned(),
        container_path: container.to_owned(),
        mode: mode.to_owned(),
    })
}

/// The text of a JSON flag: inline, or the contents of the file after `@`.
fn json_text(value: &str) -> Result<String, String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}")),
        None => Ok(value.to_owned()),
    }
}

/// `--run-config`: checked by the kit's run_config validator, the one policy and the agent use.
pub fn parse_run_config(value: &str) -> Result<String, String> {
    let text = json_text(value)?;
    if text.trim().is_empty() {
        return Ok("{}".into());
    }
    let parsed: Value =
        serde_json::from_str(&text).map_err(|e| format!("is not valid JSON: {e}"))?;
    RunConfig::from_json("run_config", &parsed).map_err(|e| e.to_string())?;
    Ok(parsed.to_string())
}

/// `--exec-config`: every hook as one JSON object (Kasm's exec_config shape).
pub fn parse_exec_config(value: &str) -> Result<ExecConfig, String> {
    let text = json_text(value)?;
    if text.trim().is_empty() {
        return Ok(ExecConfig::default());
    }
    let parsed: Value =
        serde_json::from_str(&text).map_err(|e| format!("is not valid JSON: {e}"))?;
    let Value::Object(hooks) = parsed else {
        return Err("must be a JSON object with first_launch, go and assign".into());
    };
    let mut config = ExecConfig::default();
    for (name, hook) in &hooks {
        let slot = match name.as_str() {
            "first_launch" => &mut config.first_launch,
            "go" => &mut config.go,
            "assign" => &mut config.assign,
            _ => {
                return Err(format!(
                    "unknown hook `{name}` (first_launch, go or assign)"
                ));
            }
        };
        *slot = exec_hook(name, hook)?;
    }
    Ok(config)
}

fn exec_hook(name: &str, value: &Value) -> Result<Option<ExecHook>, String> {
    let fields = match value {
        Value::Null => return Ok(None),
        Value::Object(fields) => fields,
        _ => return Err(format!("{name}: must be an object or null")),
    };
    let text = |key: &str| -> Result<String, String> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{name}.{key}: must be a string")),
        }
    };
    let mut hook = ExecHook {
        cmd: text("cmd")?,
        user: text("user")?,
        workdir: text("workdir")?,
        ..Default::default()
    };
    for key in fields.keys() {
        if !["cmd", "user", "environment", "workdir", "privileged"].contains(&key.as_str()) {
            return Err(format!(
                "{name}.{key}: unknown (cmd, user, environment, workdir, privileged)"
            ));
        }
    }
    if hook.cmd.trim().is_empty() {
        return Err(format!("{name}.cmd: is required"));
    }
    if !hook.workdir.is_empty() {
        parse_workdir(&hook.workdir).map_err(|why| format!("{name}.workdir: {why}"))?;
    }
    hook.privileged = match fields.get("privileged") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(format!("{name}.privileged: must be true or false")),
    };
    hook.environment = match fields.get("environment") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(env)) => {
            let mut out = HashMap::new();
            for (key, value) in env {
                let Value::String(value) = value else {
                    return Err(format!("{name}.environment.{key}: must be a string"));
                };
                check_env_name(key).map_err(|why| format!("{name}.environment.{key}: {why}"))?;
                out.insert(key.clone(), value.clone());
            }
            out
        }
        Some(_) => {
            return Err(format!("{name}.environment: must be an object of strings"));
        }
    };
    Ok(Some(hook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_checked() {
        assert_eq!(parse_cores("1.5"), Ok(1.5));
        for bad in ["0", "-1", "NaN", "inf", "two"] {
            assert!(parse_cores(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_memory("4096"), Ok(4096));
        assert!(parse_memory("-1").is_err());
        assert!(parse_memory("1.5").is_err());
    }

    #[test]
    fn time_limits_take_seconds_or_durations_and_zero_is_a_limit() {
        assert_eq!(parse_time_limit("0"), Ok(0));
        assert_eq!(parse_time_limit("3600"), Ok(3600));
        assert_eq!(parse_time_limit("1h30m"), Ok(5400));
        assert_eq!(parse_time_limit("0s"), Ok(0));
        assert!(
            parse_time_limit("-5")
                .err()
                .is_some_and(|e| e.contains("negative"))
        );
        assert!(parse_time_limit("").is_err());
        assert!(parse_time_limit("soon").is_err());
    }

    #[test]
    fn volumes_follow_the_path_rule() {
        let v = parse_volume("/srv/data:/data:ro").expect("valid");
        assert_eq!(
            (
                v.host_path.as_str(),
                v.container_path.as_str(),
                v.mode.as_str()
            ),
            ("/srv/data", "/data", "ro")
        );
        assert_eq!(parse_volume("/a:/b").map(|v| v.mode), Ok("rw".into()));
        for bad in [
            "/a",
            "/a:/b:rx",
            "relative:/b",
            "/a:/",
            "/a:/b/../c",
            "/a:/b:ro:x",
            "",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
        assert!(
            parse_volume("/a:b")
                .err()
                .is_some_and(|e| e.starts_with("container path"))
        );
    }

    #[test]
    fn run_configs_go_through_the_kits_validator() {
        assert_eq!(
            parse_run_config(r#"{ "hostname": "kasm" }"#),
            Ok(r#"{"hostname":"kasm"}"#.into())
        );
        assert_eq!(parse_run_config(""), Ok("{}".into()));
        assert!(
            parse_run_config("{nope")
                .err()
                .is_some_and(|e| e.contains("not valid JSON"))
        );
        assert!(
            parse_run_config(r#"{"volumes_from": ["x"]}"#)
                .err()
                .is_some_and(|e| e.contains("volumes_from"))
        );
        assert!(parse_run_config("[]").is_err());
        assert!(
            parse_run_config("@/nonexistent/run.json")
                .err()
                .is_some_and(|e| e.contains("cannot read"))
        );
    }

    #[test]
    fn json_flags_read_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("exec.json");
        std::fs::write(
            &path,
            r#"{"go": {"cmd": "open $URL", "environment": {"A": "1"}, "privileged": true}}"#,
        )
        .expect("write");
        let config = parse_exec_config(&format!("@{}", path.display())).expect("valid");
        let go = config.go.expect("go hook");
        assert_eq!(go.cmd, "open $URL");
        assert!(go.privileged);
        assert_eq!(go.environment.get("A").map(String::as_str), Some("1"));
        assert!(config.first_launch.is_none());
    }

    #[test]
    fn exec_configs_say_what_is_wrong() {
        assert_eq!(parse_exec_config("{}"), Ok(ExecConfig::default()));
        assert_eq!(
            parse_exec_config(r#"{"go": null}"#),
            Ok(ExecConfig::default())
        );
        for (bad, why) in [
            (r#"{"launch": {"cmd": "x"}}"#, "unknown hook"),
            (r#"{"go": {"user": "root"}}"#, "go.cmd"),
            (r#"{"go": {"cmd": "x", "workdir": "tmp"}}"#, "go.workdir"),
            (
                r#"{"go": {"cmd": "x", "privileged": "yes"}}"#,
                "go.privileged",
            ),
            (
                r#"{"go": {"cmd": "x", "environment": {"A": 1}}}"#,
                "go.environment.A",
            ),
            (
                r#"{"go": {"cmd": "x", "environment": {"A=B": "1"}}}"#,
                "go.environment",
            ),
            (r#"{"go": {"cmd": "x", "shell": "sh"}}"#, "go.shell"),
            ("[1]", "object"),
        ] {
            let err = parse_exec_config(bad).err().unwrap_or_default();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn text_fields() {
        assert_eq!(parse_url(""), Ok(String::new()));
        assert!(parse_url("https://cdn.example.com/c.png").is_ok());
        assert!(parse_url("ftp://x/y").is_err());
        assert!(parse_url("https:///y").is_err());
        assert!(parse_profile_path("/profiles/{username}").is_ok());
        assert!(parse_profile_path("/profiles").is_err());
        assert_eq!(parse_profile_path(""), Ok(String::new()));
    }
}
