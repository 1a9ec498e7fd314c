//! The pure half of the Developer API: request bodies as Kasm clients send them, errors in
//! Kasm's shape, and Atrium's messages turned into Kasm's objects (ids, dates, states).

use std::collections::HashMap;

use atrium_proto::identity::v1 as idp;
use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as sess;
use atrium_service_kit::http::HttpError;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Errors.

/// A failed call: `{"error_message": "..."}` with a 4xx/5xx status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KasmError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl KasmError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 naming `field`.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("{field}: {message}"))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn body(&self) -> Value {
        json!({ "error_message": self.message })
    }
}

impl From<HttpError> for KasmError {
    fn from(e: HttpError) -> Self {
        Self::new(e.status, e.message)
    }
}

impl From<tonic::Status> for KasmError {
    fn from(status: tonic::Status) -> Self {
        HttpError::from(status).into()
    }
}

impl IntoResponse for KasmError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = secs.to_string().parse()
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// A service's error about a field of a nested request object, named from the Kasm body's root
/// (`password: …` becomes `target_user.password: …`).
pub fn within(prefix: &'static str) -> impl Fn(tonic::Status) -> KasmError {
    move |status| {
        let e = HttpError::from(status);
        if e.field.is_empty() {
            KasmError::new(e.status, e.message)
        } else {
            KasmError::new(e.status, format!("{prefix}.{}", e.message))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing.

/// Parses a body into `T`; a field of the wrong type is a 400 naming it from the root.
/// Unknown fields are ignored (Kasm clients send extras); an empty body is `{}`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, KasmError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // Derived structs would also take a JSON array (as a tuple): only an object is a body.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(KasmError::invalid("body", "must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let mut text = inner.to_string();
        // "… at line 1 column 30": the position is noise to an API client.
        if let Some(cut) = text.find(" at line ") {
            text.truncate(cut);
        }
        if inner.is_syntax() || inner.is_eof() {
            KasmError::invalid("body", format!("not valid JSON ({text})"))
        } else if path == "." || path.is_empty() {
            KasmError::invalid("body", format!("must be a JSON object ({text})"))
        } else {
            KasmError::invalid(&path, text)
        }
    })
}

/// The credential fields of every body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Keys {
    pub api_key: Option<String>,
    pub api_key_secret: Option<String>,
}

/// A required text field: present, not null, not blank.
pub fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, KasmError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(KasmError::invalid(field, "is required")),
    }
}

/// An id as Atrium writes it (lowercase UUID with dashes), from a UUID with or without dashes.
pub fn parse_id(field: &str, raw: &str) -> Result<String, KasmError> {
    let raw = raw.trim();
    let ok = raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit())
        || raw.len() == 36 && raw.bytes().filter(|b| *b == b'-').count() == 4;
    uuid::Uuid::parse_str(raw)
        .ok()
        .filter(|_| ok)
        .map(|u| u.hyphenated().to_string())
        .ok_or_else(|| KasmError::invalid(field, "is not an id (a UUID, with or without dashes)"))
}

/// A required id field.
pub fn required_id(value: &Option<String>, field: &str) -> Result<String, KasmError> {
    parse_id(field, required(value, field)?)
}

/// An optional id field (absent, null or blank: none).
pub fn optional_id(value: &Option<String>, field: &str) -> Result<Option<String>, KasmError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => parse_id(field, v).map(Some),
        _ => Ok(None),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TargetUser {
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub organization: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub custom_attribute_1: Option<String>,
    pub custom_attribute_2: Option<String>,
    pub custom_attribute_3: Option<String>,
    pub locked: Option<bool>,
    pub disabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TargetGroup {
    pub group_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub priority: Option<i32>,
}

/// Bodies of the user and group calls.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UserBody {
    pub target_user: Option<TargetUser>,
    pub target_group: Option<TargetGroup>,
    pub force: Option<bool>,
}

