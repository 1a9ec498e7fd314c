use std::collections::HashSet;

use super::super::*;

#[test]
fn catalogue_has_every_reference_setting() {
    // 48 from seeds/001, 11 beyond it (pairs and the 2FA trio split into separate entries).
    assert_eq!(catalogue().len(), 59);
    for name in [
        "administrator",
        "allow_kasm_clipboard_seamless",
        "control_panel.advanced_settings.show_prefer_local_cursor",
        "require_2fa",
        "web_filter_policy",
        "allow_kasm_webcam",
        "allow_kasm_printing",
        "allow_totp_2fa",
        "allow_webauthn_2fa",
        "allow_2fa_self_enrollment",
        "show_disabled_images",
        "disabled_image_message",
    ] {
        assert_eq!(lookup(name).map(|d| d.name), Some(name), "{name}");
    }
}

#[test]
fn names_and_aliases_are_unique() {
    let mut seen = HashSet::new();
    for def in catalogue() {
        assert!(seen.insert(def.name), "duplicate name {}", def.name);
        for alias in def.aliases {
            assert!(seen.insert(*alias), "duplicate alias {alias}");
        }
    }
}

#[test]
fn every_default_and_seed_passes_its_own_validator_unchanged() {
    for def in catalogue() {
        for value in [&def.default, &def.all_users_seed].into_iter().flatten() {
            assert_eq!(
                validate(def, value.clone()).as_ref(),
                Ok(value),
                "{}",
                def.name
            );
        }
    }
    for (name, value) in administrators_seed() {
        let def = lookup(name).unwrap();
        assert_eq!(def.name, name);
        assert_eq!(validate(def, value.clone()), Ok(value));
    }
}

#[test]
fn seeds_match_the_reference() {
    let all_users: Vec<(&'static str, Value)> = all_users_seed();
    let mut expected: Vec<(&'static str, Value)> = [
        "allow_kasm_audio",
        "allow_kasm_clipboard_down",
        "allow_kasm_clipboard_seamless",
        "allow_kasm_clipboard_up",
        "allow_kasm_downloads",
        "allow_kasm_gamepad",
        "allow_kasm_microphone",
        "allow_kasm_uploads",
        "allow_persistent_profile",
        "enable_ui_server_logging",
        "kasm_audio_default_on",
        "auto_add_local_users",
    ]
    .into_iter()
    .map(|n| (n, Value::Bool(true)))
    .collect();
    expected.push(("idle_disconnect", Value::Float(20.0)));
    expected.push(("keepalive_expiration", Value::Int(3600)));
    expected.push(("keepalive_interval", Value::Int(300)));
    let sorted = |mut v: Vec<(&'static str, Value)>| {
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    };
    assert_eq!(sorted(all_users), sorted(expected));
    assert_eq!(
        administrators_seed(),
        vec![
            ("administrator", Value::Bool(true)),
            ("allow_kasm_pause", Value::Bool(true)),
            ("allow_kasm_stop", Value::Bool(true)),
        ]
    );
}

#[test]
fn not_set_defaults_and_zero_defaults_differ() {
    for name in ["session_time_limit", "usage_limit", "web_filter_policy"] {
        assert_eq!(lookup(name).unwrap().default, None, "{name}");
    }
    assert_eq!(
        lookup("password_expires").unwrap().default,
        Some(Value::Int(0))
    );
    assert_eq!(
        lookup("chat_history_messages").unwrap().default,
        Some(Value::Int(0))
    );
}

#[test]
fn only_volume_mapping_is_combined() {
    let combined: Vec<&str> = catalogue()
        .iter()
        .filter(|d| d.resolution == Resolution::Combined)
        .map(|d| d.name)
        .collect();
    assert_eq!(combined, vec!["volume_mapping"]);
    assert_eq!(
        Resolution::Combined.describe(),
        "combined across all member groups"
    );
    assert_eq!(
        Resolution::LowestPriority.describe(),
        "lowest priority number wins"
    );
}

#[test]
fn types_units_and_enum_values_are_described() {
    let action = lookup("keepalive_expiration_action").unwrap();
    assert_eq!(action.ty.name(), "enum");
    assert_eq!(action.ty.allowed_values(), &["delete", "stop", "pause"]);
    assert_eq!(
        lookup("keepalive_expiration").unwrap().unit,
        Some(Unit::Seconds)
    );
    assert_eq!(
        lookup("idle_disconnect").unwrap().unit.map(Unit::as_str),
        Some("minutes")
    );
    assert_eq!(lookup("password_expires").unwrap().unit, Some(Unit::Days));
    assert_eq!(lookup("usage_limit").unwrap().ty.name(), "usage_limit");
    assert_eq!(
        lookup("volume_mapping").unwrap().ty.name(),
        "volume_mapping"
    );
    assert_eq!(lookup("default_image").unwrap().ty.name(), "image");
    assert_eq!(lookup("dashboard_redirect").unwrap().ty.name(), "url");
    assert_eq!(lookup("web_filter_policy").unwrap().ty.name(), "policy");
    assert!(
        lookup("allow_kasm_audio")
            .unwrap()
            .ty
            .allowed_values()
            .is_empty()
    );
}

#[test]
fn aliases_map_to_the_canonical_definition() {
    for (alias, canonical) in [
        ("enable_totp_two_factor", "require_2fa"),
        ("enable_two_factor", "require_2fa"),
        ("default_workspace_image", "default_image"),
    ] {
        let def = lookup(alias).unwrap();
        assert_eq!(def.name, canonical);
        assert!(def.answers_to(alias) && def.answers_to(canonical));
    }
}

#[test]
fn lookup_is_case_sensitive_but_ignores_whitespace() {
    assert!(lookup("Allow_Kasm_Audio").is_none());
    assert!(lookup("nonsense").is_none());
    assert!(lookup("").is_none());
    let def = lookup("control_panel. advanced_settings. show_game_mode").unwrap();
    assert_eq!(def.name, "control_panel.advanced_settings.show_game_mode");
}

#[test]
fn unknown_names_are_refused_with_a_suggestion_when_near() {
    let e = definition_for("allow_kasm_audo").unwrap_err();
    assert_eq!(e.setting, "allow_kasm_audo");
    assert_eq!(
        e.to_string(),
        "allow_kasm_audo: unknown setting; did you mean \"allow_kasm_audio\"?"
    );
    // Case and dashes are forgiven when suggesting, and aliases lead to the canonical name.
    let e = definition_for("Keepalive-Interval").unwrap_err();
    assert!(e.reason.contains("\"keepalive_interval\""), "{e}");
    let e = definition_for("enable_two_factr").unwrap_err();
    assert!(e.reason.contains("\"require_2fa\""), "{e}");
    let e = definition_for("frobnicate").unwrap_err();
    assert_eq!(e.to_string(), "frobnicate: unknown setting");
    let e = definition_for("  ").unwrap_err();
    assert_eq!(e.to_string(), "setting name: must not be empty");
    let long = "x".repeat(1000);
    assert_eq!(definition_for(&long).unwrap_err().setting.len(), 100);
}

#[test]
fn definitions_validate_and_parse_through_their_methods() {
    let def = lookup("max_kasms_per_user").unwrap();
    assert_eq!(def.validate(Value::Int(3)), Ok(Value::Int(3)));
    assert_eq!(def.parse_raw("4"), Ok(Value::Int(4)));
}
