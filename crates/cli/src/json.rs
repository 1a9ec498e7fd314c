//! Proto messages as JSON for `--output json`: field names as in the .proto, enums as
//! lowercase names (`"local"`, `"dark"`), timestamps as RFC 3339 strings (null when absent).
//! Secrets are never part of these shapes except where a command prints one on purpose.

use atrium_proto::identity::v1::{
    ApiKey, LoginResponse, LoginStatus, Realm, SshKey, Theme, User, UserSettings, WhoAmIResponse,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// A protobuf timestamp as a chrono instant (`None` when absent or out of range).
pub fn instant(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let ts = ts?;
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

/// RFC 3339 text of a timestamp to the second (for tables), or "" when absent.
pub fn time_text(ts: Option<&prost_types::Timestamp>) -> String {
    instant(ts)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A timestamp as RFC 3339 (with its fraction), or null when absent.
pub fn time(ts: Option<&prost_types::Timestamp>) -> Value {
    match instant(ts) {
        Some(at) => Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

pub fn realm_name(value: i32) -> String {
    match Realm::try_from(value) {
        Ok(Realm::Local) | Ok(Realm::Unspecified) => "local".into(),
        Ok(Realm::Ldap) => "ldap".into(),
        Ok(Realm::Saml) => "saml".into(),
        Ok(Realm::Oidc) => "oidc".into(),
        Err(_) => format!("unknown({value})"),
    }
}

pub fn theme_name(value: i32) -> String {
    match Theme::try_from(value) {
        Ok(Theme::Unspecified) => "unspecified".into(),
        Ok(Theme::Light) => "light".into(),
        Ok(Theme::Dark) => "dark".into(),
        Ok(Theme::Auto) => "auto".into(),
        Err(_) => format!("unknown({value})"),
    }
}

pub fn login_status_name(value: i32) -> String {
    match LoginStatus::try_from(value) {
        Ok(LoginStatus::Unspecified) => "unspecified".into(),
        Ok(LoginStatus::Success) => "success".into(),
        Ok(LoginStatus::PasswordChangeRequired) => "password_change_required".into(),
        Ok(LoginStatus::TotpRequired) => "totp_required".into(),
        Ok(LoginStatus::TotpEnrollmentRequired) => "totp_enrollment_required".into(),
        Err(_) => format!("unknown({value})"),
    }
}

pub fn user(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "realm": realm_name(u.realm),
        "notes": u.notes,
        "locked": u.locked,
        "disabled": u.disabled,
        "organization": u.organization,
        "phone": u.phone,
        "email": u.email,
        "custom_attribute_1": u.custom_attribute_1,
        "custom_attribute_2": u.custom_attribute_2,
        "custom_attribute_3": u.custom_attribute_3,
        "city": u.city,
        "state": u.state,
        "country": u.country,
        "created_at": time(u.created_at.as_ref()),
        "updated_at": time(u.updated_at.as_ref()),
        "password_set_at": time(u.password_set_at.as_ref()),
        "last_session_at": time(u.last_session_at.as_ref()),
        "force_password_reset": u.force_password_reset,
        "two_factor_enrolled": u.two_factor_enrolled,
        "failed_login_count": u.failed_login_count,
        "is_admin": u.is_admin,
    })
}

pub fn api_key(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "read_only": k.read_only,
        "permissions": k.permissions,
        "created_at": time(k.created_at.as_ref()),
        "expires_at": time(k.expires_at.as_ref()),
        "last_used_at": time(k.last_used_at.as_ref()),
        "revoked": k.revoked,
        "created_by": k.created_by,
    })
}

/// An audit event; `detail` is parsed back into JSON when it is valid JSON.
/// An audit event's detail: its JSON when it is JSON, else the text, null when empty.
pub fn audit_detail(detail: &str) -> Value {
    if detail.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(detail).unwrap_or_else(|_| Value::String(detail.to_owned()))
    }
}

