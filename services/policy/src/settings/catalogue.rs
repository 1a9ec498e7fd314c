//! The catalogue of group settings (reference/group-settings.md), its aliases, and the seeds of
//! the built-in groups.
//!
//! Order: the seeds/001 table (alphabetical by Kasm's names, so `require_2fa` sits where its older
//! name `enable_totp_two_factor` sorts), then the settings current Kasm added. Resolution and
//! `EffectivePolicy` walk this order.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::definition::{Definition, Resolution, SettingType, Unit};
use super::value::Value;

/// 100 years in seconds: the ceiling of every duration in seconds (and of usage hours).
const SECONDS_MAX: i64 = 3_153_600_000;
/// 100 years in minutes.
const MINUTES_MAX: f64 = 52_560_000.0;
/// 100 years in days.
const DAYS_MAX: i64 = 36_500;
/// A ceiling for counts (sessions, chat messages) that no real deployment reaches.
const COUNT_MAX: i64 = 10_000;
/// The longest free-text value.
pub const STRING_MAX_LEN: usize = 2048;

const KEEPALIVE_ACTIONS: &[&str] = &["delete", "stop", "pause"];

static CATALOGUE: LazyLock<Vec<Definition>> = LazyLock::new(build);

/// Canonical names and aliases → position in [`CATALOGUE`].
static INDEX: LazyLock<HashMap<&'static str, usize>> = LazyLock::new(|| {
    let mut index = HashMap::new();
    for (i, def) in CATALOGUE.iter().enumerate() {
        index.insert(def.name, i);
        for alias in def.aliases {
            index.insert(*alias, i);
        }
    }
    index
});

/// Every catalogued setting, in catalogue order.
pub fn catalogue() -> &'static [Definition] {
    &CATALOGUE
}

/// The definition for a canonical name or an alias. Case-sensitive; whitespace is ignored,
/// because the manual renders dotted names with spaces ("control_panel. show_logout").
pub fn lookup(name_or_alias: &str) -> Option<&'static Definition> {
    position(name_or_alias).map(|i| &CATALOGUE[i])
}

/// Where `lookup` would find the setting in [`catalogue`].
pub(crate) fn position(name_or_alias: &str) -> Option<usize> {
    if let Some(i) = INDEX.get(name_or_alias) {
        return Some(*i);
    }
    if name_or_alias.chars().any(char::is_whitespace) {
        let squeezed: String = name_or_alias
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        return INDEX.get(squeezed.as_str()).copied();
    }
    None
}

/// The canonical name nearest to an unknown `name` (edit distance over names and aliases,
/// ignoring case and treating `-` like `_`), if one is near enough to be a likely typo.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    let wanted: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    if wanted.len() > 200 {
        return None;
    }
    let limit = (wanted.chars().count() / 4).clamp(1, 4);
    INDEX
        .iter()
        .map(|(known, i)| (edit_distance(&wanted, known), CATALOGUE[*i].name))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, canonical)| canonical)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// What the built-in All Users group is seeded with: the reference's All Users column, plus the
/// session-lifetime values the manual says are set "by default in the All Users group"
/// (keepalive_expiration 3600, keepalive_interval 300, idle_disconnect 20). Catalogue order.
pub fn all_users_seed() -> Vec<(&'static str, Value)> {
    CATALOGUE
        .iter()
        .filter_map(|def| def.all_users_seed.clone().map(|v| (def.name, v)))
        .collect()
}

/// What the built-in Administrators group is seeded with.
pub fn administrators_seed() -> Vec<(&'static str, Value)> {
    vec![
        ("administrator", Value::Bool(true)),
        ("allow_kasm_pause", Value::Bool(true)),
        ("allow_kasm_stop", Value::Bool(true)),
    ]
}

fn entry(
    name: &'static str,
    ty: SettingType,
    default: Option<Value>,
    description: &'static str,
) -> Definition {
    Definition {
        name,
        aliases: &[],
        ty,
        default,
        all_users_seed: None,
        description,
        resolution: Resolution::LowestPriority,
        unit: None,
    }
}

fn flag(name: &'static str, default: bool, description: &'static str) -> Definition {
    entry(
        name,
        SettingType::Bool,
        Some(Value::Bool(default)),
        description,
    )
}

