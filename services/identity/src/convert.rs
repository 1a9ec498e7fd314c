//! Conversions between stored rows and API messages, and input validation helpers that name the
//! field at fault.

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::{ApiError, ApiResult};

use crate::entity::{api_key, audit_event, user, user_settings};

/// To the wire at microsecond precision: what PostgreSQL stores, so that a value answered
/// straight from memory (CreateUser, Login) equals the same value read back later.
pub use atrium_service_kit::validate::{from_timestamp, text, timestamp};

/// A user's realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    Local,
    Ldap,
    Saml,
    Oidc,
}

impl Realm {
    pub fn as_str(self) -> &'static str {
        match self {
            Realm::Local => "local",
            Realm::Ldap => "ldap",
            Realm::Saml => "saml",
            Realm::Oidc => "oidc",
        }
    }

    pub fn parse_stored(s: &str) -> Realm {
        match s {
            "ldap" => Realm::Ldap,
            "saml" => Realm::Saml,
            "oidc" => Realm::Oidc,
            _ => Realm::Local,
        }
    }

    /// From the wire: unspecified means `default`; unknown numbers are refused.
    pub fn from_proto(field: &str, value: i32, default: Option<Realm>) -> ApiResult<Option<Realm>> {
        match pb::Realm::try_from(value) {
            Ok(pb::Realm::Unspecified) => Ok(default),
            Ok(pb::Realm::Local) => Ok(Some(Realm::Local)),
            Ok(pb::Realm::Ldap) => Ok(Some(Realm::Ldap)),
            Ok(pb::Realm::Saml) => Ok(Some(Realm::Saml)),
            Ok(pb::Realm::Oidc) => Ok(Some(Realm::Oidc)),
            Err(_) => Err(ApiError::invalid(
                field,
                format!("unknown realm {value}; expected local, ldap, saml or oidc"),
            )),
        }
    }

    fn to_proto(self) -> pb::Realm {
        match self {
            Realm::Local => pb::Realm::Local,
            Realm::Ldap => pb::Realm::Ldap,
            Realm::Saml => pb::Realm::Saml,
            Realm::Oidc => pb::Realm::Oidc,
        }
    }
}

pub fn user_to_proto(u: &user::Model) -> pb::User {
    pb::User {
        id: u.id.clone(),
        username: u.username.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        realm: Realm::parse_stored(&u.realm).to_proto() as i32,
        notes: u.notes.clone(),
        // An automatic lockout whose time is up shows as unlocked.
        locked: u.locked
            && u.locked_until
                .is_none_or(|until| until > chrono::Utc::now()),
        disabled: u.disabled,
        organization: u.organization.clone(),
        phone: u.phone.clone(),
        email: u.email.clone(),
        custom_attribute_1: u.custom_attribute_1.clone(),
        custom_attribute_2: u.custom_attribute_2.clone(),
        custom_attribute_3: u.custom_attribute_3.clone(),
        city: u.city.clone(),
        state: u.state.clone(),
        country: u.country.clone(),
        created_at: Some(timestamp(u.created_at)),
        updated_at: Some(timestamp(u.updated_at)),
        password_set_at: u.password_set_at.map(timestamp),
        last_session_at: u.last_session_at.map(timestamp),
        force_password_reset: u.force_password_reset,
        two_factor_enrolled: u.totp_secret.is_some(),
        failed_login_count: u32::try_from(u.failed_login_count).unwrap_or(0),
        is_admin: u.is_admin,
    }
}

pub fn settings_to_proto(s: &user_settings::Model) -> pb::UserSettings {
    let theme = match s.theme.as_str() {
        "light" => pb::Theme::Light,
        "dark" => pb::Theme::Dark,
        _ => pb::Theme::Auto,
    };
    pb::UserSettings {
        user_id: s.user_id.clone(),
        auto_launch_session: s.auto_launch_session,
        chat_sound_effects: s.chat_sound_effects,
        default_workspace_image: s.default_workspace_image.clone(),
        show_tips_during_session: s.show_tips_during_session,
        toggle_control_panel: s.toggle_control_panel,
        theme: theme as i32,
    }
}

