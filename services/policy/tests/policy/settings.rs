//! Group settings: setting (typed and raw), aliases, validation, unsetting, and the difference
//! between "set to 0" and "not set".

use crate::common::{
    Backend, Code, Env, Kind, Outcome, both_backends, json_of, kind, pb, resolve_for, setting,
    stranger,
};

both_backends!(
    settings_are_set_typed_and_raw,
    aliases_are_stored_under_canonical_names,
    invalid_settings_are_refused_naming_the_setting,
    zero_is_a_value_and_not_set_is_not,
    setting_definitions_are_public,
);

async fn settings_are_set_typed_and_raw(backend: Backend) {
    let env = Env::start(backend).await;
    let group = env.group("Tuned", 10).await;

    let typed = env
        .set(&group.id, "keepalive_expiration", Kind::IntValue(7200))
        .await;
    assert_eq!(typed.group_id, group.id);
    assert_eq!(typed.name, "keepalive_expiration");
    assert_eq!(kind(&typed.value), Some(Kind::IntValue(7200)));
    assert!(typed.updated_at.is_some());

    let raw = env
        .try_set_raw(&group.id, "allow_kasm_audio", " Yes ")
        .await
        .must();
    assert_eq!(kind(&raw.value), Some(Kind::BoolValue(true)));
    let raw = env
        .try_set_raw(&group.id, "keepalive_expiration_action", "PAUSE")
        .await
        .must();
    assert_eq!(kind(&raw.value), Some(Kind::StringValue("pause".into())));
    let raw = env
        .try_set_raw(
            &group.id,
            "volume_mapping",
            r#"{"/srv/data/": {"bind": "/data", "mode": "RO"}}"#,
        )
        .await
        .must();
    // Stored in canonical form: trailing slash dropped, mode lowercased.
    assert_eq!(
        json_of(&kind(&raw.value)),
        serde_json::json!({"/srv/data": {"bind": "/data", "mode": "ro"}})
    );
    let usage = env
        .set(
            &group.id,
            "usage_limit",
            Kind::JsonValue(r#"{"type": "per_user", "interval": "weekly", "hours": 10}"#.into()),
        )
        .await;
    assert_eq!(
        json_of(&kind(&usage.value)),
        serde_json::json!({"type": "per_user", "interval": "weekly", "hours": 10.0})
    );
    // An integer for a float setting is widened.
    let idle = env
        .set(&group.id, "idle_disconnect", Kind::IntValue(30))
        .await;
    assert_eq!(kind(&idle.value), Some(Kind::FloatValue(30.0)));

    // Setting again replaces.
    env.set(&group.id, "keepalive_expiration", Kind::IntValue(60))
        .await;
    let stored = env.group_settings(&group.id).await;
    assert_eq!(
        stored,
        vec![
            ("allow_kasm_audio".to_owned(), Some(Kind::BoolValue(true))),
            ("idle_disconnect".to_owned(), Some(Kind::FloatValue(30.0))),
            ("keepalive_expiration".to_owned(), Some(Kind::IntValue(60))),
            (
                "keepalive_expiration_action".to_owned(),
                Some(Kind::StringValue("pause".into()))
            ),
            (
                "usage_limit".to_owned(),
                Some(Kind::JsonValue(
                    serde_json::json!({"type": "per_user", "interval": "weekly", "hours": 10.0})
                        .to_string()
                ))
            ),
            (
                "volume_mapping".to_owned(),
                Some(Kind::JsonValue(
                    serde_json::json!({"/srv/data": {"bind": "/data", "mode": "ro"}}).to_string()
                ))
            ),
        ]
    );

    assert!(env.unset(&group.id, "keepalive_expiration").await);
    assert!(!env.unset(&group.id, "keepalive_expiration").await);
    assert!(
        !env.group_settings(&group.id)
            .await
            .iter()
            .any(|(name, _)| name == "keepalive_expiration")
    );
    env.admin()
        .unset_group_setting(pb::UnsetGroupSettingRequest {
            group_id: group.id.clone(),
            name: "keepalive_expirationn".into(),
        })
        .await
        .invalid("keepalive_expirationn");
    env.try_set(&stranger(), "allow_kasm_audio", Kind::BoolValue(true))
        .await
        .fails(Code::NotFound);
}

async fn aliases_are_stored_under_canonical_names(backend: Backend) {
    let env = Env::start(backend).await;
    let group = env.group("Secure", 10).await;
    let stored = env
        .set(&group.id, "enable_totp_two_factor", Kind::BoolValue(true))
        .await;
    assert_eq!(stored.name, "require_2fa");
    // Another alias of the same setting overwrites the one row.
    env.try_set_raw(&group.id, "enable_two_factor", "false")
        .await
        .must();
    assert_eq!(
        env.group_settings(&group.id).await,
        vec![("require_2fa".to_owned(), Some(Kind::BoolValue(false)))]
    );
    // Unset by an alias removes the canonical row.
    assert!(env.unset(&group.id, "enable_totp_two_factor").await);
    assert!(env.group_settings(&group.id).await.is_empty());
    // The manual's spaced spelling of dotted names.
    let spaced = env
        .set(
            &group.id,
            "control_panel. show_logout",
            Kind::BoolValue(false),
        )
        .await;
    assert_eq!(spaced.name, "control_panel.show_logout");
}

async fn invalid_settings_are_refused_naming_the_setting(backend: Backend) {
    let env = Env::start(backend).await;
    let group = env.group("Strict", 10).await;
    let g = group.id.as_str();

    let status = env
        .try_set(g, "alow_kasm_audio", Kind::BoolValue(true))
        .await
        .invalid("alow_kasm_audio");
    assert!(status.message().contains("unknown setting"), "{status:?}");
    assert!(
        status.message().contains("allow_kasm_audio"),
        "suggests the near name: {status:?}"
    );
    let status = env
        .try_set(g, "allow_kasm_audio", Kind::IntValue(1))
        .await
        .invalid("allow_kasm_audio");
    assert!(status.message().contains("boolean"), "{status:?}");
    env.try_set(g, "keepalive_expiration", Kind::StringValue("soon".into()))
        .await
        .invalid("keepalive_expiration");
    let status = env
        .try_set(
            g,
            "keepalive_expiration_action",
            Kind::StringValue("explode".into()),
        )
        .await
        .invalid("keepalive_expiration_action");
    assert!(status.message().contains("explode"), "{status:?}");
    assert!(status.message().contains("delete"), "{status:?}");
    let status = env
        .try_set(g, "keepalive_expiration", Kind::IntValue(-5))
        .await
        .invalid("keepalive_expiration");
    assert!(status.message().contains("negative"), "{status:?}");
    env.try_set_raw(g, "session_time_limit", "-1")
        .await
        .invalid("session_time_limit");
    env.try_set_raw(g, "session_time_limit", "an hour")
        .await
        .invalid("session_time_limit");
    let status = env
        .try_set(
            g,
            "usage_limit",
            Kind::JsonValue(r#"{"type": "per_user", "interval": "daily"}"#.into()),
        )
        .await
        .invalid("usage_limit");
    assert!(status.message().contains("hours"), "{status:?}");
    env.try_set(
        g,
        "usage_limit",
        Kind::JsonValue(r#"{"type": "per_user", "interval": "daily", "hours": 0}"#.into()),
    )
    .await
    .invalid("usage_limit");
    for bad in [
        r#"{"relative/path": {"bind": "/data", "mode": "rw"}}"#,
        r#"{"/srv": {"bind": "/data"}}"#,
        r#"{"/srv": {"bind": "/data", "mode": "rx"}}"#,
        r#"{"/srv/../etc": {"bind": "/data", "mode": "rw"}}"#,
        r#"["/srv"]"#,
    ] {
        env.try_set(g, "volume_mapping", Kind::JsonValue(bad.into()))
            .await
            .invalid("volume_mapping");
    }
    env.try_set(g, "volume_mapping", Kind::JsonValue("{not json".into()))
        .await
        .invalid("volume_mapping");
    env.try_set_raw(g, "volume_mapping", "{not json")
        .await
        .invalid("volume_mapping");
    for bad in ["ftp://example.com/", "not a url", "https://"] {
        env.try_set(g, "dashboard_redirect", Kind::StringValue(bad.into()))
            .await
            .invalid("dashboard_redirect");
    }
    env.try_set(g, "run_config", Kind::JsonValue("[1, 2]".into()))
        .await
        .invalid("run_config");

    // The request's own shape.
    env.admin()
        .set_group_setting(pb::SetGroupSettingRequest {
            group_id: g.into(),
            name: "allow_kasm_audio".into(),
            value: Some(pb::SettingValue {
                kind: Some(Kind::BoolValue(true)),
            }),
            raw_value: "true".into(),
        })
        .await
        .invalid("raw_value");
    env.admin()
        .set_group_setting(pb::SetGroupSettingRequest {
            group_id: g.into(),
            name: "allow_kasm_audio".into(),
            value: None,
            raw_value: String::new(),
        })
        .await
        .invalid("value");
    env.admin()
        .set_group_setting(pb::SetGroupSettingRequest {
            group_id: g.into(),
            name: "allow_kasm_audio".into(),
            value: Some(pb::SettingValue { kind: None }),
            raw_value: String::new(),
        })
        .await
        .invalid("allow_kasm_audio");
    env.try_set(g, " ", Kind::BoolValue(true))
        .await
        .invalid("name");

    // Nothing refused was stored.
    assert!(env.group_settings(g).await.is_empty());
}

async fn zero_is_a_value_and_not_set_is_not(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let group = env.group("Timed", 10).await;
    env.add_member(&group.id, &user).await;

    let own = |client: &crate::common::Client| {
        let mut client = client.clone();
        async move {
            client
                .resolve_effective_policy(resolve_for(""))
                .await
                .must()
        }
    };
    let policy = own(&client).await;
    assert_eq!(policy.user_id, user);
    let limit = setting(&policy, "session_time_limit");
    assert_eq!(limit.value, None, "not set by default");
    assert!(limit.is_default);

    env.set(&group.id, "session_time_limit", Kind::IntValue(0))
        .await;
    let policy = own(&client).await;
    let limit = setting(&policy, "session_time_limit");
    assert_eq!(
        kind(&limit.value),
        Some(Kind::IntValue(0)),
        "zero is a value"
    );
    assert!(!limit.is_default);

    env.set(&group.id, "session_time_limit", Kind::IntValue(900))
        .await;
    assert_eq!(
        env.value(&user, "session_time_limit").await,
        Some(Kind::IntValue(900))
    );

    assert!(env.unset(&group.id, "session_time_limit").await);
    let policy = own(&client).await;
    let limit = setting(&policy, "session_time_limit");
    assert_eq!(limit.value, None);
    assert!(limit.is_default);
}

async fn setting_definitions_are_public(backend: Backend) {
    let env = Env::start(backend).await;
    let (_, client) = env.user().await;
    let definitions = client
        .clone()
        .list_setting_definitions(pb::ListSettingDefinitionsRequest {})
        .await
        .must()
        .settings;
    let find = |name: &str| {
        definitions
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is catalogued"))
    };
    let limit = find("session_time_limit");
    assert_eq!(limit.r#type, "int");
    assert_eq!(limit.default_value, None);
    assert_eq!(limit.unit, "seconds");
    let action = find("keepalive_expiration_action");
    assert_eq!(action.r#type, "enum");
    assert_eq!(action.allowed_values, vec!["delete", "stop", "pause"]);
    assert_eq!(
        kind(&action.default_value),
        Some(Kind::StringValue("delete".into()))
    );
    let volumes = find("volume_mapping");
    assert_eq!(volumes.resolution, "combined across all member groups");
    assert!(
        find("require_2fa")
            .aliases
            .contains(&"enable_totp_two_factor".to_owned())
    );
    // Nobody may change settings without settings.modify.
    client
        .clone()
        .set_group_setting(pb::SetGroupSettingRequest {
            group_id: crate::common::ALL_USERS_ID.into(),
            name: "administrator".into(),
            value: Some(pb::SettingValue {
                kind: Some(Kind::BoolValue(true)),
            }),
            raw_value: String::new(),
        })
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .list_group_settings(pb::ListGroupSettingsRequest {
            group_id: crate::common::ALL_USERS_ID.into(),
        })
        .await
        .fails(Code::PermissionDenied);
}