fn empty_object() -> Value {
    Value::Json(serde_json::Value::Object(serde_json::Map::new()))
}

impl Definition {
    fn aka(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    fn seed(mut self, value: impl Into<Value>) -> Self {
        self.all_users_seed = Some(value.into());
        self
    }

    fn in_unit(mut self, unit: Unit) -> Self {
        self.unit = Some(unit);
        self
    }

    fn combined(mut self) -> Self {
        self.resolution = Resolution::Combined;
        self
    }
}

// A table, one setting per entry; rustfmt would spread each over six lines.
#[rustfmt::skip]
fn build() -> Vec<Definition> {
    use SettingType as T;
    let seconds = T::Int {
        min: 0,
        max: SECONDS_MAX,
    };
    let count = T::Int {
        min: 0,
        max: COUNT_MAX,
    };
    vec![
        // ---- seeds/001 ----
        flag("administrator", false, "Full administrative rights over everything."),
        flag("allow_kasm_audio", false, "Audio streaming from the session.").seed(true),
        flag("allow_kasm_clipboard_down", false, "Copy text from the session to the local computer.").seed(true),
        flag("allow_kasm_clipboard_seamless", false, "Clipboard without the control panel (Chromium-based browsers only).").seed(true),
        flag("allow_kasm_clipboard_up", false, "Paste from the local computer into the session.").seed(true),
        flag("allow_kasm_delete", true, "Users may delete their own running sessions."),
        flag("allow_kasm_downloads", false, "Download files from the session.").seed(true),
        flag("allow_kasm_gamepad", false, "Pass local gamepads through to the session.").seed(true),
        flag("allow_kasm_microphone", false, "Pass the local microphone through to the session.").seed(true),
        flag("allow_kasm_pause", false, "Users may pause their sessions."),
        flag("allow_kasm_sharing", false, "Users may share a session with other users (view-only link)."),
        flag("allow_kasm_stop", false, "Users may stop their sessions."),
        flag("allow_kasm_uploads", false, "Upload files into the session.").seed(true),
        flag("allow_persistent_profile", false, "Persistent profiles, where the workspace defines a profile path.").seed(true),
        flag("allow_point_of_presence", false, "Point-of-presence (egress location) features."),
        flag("allow_zone_selection", false, "Users pick the zone at launch; a picked zone is never widened to others."),
        flag("auto_login_to_kasm", false, "After login, go straight into the default workspace."),
        entry("chat_history_messages", count, Some(Value::Int(0)), "Chat messages shown to someone joining a shared session; 0 shows none."),
        flag("control_panel.advanced_settings.show_game_mode", true, "Show the game mode toggle in the control panel's advanced menu."),
        flag("control_panel.advanced_settings.show_ime_input_mode", true, "Show the IME input mode toggle in the control panel's advanced menu."),
        flag("control_panel.advanced_settings.show_keyboard_controls", true, "Show keyboard controls in the control panel's advanced menu."),
        flag("control_panel.advanced_settings.show_pointer_lock", true, "Show the pointer lock toggle in the control panel's advanced menu."),
        flag("control_panel.advanced_settings.show_prefer_local_cursor", true, "Show the prefer-local-cursor toggle in the control panel's advanced menu."),
        flag("control_panel.show_fullscreen", true, "Show the fullscreen option in the control panel."),
        flag("control_panel.show_delete_session", true, "Show the delete session option in the control panel."),
        flag("control_panel.show_logout", true, "Show the logout option in the control panel."),
        flag("control_panel.show_return_to_workspaces", true, "Show the return-to-workspaces option in the control panel."),
        flag("control_panel.show_streaming_quality", true, "Show the streaming quality option in the control panel."),
        entry("dashboard_redirect", T::Url, Some(Value::from("")), "Standard users are sent to this http(s) URL instead of the dashboard; empty for none."),
        // Atrium calls images "workspaces"; the alias spells that out. Not a Kasm name.
        entry("default_image", T::Image, Some(Value::from("")), "Workspace for /go and auto_login_to_kasm: resumes the user's session of it, else creates one; empty for none.")
            .aka(&["default_workspace_image"]),
        flag("display_ui_errors", false, "Show detailed errors in the browser."),
        // seeds/001 lists this nameless where Kasm's older `enable_totp_two_factor` sorts (Kasm's
        // 2FA guide still names it); `enable_two_factor` is the short form of that older name.
        flag("require_2fa", false, "Members must enrol a two-factor key at their next login.")
            .aka(&["enable_totp_two_factor", "enable_two_factor"]),
        flag("enable_ui_server_logging", false, "The browser sends its log messages to the server.").seed(true),
        flag("expose_user_environment_vars", false, "Set KASM_USER and KASM_USER_ID inside the session's container."),
        entry("idle_disconnect", T::Float { min: 0.0, max: MINUTES_MAX }, Some(Value::Float(20.0)), "Log an idle user out after this many minutes; their sessions then follow keepalive_expiration.")
            .in_unit(Unit::Minutes).seed(20.0),
        flag("inject_ssh_keys", false, "Put the user's SSH public and private key into new sessions."),
        flag("kasm_audio_default_on", false, "Audio is on when a session starts.").seed(true),
        flag("kasm_ime_mode_default_on", false, "IME is on when a session starts."),
        entry("keepalive_expiration", seconds, Some(Value::Int(3600)), "A session lives this many seconds without a keepalive (the session timeout); keep it at least twice keepalive_interval.")
            .in_unit(Unit::Seconds).seed(3600_i64),
        entry("keepalive_expiration_action", T::Enum(KEEPALIVE_ACTIONS), Some(Value::from("delete")), "What happens at keepalive expiry: delete, stop or pause (stop and pause only for container sessions; others delete)."),
        entry("keepalive_interval", T::Int { min: 1, max: SECONDS_MAX }, Some(Value::Int(300)), "Seconds between keepalives from a client that is actively in a session.")
            .in_unit(Unit::Seconds).seed(300_i64),
        flag("lock_sharing_video_mode", true, "Fix shared sessions at 720p."),
        entry("max_kasms_per_user", count, Some(Value::Int(5)), "Simultaneous sessions per user."),
        entry("run_config", T::Json, Some(empty_object()), "Extra `docker run` parameters (a JSON object)."),
        entry("session_time_limit", seconds, None, "Hard lifetime in seconds from creation; keepalives don't extend it and a countdown is shown. Not set = unlimited; 0 is a value.")
            .in_unit(Unit::Seconds),
        entry("usage_limit", T::UsageLimit, None, "Running-session hours allowed per user or per group over a daily, weekly, monthly or total window. Not set = unmetered.")
            .in_unit(Unit::Hours),
        entry("volume_mapping", T::VolumeMapping, Some(empty_object()), "Host paths bind-mounted into sessions: {\"/host/path\": {\"bind\": \"/in/container\", \"mode\": \"rw\"|\"ro\"}}; combined across all member groups.")
            .combined(),
        entry("web_filter_policy", T::Policy, None, "Web filter policy for sessions; a workspace's own policy wins. Empty = explicitly none."),
        // ---- beyond seeds/001 (current Kasm) ----
        flag("allow_kasm_force_delete", false, "Users may force-delete a session stuck in deleting."),
        flag("allow_kasm_webcam", false, "Pass the local webcam through to the session."),
        flag("allow_kasm_printing", false, "Print from the session to the local computer."),
        flag("allow_totp_2fa", true, "TOTP (authenticator app) is an allowed second factor."),
        flag("allow_webauthn_2fa", true, "WebAuthn (security key) is an allowed second factor."),
        flag("allow_2fa_self_enrollment", false, "Users may enrol two-factor devices themselves on their profile page."),
        flag("auto_add_local_users", false, "Local users join this group on creation and at login.").seed(true),
        entry("password_expires", T::Int { min: 0, max: DAYS_MAX }, Some(Value::Int(0)), "Password age limit in days; 0 = never expires.")
            .in_unit(Unit::Days),
        flag("record_sessions", false, "Record sessions."),
        flag("show_disabled_images", false, "Show disabled workspaces on the dashboard (greyed out)."),
        entry("disabled_image_message", T::String { max_len: STRING_MAX_LEN }, Some(Value::from("")), "Message shown on disabled workspaces on the dashboard."),
    ]
}
