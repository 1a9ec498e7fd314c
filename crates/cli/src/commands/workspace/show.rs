//! How one workspace is printed: every field as `key: value` lines for people (one line per
//! exec hook, volumes as `host:container:mode`, the time limit with "none" apart from "0s"),
//! the whole message as JSON for programs.

use atrium_proto::policy::v1::{ExecHook, Workspace};

use crate::commands::Ctx;
use crate::json::time_text;
use crate::output::{print_fields, print_json, yes_no};
use crate::policy_json;

/// Prints one workspace: the main fields for people, the whole message for programs.
pub fn show(ctx: &Ctx, w: &Workspace) {
    if ctx.json() {
        print_json(&policy_json::workspace(w));
        return;
    }
    print_fields(&workspace_fields(w));
}

fn workspace_fields(w: &Workspace) -> Vec<(&'static str, String)> {
    let exec = w.exec_config.clone().unwrap_or_default();
    let mut fields = vec![
        ("id", w.id.clone()),
        ("image", w.name.clone()),
        ("name", w.friendly_name.clone()),
        ("description", w.description.clone()),
        ("categories", w.categories.join(", ")),
        ("enabled", yes_no(w.enabled)),
        ("hidden", yes_no(w.hidden)),
        ("cores", w.cores.to_string()),
        ("memory (MiB)", w.memory_mib.to_string()),
        ("gpus", w.gpu_count.to_string()),
        ("require gpu", yes_no(w.require_gpu)),
        ("zone", w.zone_id.clone()),
        (
            "session time limit",
            time_limit_text(w.session_time_limit_secs),
        ),
        ("thumbnail", w.thumbnail_url.clone()),
    ];
    if w.host_access_withheld {
        fields.push((
            "host access",
            "withheld (run config, exec hooks, volumes and profile path: administrators only)"
                .to_owned(),
        ));
    } else {
        fields.extend([
            ("run config", w.run_config_json.clone()),
            ("exec first_launch", hook_text(exec.first_launch.as_ref())),
            ("exec go", hook_text(exec.go.as_ref())),
            ("exec assign", hook_text(exec.assign.as_ref())),
            ("volumes", volumes_text(w)),
            ("persistent profile", w.persistent_profile_path.clone()),
        ]);
    }
    fields.extend([
        ("created", time_text(w.created_at.as_ref())),
        ("updated", time_text(w.updated_at.as_ref())),
    ]);
    fields
}

/// `3600s (1h)`; `none` when absent, which is not the same as `0s`.
fn time_limit_text(secs: Option<i64>) -> String {
    let Some(secs) = secs else {
        return "none".to_owned();
    };
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut short = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            short.push_str(&format!("{n}{unit}"));
        }
    }
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{secs}s ({short})")
    }
}

/// A hook on one line: `cmd [user root, workdir /x, privileged, env A=1 B=2]`.
fn hook_text(hook: Option<&ExecHook>) -> String {
    let Some(h) = hook else {
        return String::new();
    };
    let mut extra = Vec::new();
    if !h.user.is_empty() {
        extra.push(format!("user {}", h.user));
    }
    if !h.workdir.is_empty() {
        extra.push(format!("workdir {}", h.workdir));
    }
    if h.privileged {
        extra.push("privileged".to_owned());
    }
    if !h.environment.is_empty() {
        let mut env: Vec<String> = h
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.sort();
        extra.push(format!("env {}", env.join(" ")));
    }
    if extra.is_empty() {
        h.cmd.clone()
    } else {
        format!("{} [{}]", h.cmd, extra.join(", "))
    }
}

/// `host:container:mode` for each mapping, comma-separated.
fn volumes_text(w: &Workspace) -> String {
    w.volume_mappings
        .iter()
        .map(|v| format!("{}:{}:{}", v.host_path, v.container_path, v.mode))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(id: &str, image: &str, name: &str) -> Workspace {
        Workspace {
            id: id.into(),
            name: image.into(),
            friendly_name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_field_is_shown_and_a_zero_limit_is_not_none() {
        let mut w = ws("1", "img", "Img");
        w.session_time_limit_secs = Some(0);
        w.exec_config = Some(atrium_proto::policy::v1::ExecConfig {
            go: Some(ExecHook {
                cmd: "open".into(),
                user: "root".into(),
                privileged: true,
                environment: [("B".into(), "2".into()), ("A".into(), "1".into())].into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        w.volume_mappings = vec![atrium_proto::policy::v1::VolumeMapping {
            host_path: "/a".into(),
            container_path: "/b".into(),
            mode: "ro".into(),
        }];
        let fields = workspace_fields(&w);
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("session time limit").as_deref(), Some("0s"));
        assert_eq!(
            get("exec go").as_deref(),
            Some("open [user root, privileged, env A=1 B=2]")
        );
        assert_eq!(get("exec assign").as_deref(), Some(""));
        assert_eq!(get("volumes").as_deref(), Some("/a:/b:ro"));
        assert!(get("host access").is_none());
        w.session_time_limit_secs = None;
        w.host_access_withheld = true;
        let fields = workspace_fields(&w);
        assert!(
            fields
                .iter()
                .any(|(k, v)| *k == "session time limit" && v == "none")
        );
        assert!(fields.iter().any(|(k, _)| *k == "host access"));
        assert!(!fields.iter().any(|(k, _)| *k == "run config"));
        assert_eq!(time_limit_text(Some(5400)), "5400s (1h30m)");
    }
}