pub fn user_settings(s: &UserSettings) -> Value {
    json!({
        "user_id": s.user_id,
        "auto_launch_session": s.auto_launch_session,
        "chat_sound_effects": s.chat_sound_effects,
        "default_workspace_image": s.default_workspace_image,
        "show_tips_during_session": s.show_tips_during_session,
        "toggle_control_panel": s.toggle_control_panel,
        "theme": theme_name(s.theme),
    })
}

/// An SSH key; `private_key` only when the server returned one.
pub fn ssh_key(k: &SshKey) -> Value {
    let mut value = json!({
        "user_id": k.user_id,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
        "updated_at": time(k.updated_at.as_ref()),
    });
    if !k.private_key.is_empty() {
        value["private_key"] = Value::String(k.private_key.clone());
    }
    value
}

pub fn whoami(w: &WhoAmIResponse) -> Value {
    json!({
        "kind": w.kind,
        "user_id": w.user_id,
        "username": w.username,
        "api_key_id": w.api_key_id,
        "service": w.service,
        "scope": w.scope,
        "is_admin": w.is_admin,
        "permissions": w.permissions,
    })
}

/// A completed login, without its tokens (they go to the credentials file only).
pub fn login(r: &LoginResponse, endpoint: &str) -> Value {
    json!({
        "status": login_status_name(r.status),
        "endpoint": endpoint,
        "login_session_id": r.login_session_id,
        "access_token_expires_at": time(r.access_token_expires_at.as_ref()),
        "refresh_token_expires_at": time(r.refresh_token_expires_at.as_ref()),
        "user": r.user.as_ref().map(user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    #[test]
    fn users_have_every_field_with_rfc3339_times_and_named_enums() {
        let u = User {
            id: "u1".into(),
            username: "alice".into(),
            realm: Realm::Ldap as i32,
            created_at: ts(1_700_000_000),
            failed_login_count: 2,
            ..Default::default()
        };
        let v = user(&u);
        assert_eq!(v["id"], "u1");
        assert_eq!(v["realm"], "ldap");
        assert_eq!(v["created_at"], "2023-11-14T22:13:20Z");
        assert!(v["password_set_at"].is_null());
        assert_eq!(v["failed_login_count"], 2);
        assert_eq!(v["locked"], false);
        assert_eq!(v.as_object().map(|o| o.len()), Some(25));
    }

    #[test]
    fn subsecond_times_keep_their_fraction() {
        let t = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 250_000_000,
        };
        assert_eq!(time(Some(&t)), "2023-11-14T22:13:20.250Z");
        assert_eq!(time_text(Some(&t)), "2023-11-14T22:13:20Z");
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(time(Some(&bad)), Value::Null);
    }

    #[test]
    fn audit_detail_is_parsed_when_it_is_json() {
        assert_eq!(
            audit_detail(r#"{"reason":"bad_password"}"#)["reason"],
            "bad_password"
        );
        assert_eq!(audit_detail("not json"), "not json");
        assert!(audit_detail("").is_null());
    }

    #[test]
    fn ssh_private_keys_only_when_present() {
        let mut k = SshKey {
            public_key: "ssh-ed25519 AAAA".into(),
            ..Default::default()
        };
        assert!(ssh_key(&k).get("private_key").is_none());
        k.private_key = "-----BEGIN OPENSSH PRIVATE KEY-----".into();
        assert!(ssh_key(&k)["private_key"].is_string());
    }

    #[test]
    fn logins_never_show_tokens() {
        let r = LoginResponse {
            status: LoginStatus::Success as i32,
            access_token: "secret-access".into(),
            refresh_token: "secret-refresh".into(),
            ..Default::default()
        };
        let v = login(&r, "http://127.0.0.1:7001");
        assert_eq!(v["status"], "success");
        assert!(!v.to_string().contains("secret-"));
    }

    #[test]
    fn enums_have_names() {
        assert_eq!(theme_name(Theme::Dark as i32), "dark");
        assert_eq!(realm_name(0), "local");
        assert_eq!(realm_name(99), "unknown(99)");
        assert_eq!(
            login_status_name(LoginStatus::TotpRequired as i32),
            "totp_required"
        );
    }
}