impl UserBody {
    pub fn user(&self) -> Result<&TargetUser, KasmError> {
        self.target_user
            .as_ref()
            .ok_or_else(|| KasmError::invalid("target_user", "is required"))
    }

    pub fn group(&self) -> Result<&TargetGroup, KasmError> {
        self.target_group
            .as_ref()
            .ok_or_else(|| KasmError::invalid("target_group", "is required"))
    }

    pub fn user_id(&self) -> Result<String, KasmError> {
        required_id(&self.user()?.user_id, "target_user.user_id")
    }

    pub fn group_id(&self) -> Result<String, KasmError> {
        required_id(&self.group()?.group_id, "target_group.group_id")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Attributes {
    pub user_id: Option<String>,
    pub ssh_public_key: Option<String>,
    pub show_tips: Option<bool>,
    pub theme: Option<String>,
    pub preferred_language: Option<String>,
    pub preferred_timezone: Option<String>,
    pub toggle_control_panel: Option<bool>,
    pub default_image: Option<String>,
    pub auto_login_kasm: Option<bool>,
    pub chat_sfx: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AttributesBody {
    pub target_user_attributes: Option<Attributes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RequestKasm {
    pub user_id: Option<String>,
    pub image_id: Option<String>,
    pub enable_sharing: Option<bool>,
    pub kasm_url: Option<String>,
    pub environment: Option<HashMap<String, String>>,
    pub connection_info: Option<Value>,
    pub client_language: Option<String>,
    pub client_timezone: Option<String>,
    pub egress_gateway_id: Option<String>,
    pub persistent_profile_mode: Option<String>,
    pub rdp_client_type: Option<String>,
    pub server_id: Option<String>,
}

/// get_kasm_status, keepalive, destroy_kasm.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct KasmRef {
    pub user_id: Option<String>,
    pub kasm_id: Option<String>,
    pub skip_agent_check: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExecConfig {
    pub cmd: Option<String>,
    pub workdir: Option<String>,
    pub environment: Option<HashMap<String, String>>,
    pub privileged: Option<bool>,
    pub user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExecBody {
    pub user_id: Option<String>,
    pub kasm_id: Option<String>,
    pub exec_config: Option<ExecConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JoinBody {
    pub user_id: Option<String>,
    pub share_id: Option<String>,
    pub shared_id: Option<String>,
}

/// Kasm's persistent_profile_mode as the session-manager's option ("" = the workspace's).
pub fn profile_mode(raw: Option<&str>) -> Result<String, KasmError> {
    let field = "persistent_profile_mode";
    match raw.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(String::new()),
        Some("enabled") => Ok("enabled".into()),
        Some("disabled") => Ok("disabled".into()),
        Some("reset") => Err(KasmError::invalid(
            field,
            "Reset is not supported by Atrium (Enabled or Disabled)",
        )),
        Some(_) => Err(KasmError::invalid(field, "must be Enabled or Disabled")),
    }
}

/// Kasm's `exec_config` as one argv: `sh -c` the command in `workdir` with `environment`.
/// `privileged` and another `user` are refused (commands run as the session's user).
pub fn exec_argv(config: &ExecConfig) -> Result<Vec<String>, KasmError> {
    let cmd = required(&config.cmd, "exec_config.cmd")?;
    if config.privileged == Some(true) {
        return Err(KasmError::invalid(
            "exec_config.privileged",
            "privileged commands are not supported: commands run as the session's user",
        ));
    }
    if config.user.as_deref().is_some_and(|u| !u.trim().is_empty()) {
        return Err(KasmError::invalid(
            "exec_config.user",
            "another user is not supported: commands run as the session's user",
        ));
    }
    let mut argv = Vec::new();
    if let Some(env) = config.environment.as_ref().filter(|e| !e.is_empty()) {
        argv.push("env".to_owned());
        let mut pairs: Vec<_> = env.iter().collect();
        pairs.sort();
        for (k, v) in pairs {
            let name_ok = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                return Err(KasmError::invalid(
                    &format!("exec_config.environment.{k}"),
                    "is not a valid variable name",
                ));
            }
            argv.push(format!("{k}={v}"));
        }
    }
    let script = match config.workdir.as_deref().map(str::trim) {
        Some(dir) if !dir.is_empty() => format!("cd {} && {cmd}", shell_quote(dir)),
        _ => cmd.to_owned(),
    };
    argv.extend(["sh".to_owned(), "-c".to_owned(), script]);
    Ok(argv)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

// ---------------------------------------------------------------------------------------------
// Answers.

/// A timestamp as Kasm writes dates ("YYYY-MM-DD HH:MM:SS", UTC); null when missing.
pub fn date(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.and_then(|t| {
        chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
    })
    .map(|t| Value::String(t.format("%Y-%m-%d %H:%M:%S").to_string()))
    .unwrap_or(Value::Null)
}

pub fn now() -> Value {
    Value::String(chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Empty text as null.
fn text(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_owned())
    }
}

/// Kasm's operational_status of a session.
pub fn operational_status(s: &sess::Session) -> &'static str {
    use sess::{DesiredState as D, ObservedState as O};
    let observed = O::try_from(s.observed_state).unwrap_or(O::Unspecified);
    let desired = D::try_from(s.desired_state).unwrap_or(D::Unspecified);
    match observed {
        O::Deleted => "deleted",
        O::Failed => "failed",
        _ if desired == D::Deleted => "deleting",
        O::Unspecified | O::Requested => "requested",
        O::Starting => "starting",
        O::Running => "running",
        O::Pausing => "pausing",
        O::Paused => "paused",
        O::Stopping => "stopping",
        O::Stopped => "stopped",
        O::Deleting => "deleting",
        O::Lost => "lost",
    }
}

/// Whether a session has ended for good.
pub fn ended(s: &sess::Session) -> bool {
    use sess::ObservedState as O;
    matches!(
        O::try_from(s.observed_state),
        Ok(O::Deleted) | Ok(O::Failed)
    )
}

/// Where a browser opens the session: the gateway's session proxy.
pub fn kasm_url(session_id: &str) -> String {
    format!("/session/{session_id}/")
}

/// What a session's workspace adds to its Kasm object (when the caller may read workspaces).
#[derive(Debug, Clone, Default)]
pub struct Sizing {
    pub cores: f64,
    pub memory_mib: i64,
    pub gpus: u32,
}

impl From<&pol::Workspace> for Sizing {
    fn from(w: &pol::Workspace) -> Self {
        Self {
            cores: w.cores,
            memory_mib: w.memory_mib,
            gpus: w.gpu_count,
        }
    }
}

/// Kasm's `kasm` object of a session.
pub fn kasm_object(s: &sess::Session, sizing: Option<&Sizing>) -> Value {
    let running = operational_status(s) == "running";
    json!({
        "kasm_id": s.id,
        "user_id": s.user_id,
        "image_id": s.workspace_id,
        "operational_status": operational_status(s),
        "operational_progress": s.progress,
        "operational_message": text(&s.message),
        "start_date": date(s.started_at.as_ref()),
        "keepalive_date": date(s.last_keepalive_at.as_ref()),
        "expiration_date": date(s.expires_at.as_ref()),
        "created_date": date(s.created_at.as_ref()),
        "container_id": Value::Null,
        "hostname": text(&s.host),
        "host": text(&s.host),
        "port": if s.port == 0 { Value::Null } else { json!(s.port) },
        "cores": sizing.map(|z| json!(z.cores)).unwrap_or(Value::Null),
        "memory": sizing.map(|z| json!(z.memory_mib.saturating_mul(1 << 20))).unwrap_or(Value::Null),
        "gpus": sizing.map(|z| json!(z.gpus)).unwrap_or(Value::Null),
        "share_id": Value::Null,
        "zone_name": text(&s.zone_id),
        "server_id": text(&s.agent_id),
        "token": Value::Null,
        "view_only_token": Value::Null,
        "docker_image": text(&s.image),
        "url": if running { json!(kasm_url(&s.id)) } else { Value::Null },
        "kasm_url": text(&s.url),
    })
}

/// The status fields every session answer carries (top level of get_kasm_status).
pub fn status_fields(s: &sess::Session) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("kasm_id".into(), json!(s.id));
    map.insert("user_id".into(), json!(s.user_id));
    map.insert("status".into(), json!(operational_status(s)));
    map.insert("operational_status".into(), json!(operational_status(s)));
    map.insert("operational_progress".into(), json!(s.progress));
    map.insert("operational_message".into(), text(&s.message));
    map
}

fn realm(r: i32) -> &'static str {
    match idp::Realm::try_from(r).unwrap_or(idp::Realm::Unspecified) {
        idp::Realm::Ldap => "ldap",
        idp::Realm::Saml => "saml",
        idp::Realm::Oidc => "oidc",
        idp::Realm::Local | idp::Realm::Unspecified => "local",
    }
}

/// Kasm's `user` object; `groups` and `kasms` when the caller may read them.
pub fn user_object(
    u: &idp::User,
    groups: Option<&[pol::Group]>,
    kasms: Option<&[sess::Session]>,
) -> Value {
    let mut v = json!({
        "user_id": u.id,
        "username": u.username,
        "first_name": text(&u.first_name),
        "last_name": text(&u.last_name),
        "email": text(&u.email),
        "phone": text(&u.phone),
        "organization": text(&u.organization),
        "notes": text(&u.notes),
        "realm": realm(u.realm),
        "locked": u.locked,
        "disabled": u.disabled,
        "two_factor": u.two_factor_enrolled,
        "created": date(u.created_at.as_ref()),
        "password_set_date": date(u.password_set_at.as_ref()),
        "last_session": date(u.last_session_at.as_ref()),
        "city": text(&u.city),
        "state": text(&u.state),
        "country": text(&u.country),
        "custom_attribute_1": text(&u.custom_attribute_1),
        "custom_attribute_2": text(&u.custom_attribute_2),
        "custom_attribute_3": text(&u.custom_attribute_3),
    });
    if let Some(map) = v.as_object_mut() {
        if let Some(groups) = groups {
            map.insert(
                "groups".into(),
                groups
                    .iter()
                    .map(|g| json!({"group_id": g.id, "name": g.name}))
                    .collect(),
            );
        }
        if let Some(kasms) = kasms {
            map.insert(
                "kasms".into(),
                kasms.iter().map(|s| kasm_object(s, None)).collect(),
            );
        }
    }
    v
}

pub fn group_object(g: &pol::Group) -> Value {
    json!({
        "group_id": g.id,
        "name": g.name,
        "description": text(&g.description),
        "priority": g.priority,
        "is_system": g.is_system,
        "member_count": g.member_count,
        "created": date(g.created_at.as_ref()),
    })
}

fn theme_name(t: i32) -> Value {
    match idp::Theme::try_from(t).unwrap_or(idp::Theme::Unspecified) {
        idp::Theme::Light => json!("Light"),
        idp::Theme::Dark => json!("Dark"),
        idp::Theme::Auto => json!("Auto"),
        idp::Theme::Unspecified => Value::Null,
    }
}

/// Kasm's theme names (any case) as identity's.
pub fn parse_theme(raw: &str) -> Result<idp::Theme, KasmError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "light" => Ok(idp::Theme::Light),
        "dark" => Ok(idp::Theme::Dark),
        "auto" => Ok(idp::Theme::Auto),
        _ => Err(KasmError::invalid(
            "target_user_attributes.theme",
            "must be Light, Dark or Auto",
        )),
    }
}

