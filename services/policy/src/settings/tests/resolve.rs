use std::collections::BTreeMap;

use serde_json::json;

use super::super::*;

pub(super) fn group(id: &str, priority: i32, values: &[(&str, Value)]) -> GroupSettings {
    GroupSettings {
        group: GroupRef {
            id: id.to_owned(),
            name: format!("group {id}"),
            priority,
        },
        values: values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn seeded(id: &str, priority: i32, seed: Vec<(&'static str, Value)>) -> GroupSettings {
    group(id, priority, &seed)
}

#[test]
fn no_groups_gives_every_default() {
    let resolved = resolve(&[]);
    assert_eq!(resolved.len(), catalogue().len());
    for (r, def) in resolved.iter().zip(catalogue()) {
        assert_eq!(r.name, def.name);
        assert_eq!(r.value, def.default);
        assert!(r.is_default && r.supplied_by.is_empty() && r.overridden.is_empty());
    }
    let policy = EffectivePolicy::defaults();
    assert_eq!(policy.get("session_time_limit"), None);
    assert!(!policy.is_set("usage_limit"));
    assert_eq!(policy.get_int("keepalive_expiration"), Some(3600));
    assert_eq!(policy.volume_mapping(), VolumeMapping::default());
}

#[test]
fn built_in_groups_resolve_as_the_manual_says() {
    let admins = seeded(
        "0190a5b2-0000-7000-8000-000000000001",
        1,
        administrators_seed(),
    );
    let all_users = seeded(
        "0190a5b2-0000-7000-8000-000000000002",
        1000,
        all_users_seed(),
    );
    let admin = EffectivePolicy::resolve(&[all_users.clone(), admins.clone()]);
    assert_eq!(admin.get_bool("administrator"), Some(true));
    assert_eq!(admin.get_bool("allow_kasm_stop"), Some(true));
    assert_eq!(
        admin.explain("administrator").unwrap().supplied_by,
        vec![admins.group.clone()]
    );
    assert_eq!(admin.get_bool("allow_kasm_clipboard_down"), Some(true));
    assert_eq!(
        admin
            .explain("allow_kasm_clipboard_down")
            .unwrap()
            .supplied_by,
        vec![all_users.group.clone()]
    );
    let user = EffectivePolicy::resolve(&[all_users]);
    assert_eq!(user.get_bool("administrator"), Some(false));
    assert!(user.explain("administrator").unwrap().is_default);
    assert_eq!(user.get_float("idle_disconnect"), Some(20.0));
    assert_eq!(user.get_int("keepalive_interval"), Some(300));
    assert!(!user.explain("keepalive_interval").unwrap().is_default);
    assert_eq!(user.get_str("keepalive_expiration_action"), Some("delete"));
}

#[test]
fn lowest_priority_number_wins_and_weaker_setters_are_overridden() {
    let strong = group("b", 10, &[("max_kasms_per_user", Value::Int(1))]);
    let middle = group("c", 50, &[("max_kasms_per_user", Value::Int(2))]);
    let weak = group(
        "a",
        100,
        &[
            ("max_kasms_per_user", Value::Int(3)),
            ("allow_kasm_audio", Value::Bool(true)),
        ],
    );
    for groups in [
        [weak.clone(), strong.clone(), middle.clone()],
        [middle.clone(), weak.clone(), strong.clone()],
    ] {
        let policy = EffectivePolicy::resolve(&groups);
        let r = policy.explain("max_kasms_per_user").unwrap();
        assert_eq!(r.value, Some(Value::Int(1)));
        assert!(!r.is_default);
        assert_eq!(r.supplied_by, vec![strong.group.clone()]);
        assert_eq!(
            r.overridden,
            vec![
                (middle.group.clone(), Value::Int(2)),
                (weak.group.clone(), Value::Int(3))
            ]
        );
        assert_eq!(
            policy.explain("allow_kasm_audio").unwrap().supplied_by,
            vec![weak.group.clone()]
        );
        let order: Vec<&str> = strongest_first(&groups)
            .iter()
            .map(|g| g.group.id.as_str())
            .collect();
        assert_eq!(order, vec!["b", "c", "a"]);
    }
}

#[test]
fn equal_priorities_are_broken_by_the_older_uuidv7_id() {
    let older = group(
        "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b",
        5,
        &[("allow_kasm_sharing", Value::Bool(true))],
    );
    let newer = group(
        "0190a5b3-0000-7000-8000-000000000000",
        5,
        &[("allow_kasm_sharing", Value::Bool(false))],
    );
    for groups in [
        [older.clone(), newer.clone()],
        [newer.clone(), older.clone()],
    ] {
        let r = EffectivePolicy::resolve(&groups)
            .explain("allow_kasm_sharing")
            .cloned()
            .unwrap();
        assert_eq!(r.value, Some(Value::Bool(true)));
        assert_eq!(r.supplied_by, vec![older.group.clone()]);
        assert_eq!(
            r.overridden,
            vec![(newer.group.clone(), Value::Bool(false))]
        );
    }
}

#[test]
fn set_to_zero_is_not_the_same_as_not_set() {
    let zero = EffectivePolicy::resolve(&[group("g", 1, &[("session_time_limit", Value::Int(0))])]);
    assert_eq!(zero.get("session_time_limit"), Some(&Value::Int(0)));
    assert_eq!(zero.get_int("session_time_limit"), Some(0));
    assert!(zero.is_set("session_time_limit"));
    let unset = EffectivePolicy::resolve(&[group("g", 1, &[])]);
    assert_eq!(unset.get("session_time_limit"), None);
    assert_eq!(unset.get_int("session_time_limit"), None);
    assert!(unset.explain("session_time_limit").unwrap().is_default);
}

#[test]
fn volume_mapping_is_the_union_with_the_strongest_entry_per_host_path() {
    let mount = |bind: &str, mode: &str| json!({"bind": bind, "mode": mode});
    let strong = group(
        "s",
        1,
        &[(
            "volume_mapping",
            Value::Json(json!({"/data": mount("/strong", "ro")})),
        )],
    );
    let weak = group(
        "w",
        9,
        &[(
            "volume_mapping",
            Value::Json(
                json!({"/data": mount("/weak", "rw"), "/tools": mount("/opt/tools", "ro")}),
            ),
        )],
    );
    let shadowed = group(
        "x",
        20,
        &[(
            "volume_mapping",
            Value::Json(json!({"/data": mount("/x", "rw")})),
        )],
    );
    let empty = group("e", 30, &[("volume_mapping", Value::Json(json!({})))]);
    let policy = EffectivePolicy::resolve(&[
        empty.clone(),
        shadowed.clone(),
        weak.clone(),
        strong.clone(),
    ]);
    let r = policy.explain("volume_mapping").unwrap();
    assert_eq!(
        r.value,
        Some(Value::Json(
            json!({"/data": mount("/strong", "ro"), "/tools": mount("/opt/tools", "ro")})
        ))
    );
    assert!(!r.is_default);
    // `shadowed` contributed nothing; `{}` shadows nothing and so counts as supplying.
    assert_eq!(
        r.supplied_by,
        vec![
            strong.group.clone(),
            weak.group.clone(),
            empty.group.clone()
        ]
    );
    assert_eq!(
        r.overridden,
        vec![
            (
                weak.group.clone(),
                Value::Json(json!({"/data": mount("/weak", "rw")}))
            ),
            (
                shadowed.group.clone(),
                Value::Json(json!({"/data": mount("/x", "rw")}))
            ),
        ]
    );
    let typed = policy.volume_mapping();
    assert_eq!(typed.mounts.len(), 2);
    assert_eq!(
        typed.mounts["/data"],
        VolumeMount {
            bind: "/strong".to_owned(),
            mode: MountMode::ReadOnly
        }
    );
}

#[test]
fn getters_take_aliases_and_unknown_keys_are_ignored() {
    let policy = EffectivePolicy::resolve(&[group(
        "g",
        1,
        &[
            ("require_2fa", Value::Bool(true)),
            // Not canonical: the store never holds these, and resolution ignores them.
            ("enable_two_factor", Value::Bool(false)),
            ("no_such_setting", Value::Int(1)),
            (
                "usage_limit",
                Value::Json(json!({"type": "per_user", "interval": "daily", "hours": 2.0})),
            ),
            ("run_config", Value::Json(json!({"shm_size": "1g"}))),
        ],
    )]);
    assert_eq!(policy.get_bool("enable_totp_two_factor"), Some(true));
    assert_eq!(policy.explain("require_2fa").unwrap().overridden, vec![]);
    assert_eq!(policy.get("no_such_setting"), None);
    assert_eq!(policy.get_bool("max_kasms_per_user"), None);
    assert_eq!(
        policy.get_json("run_config"),
        Some(&json!({"shm_size": "1g"}))
    );
    assert_eq!(
        policy.usage_limit(),
        Some(UsageLimit {
            scope: UsageScope::PerUser,
            interval: UsageInterval::Daily,
            hours: 2.0
        })
    );
    assert_eq!(policy.iter().count(), catalogue().len());
    assert_eq!(policy.clone().into_resolved().len(), catalogue().len());
}