pub fn default_settings(user_id: &str) -> user_settings::Model {
    user_settings::Model {
        user_id: user_id.to_owned(),
        auto_launch_session: false,
        chat_sound_effects: true,
        default_workspace_image: String::new(),
        show_tips_during_session: true,
        toggle_control_panel: true,
        theme: "auto".into(),
    }
}

pub fn theme_from_proto(field: &str, value: i32) -> ApiResult<&'static str> {
    match pb::Theme::try_from(value) {
        Ok(pb::Theme::Light) => Ok("light"),
        Ok(pb::Theme::Dark) => Ok("dark"),
        Ok(pb::Theme::Auto) => Ok("auto"),
        _ => Err(ApiError::invalid(field, "must be light, dark or auto")),
    }
}

pub fn api_key_to_proto(k: &api_key::Model) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.clone(),
        name: k.name.clone(),
        read_only: k.read_only,
        permissions: split_permissions(&k.permissions),
        created_at: Some(timestamp(k.created_at)),
        expires_at: k.expires_at.map(timestamp),
        last_used_at: k.last_used_at.map(timestamp),
        revoked: k.revoked_at.is_some(),
        created_by: k.created_by.clone(),
        owner_user_id: k.owner_user_id.clone().unwrap_or_default(),
    }
}

pub fn split_permissions(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn audit_to_proto(e: &audit_event::Model) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id.clone(),
        at: Some(timestamp(e.at)),
        kind: e.kind.clone(),
        user_id: e.user_id.clone().unwrap_or_default(),
        actor: e.actor.clone(),
        detail: e.detail.clone(),
    }
}

// ---- validation ---------------------------------------------------------------------------

/// A user id: a UUID in any common spelling, normalised to the hyphenated lower-case form.
/// A user id: a UUID in any common spelling, normalised.
pub fn user_id(field: &str, raw: &str) -> ApiResult<String> {
    atrium_service_kit::validate::uuid(field, raw)
}

pub fn username(field: &str, raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    if name.chars().count() > 255 {
        return Err(ApiError::invalid(field, "must be at most 255 characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A short free-text field: at most `max` characters, no control characters except in notes.
pub fn email(field: &str, raw: &str) -> ApiResult<String> {
    let email = raw.trim();
    if email.is_empty() {
        return Ok(String::new());
    }
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        });
    if valid {
        Ok(email.to_owned())
    } else {
        Err(ApiError::invalid(field, "is not a valid email address"))
    }
}

pub fn phone(field: &str, raw: &str) -> ApiResult<String> {
    let phone = raw.trim();
    let valid = phone.len() <= 32
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().x".contains(c))
        && (phone.is_empty() || phone.chars().any(|c| c.is_ascii_digit()));
    if valid {
        Ok(phone.to_owned())
    } else {
        Err(ApiError::invalid(field, "is not a valid phone number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.org", ""] {
            assert!(email("email", ok).is_ok(), "{ok}");
        }
        for bad in [
            "a", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@b..co",
        ] {
            let e = email("email", bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert_eq!(e, "email: is not a valid email address", "{bad}");
        }
    }

    #[test]
    fn ids_and_names() {
        let id = "0192f5a2-7c3b-7def-8a1b-0123456789ab";
        assert_eq!(
            user_id("user_id", "0192F5A27C3B7DEF8A1B0123456789AB")
                .ok()
                .as_deref(),
            Some(id)
        );
        assert!(user_id("user_id", "nope").is_err());
        assert!(username("username", " ").is_err());
        assert!(username("username", "a b").is_err());
        assert_eq!(
            username("username", " Alice ").ok().as_deref(),
            Some("Alice")
        );
        assert!(Realm::from_proto("realm", 42, None).is_err());
        assert_eq!(
            Realm::from_proto("realm", 0, Some(Realm::Local))
                .ok()
                .flatten(),
            Some(Realm::Local)
        );
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in ".*") {
            let _ = email("email", &s);
            let _ = phone("phone", &s);
            let _ = username("username", &s);
            let _ = user_id("user_id", &s);
            let _ = text("notes", &s, 10);
        }
    }
}