/// Kasm's `user_attributes` (every key present; Atrium has no language or timezone preference).
pub fn attributes_object(settings: &idp::UserSettings, ssh_public_key: Option<&str>) -> Value {
    json!({
        "user_attributes_id": settings.user_id,
        "user_id": settings.user_id,
        "ssh_public_key": ssh_public_key.map(Value::from).unwrap_or(Value::Null),
        "show_tips": settings.show_tips_during_session,
        "theme": theme_name(settings.theme),
        "preferred_language": Value::Null,
        "preferred_timezone": Value::Null,
        "toggle_control_panel": settings.toggle_control_panel,
        "default_image": text(&settings.default_workspace_image),
        "auto_login_kasm": settings.auto_launch_session,
        "chat_sfx": settings.chat_sound_effects,
    })
}

/// Kasm's image object of a workspace.
pub fn image_object(w: &pol::Workspace) -> Value {
    let run_config = serde_json::from_str::<Value>(&w.run_config_json)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let hook = |h: &Option<pol::ExecHook>| {
        h.as_ref().map(|h| {
            json!({
                "cmd": h.cmd,
                "user": text(&h.user),
                "environment": h.environment,
                "workdir": text(&h.workdir),
                "privileged": h.privileged,
            })
        })
    };
    let exec_config = w
        .exec_config
        .as_ref()
        .map(|e| {
            let mut map = Map::new();
            for (name, h) in [
                ("first_launch", hook(&e.first_launch)),
                ("go", hook(&e.go)),
                ("assign", hook(&e.assign)),
            ] {
                if let Some(h) = h {
                    map.insert(name.into(), h);
                }
            }
            Value::Object(map)
        })
        .unwrap_or_else(|| json!({}));
    let volumes: Map<String, Value> = w
        .volume_mappings
        .iter()
        .map(|m| {
            (
                m.host_path.clone(),
                json!({"bind": m.container_path, "mode": m.mode}),
            )
        })
        .collect();
    json!({
        "image_id": w.id,
        "name": w.name,
        "friendly_name": text(&w.friendly_name),
        "description": text(&w.description),
        "image_src": text(&w.thumbnail_url),
        "enabled": w.enabled,
        "available": w.enabled,
        "hidden": w.hidden,
        "cores": w.cores,
        "memory": w.memory_mib.saturating_mul(1 << 20),
        "gpu_count": w.gpu_count,
        "require_gpu": w.require_gpu,
        "categories": w.categories,
        "run_config": run_config,
        "exec_config": exec_config,
        "volume_mappings": volumes,
        "persistent_profile_path": text(&w.persistent_profile_path),
        "session_time_limit": w.session_time_limit_secs,
        "zone_id": text(&w.zone_id),
        "zone_name": text(&w.zone_id),
        "restrict_to_zone": !w.zone_id.is_empty(),
        "image_type": "Container",
        "created": date(w.created_at.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos: 0 }
    }

    #[test]
    fn ids_with_or_without_dashes() {
        let dashed = "0192f5a2-7c3b-7def-8a1b-0123456789ab";
        assert_eq!(parse_id("x", dashed).as_deref(), Ok(dashed));
        assert_eq!(
            parse_id("x", "0192F5A27C3B7DEF8A1B0123456789AB").as_deref(),
            Ok(dashed)
        );
        assert_eq!(parse_id("x", &format!(" {dashed} ")).as_deref(), Ok(dashed));
        for bad in [
            "",
            "nope",
            "0192f5a27c3b7def8a1b0123456789a",
            "{0192f5a2-7c3b-7def-8a1b-0123456789ab}",
            "urn:uuid:0192f5a2-7c3b-7def-8a1b-0123456789ab",
        ] {
            let e = parse_id("kasm_id", bad).expect_err(bad);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.starts_with("kasm_id: "), "{}", e.message);
        }
        assert_eq!(optional_id(&None, "x"), Ok(None));
        assert_eq!(optional_id(&Some("  ".into()), "x"), Ok(None));
        assert!(required_id(&None, "user_id").is_err());
    }

    #[test]
    fn dates_are_kasm_strings_or_null() {
        assert_eq!(date(Some(&ts(1_795_428_900))), json!("2026-11-23 10:15:00"));
        assert_eq!(date(None), Value::Null);
        let odd = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: -5,
        };
        assert_eq!(date(Some(&odd)), Value::Null, "never panics");
    }

    fn session(observed: sess::ObservedState, desired: sess::DesiredState) -> sess::Session {
        sess::Session {
            id: "0192f5a2-7c3b-7def-8a1b-0123456789ab".into(),
            user_id: "u".into(),
            workspace_id: "w".into(),
            observed_state: observed as i32,
            desired_state: desired as i32,
            ..Default::default()
        }
    }

    #[test]
    fn states_map_to_kasm_statuses() {
        use sess::{DesiredState as D, ObservedState as O};
        let cases = [
            (O::Requested, D::Running, "requested"),
            (O::Starting, D::Running, "starting"),
            (O::Running, D::Running, "running"),
            (O::Running, D::Deleted, "deleting"),
            (O::Pausing, D::Paused, "pausing"),
            (O::Paused, D::Paused, "paused"),
            (O::Stopping, D::Stopped, "stopping"),
            (O::Stopped, D::Stopped, "stopped"),
            (O::Deleting, D::Deleted, "deleting"),
            (O::Deleted, D::Deleted, "deleted"),
            (O::Failed, D::Running, "failed"),
            (O::Lost, D::Running, "lost"),
        ];
        for (o, d, want) in cases {
            assert_eq!(operational_status(&session(o, d)), want, "{o:?} {d:?}");
        }
        let mut weird = session(O::Running, D::Running);
        weird.observed_state = 99;
        assert_eq!(operational_status(&weird), "requested");
    }

    #[test]
    fn a_running_kasm_object_points_at_the_proxy() {
        let mut s = session(sess::ObservedState::Running, sess::DesiredState::Running);
        s.port = 32001;
        s.host = "10.0.0.5".into();
        s.started_at = Some(ts(1_795_428_900));
        let sizing = Sizing {
            cores: 1.5,
            memory_mib: 2048,
            gpus: 0,
        };
        let k = kasm_object(&s, Some(&sizing));
        assert_eq!(k["operational_status"], "running");
        assert_eq!(k["url"], "/session/0192f5a2-7c3b-7def-8a1b-0123456789ab/");
        assert_eq!(k["start_date"], "2026-11-23 10:15:00");
        assert_eq!(k["keepalive_date"], Value::Null);
        assert_eq!(k["memory"], 2048_i64 << 20);
        assert_eq!(k["port"], 32001);
        let starting = kasm_object(
            &session(sess::ObservedState::Starting, sess::DesiredState::Running),
            None,
        );
        assert_eq!(starting["url"], Value::Null);
        assert_eq!(starting["cores"], Value::Null);
    }

    #[test]
    fn attributes_carry_every_key_the_clients_read() {
        let a = attributes_object(
            &idp::UserSettings {
                user_id: "u1".into(),
                theme: idp::Theme::Dark as i32,
                ..Default::default()
            },
            None,
        );
        for key in [
            "user_attributes_id",
            "ssh_public_key",
            "show_tips",
            "theme",
            "preferred_language",
            "preferred_timezone",
            "toggle_control_panel",
            "default_image",
            "auto_login_kasm",
        ] {
            assert!(a.get(key).is_some(), "{key}");
        }
        assert_eq!(a["theme"], "Dark");
        assert_eq!(parse_theme("light"), Ok(idp::Theme::Light));
        assert!(parse_theme("pink").is_err());
    }

    #[test]
    fn bodies_ignore_extras_accept_nulls_and_name_bad_fields() {
        let body = br#"{"api_key":"k","api_key_secret":"s","extra":[1,2],
            "target_user":{"username":"a","password":"p","first_name":null,"phone":null,
            "locked":false,"disabled":null,"unknown":{"x":1}}}"#;
        let b: UserBody = parse(body).expect("parses");
        let u = b.user().expect("user");
        assert_eq!(u.username.as_deref(), Some("a"));
        assert_eq!(u.first_name, None);
        assert_eq!(u.locked, Some(false));
        let keys: Keys = parse(body).expect("keys");
        assert_eq!(keys.api_key.as_deref(), Some("k"));

        let e = parse::<UserBody>(br#"{"target_user":{"locked":"yes"}}"#).expect_err("type");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.starts_with("target_user.locked: "),
            "{}",
            e.message
        );
        assert!(!e.message.contains("line"), "{}", e.message);

        let e = parse::<RequestKasm>(br#"{"environment":{"A":1}}"#).expect_err("type");
        assert!(e.message.starts_with("environment.A: "), "{}", e.message);
        let e = parse::<KasmRef>(br#"{"kasm_id":5}"#).expect_err("type");
        assert!(e.message.starts_with("kasm_id: "), "{}", e.message);
        let e = parse::<Keys>(br#"{"api_key":["k"]}"#).expect_err("type");
        assert!(e.message.starts_with("api_key: "), "{}", e.message);
        let e = parse::<KasmRef>(b"[1]").expect_err("array");
        assert!(e.message.starts_with("body: "), "{}", e.message);
        let e = parse::<KasmRef>(b"{\"kasm_id\":").expect_err("eof");
        assert!(e.message.starts_with("body: "), "{}", e.message);
        let e = parse::<KasmRef>(b"\xff\xfe").expect_err("bytes");
        assert!(e.message.starts_with("body: "), "{}", e.message);
        let empty: KasmRef = parse(b"  ").expect("empty body is {}");
        assert!(empty.kasm_id.is_none());
        assert!(parse::<UserBody>(b"{}").expect("ok").user().is_err());
    }

    #[test]
    fn exec_config_becomes_a_shell_command() {
        let config = ExecConfig {
            cmd: Some("echo $GREETING > out".into()),
            workdir: Some("/home/it's".into()),
            environment: Some(HashMap::from([("GREETING".into(), "hi".into())])),
            privileged: Some(false),
            user: None,
        };
        assert_eq!(
            exec_argv(&config).expect("ok"),
            vec![
                "env",
                "GREETING=hi",
                "sh",
                "-c",
                "cd '/home/it'\\''s' && echo $GREETING > out"
            ]
        );
        let bad_env = ExecConfig {
            cmd: Some("true".into()),
            environment: Some(HashMap::from([("A=B".into(), "x".into())])),
            ..Default::default()
        };
        assert!(exec_argv(&bad_env).is_err());
        let privileged = ExecConfig {
            cmd: Some("true".into()),
            privileged: Some(true),
            ..Default::default()
        };
        let e = exec_argv(&privileged).expect_err("privileged");
        assert!(e.message.starts_with("exec_config.privileged"));
        assert!(exec_argv(&ExecConfig::default()).is_err());
    }

    #[test]
    fn profile_modes() {
        assert_eq!(profile_mode(None).as_deref(), Ok(""));
        assert_eq!(profile_mode(Some("Enabled")).as_deref(), Ok("enabled"));
        assert_eq!(profile_mode(Some("disabled")).as_deref(), Ok("disabled"));
        assert!(profile_mode(Some("Reset")).is_err());
        assert!(profile_mode(Some("sometimes")).is_err());
    }

    #[test]
    fn errors_keep_the_status_and_name_the_nested_field() {
        let status = tonic::Status::from(atrium_service_kit::ApiError::invalid(
            "password",
            "is required for local users",
        ));
        let e = within("target_user")(status);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "target_user.password: is required for local users"
        );
        let e: KasmError = tonic::Status::not_found("session x").into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.body(), json!({"error_message": "session x"}));
    }
}
