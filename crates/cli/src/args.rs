//! Parsers for argument values: durations (`30d`), instants (RFC 3339, a date, or a
//! duration relative to now), user references (UUID or username), group and workspace
//! references (UUID or name), environment variables (`NAME=VALUE`), API keys, realms, themes.

use std::fmt;

use atrium_proto::identity::v1::{Realm, Theme, get_user_request};
use atrium_proto::policy::v1::get_group_request;
use atrium_service_kit::auth::Credential;
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A user as named on the command line: an id when it parses as a UUID, else a username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Username(String),
}

impl UserRef {
    /// Only the hyphenated form counts as an id, so a 32-hex-digit username stays a username.
    pub fn parse(value: &str) -> UserRef {
        let value = value.trim();
        match hyphenated_uuid(value) {
            Some(id) => UserRef::Id(id),
            None => UserRef::Username(value.to_owned()),
        }
    }

    /// The `GetUserRequest.key` that finds this user.
    pub fn key(&self) -> get_user_request::Key {
        match self {
            UserRef::Id(id) => get_user_request::Key::UserId(id.clone()),
            UserRef::Username(name) => get_user_request::Key::Username(name.clone()),
        }
    }
}

/// clap value parser for [`UserRef`].
pub fn parse_user_ref(value: &str) -> Result<UserRef, String> {
    if value.trim().is_empty() {
        return Err("a user id or username is required".into());
    }
    Ok(UserRef::parse(value))
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserRef::Id(text) | UserRef::Username(text) => f.write_str(text),
        }
    }
}

/// The hyphenated, lowercase form of `value` when it is a hyphenated UUID.
fn hyphenated_uuid(value: &str) -> Option<String> {
    match uuid::Uuid::parse_str(value) {
        Ok(id) if value.len() == 36 => Some(id.hyphenated().to_string()),
        _ => None,
    }
}

/// A group as named on the command line: an id when it parses as a UUID, else a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Id(String),
    Name(String),
}

impl GroupRef {
    pub fn parse(value: &str) -> GroupRef {
        let value = value.trim();
        match hyphenated_uuid(value) {
            Some(id) => GroupRef::Id(id),
            None => GroupRef::Name(value.to_owned()),
        }
    }

    /// The `GetGroupRequest.key` that finds this group.
    pub fn key(&self) -> get_group_request::Key {
        match self {
            GroupRef::Id(id) => get_group_request::Key::GroupId(id.clone()),
            GroupRef::Name(name) => get_group_request::Key::Name(name.clone()),
        }
    }
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupRef::Id(text) | GroupRef::Name(text) => f.write_str(text),
        }
    }
}

/// clap value parser for [`GroupRef`].
pub fn parse_group_ref(value: &str) -> Result<GroupRef, String> {
    if value.trim().is_empty() {
        return Err("a group id or name is required".into());
    }
    Ok(GroupRef::parse(value))
}

/// A workspace as named on the command line: an id when it parses as a UUID, else its image
/// (`kasmweb/chrome:1.16.0`) or friendly name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceRef {
    Id(String),
    Name(String),
}

impl WorkspaceRef {
    pub fn parse(value: &str) -> WorkspaceRef {
        let value = value.trim();
        match hyphenated_uuid(value) {
            Some(id) => WorkspaceRef::Id(id),
            None => WorkspaceRef::Name(value.to_owned()),
        }
    }
}

impl fmt::Display for WorkspaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkspaceRef::Id(text) | WorkspaceRef::Name(text) => f.write_str(text),
        }
    }
}

/// clap value parser for [`WorkspaceRef`].
pub fn parse_workspace_ref(value: &str) -> Result<WorkspaceRef, String> {
    if value.trim().is_empty() {
        return Err("a workspace id, image or name is required".into());
    }
    Ok(WorkspaceRef::parse(value))
}

/// clap value parser for `NAME=VALUE` (environment variables): the name is non-empty, without
/// '=' or control characters; the value may be empty.
pub fn parse_env_pair(value: &str) -> Result<(String, String), String> {
    let Some((name, value)) = value.split_once('=') else {
        return Err("expected NAME=VALUE".into());
    };
    check_env_name(name)?;
    Ok((name.to_owned(), value.to_owned()))
}

/// An environment variable's name: non-empty, without '=' or control characters.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('=') || name.chars().any(char::is_control) {
        return Err("names must be non-empty, without '=' or control characters".into());
    }
    Ok(())
}

/// clap value parser for `--api-key ID:SECRET`.
pub fn parse_api_key(value: &str) -> Result<Credential, String> {
    let value = value.trim();
    let value = value
        .strip_prefix("ApiKey ")
        .map(str::trim)
        .unwrap_or(value);
    match value.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(Credential::ApiKey {
            id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => Err("expected ID:SECRET".into()),
    }
}

/// Parses a duration like `30d`, `12h`, `90m`, `45s`, `2w` or a sum such as `1h30m`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.is_empty() {
            return Err(format!("`{value}`: expected a number before `{c}`"));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("`{value}`: number too large"))?;
        digits.clear();
        let part = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => {
                return Err(format!(
                    "`{value}`: unknown unit `{c}` (use s, m, h, d or w)"
                ));
            }
        };
        total = part
            .and_then(|p| total.checked_add(&p))
            .ok_or_else(|| format!("`{value}`: duration too large"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{value}`: missing unit after {digits} (use s, m, h, d or w)"
        ));
    }
    Ok(total)
}

/// Which way a bare duration points from now.
#[derive(Debug, Clone, Copy)]
pub enum Relative {
    /// `30d` means 30 days from now (expiry).
    Future,
    /// `30d` means 30 days ago (`--since`).
    Past,
}

/// Parses an instant: RFC 3339 (`2025-01-31T12:00:00Z`), a date (`2025-01-31`, midnight UTC),
/// or a duration relative to `now`.
pub fn parse_instant(
    value: &str,
    now: DateTime<Utc>,
    rel: Relative,
) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let duration = parse_duration(value).map_err(|e| {
        format!("{e}; expected an RFC 3339 time, a date (YYYY-MM-DD) or a duration like 30d")
    })?;
    let at = match rel {
        Relative::Future => now.checked_add_signed(duration),
        Relative::Past => now.checked_sub_signed(duration),
    };
    at.ok_or_else(|| format!("`{value}`: out of range"))
}

/// A chrono instant as a protobuf timestamp.
pub fn to_timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // Always below 2e9 (leap seconds included), so it fits.
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RealmArg {
    Local,
    Ldap,
    Saml,
    Oidc,
}

impl From<RealmArg> for Realm {
    fn from(realm: RealmArg) -> Realm {
        match realm {
            RealmArg::Local => Realm::Local,
            RealmArg::Ldap => Realm::Ldap,
            RealmArg::Saml => Realm::Saml,
            RealmArg::Oidc => Realm::Oidc,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ThemeArg {
    Light,
    Dark,
    Auto,
}

impl From<ThemeArg> for Theme {
    fn from(theme: ThemeArg) -> Theme {
        match theme {
            ThemeArg::Light => Theme::Light,
            ThemeArg::Dark => Theme::Dark,
            ThemeArg::Auto => Theme::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(Duration::days(30)));
        assert_eq!(parse_duration("12h"), Ok(Duration::hours(12)));
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("45s"), Ok(Duration::seconds(45)));
        assert_eq!(parse_duration("2w"), Ok(Duration::weeks(2)));
        assert_eq!(
            parse_duration("1h30m"),
            Ok(Duration::hours(1) + Duration::minutes(30))
        );
        assert_eq!(parse_duration(" 0s "), Ok(Duration::zero()));
    }

    #[test]
    fn bad_durations_say_why() {
        for bad in ["", "30", "d", "3x", "1h30", "-5d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
        assert!(
            parse_duration("3x")
                .err()
                .is_some_and(|e| e.contains("unknown unit"))
        );
        assert!(parse_duration("9999999999999w").is_err());
    }

    #[test]
    fn instants() {
        let now = DateTime::parse_from_rfc3339("2025-03-01T00:00:00Z")
            .expect("now")
            .with_timezone(&Utc);
        assert_eq!(
            parse_instant("30d", now, Relative::Future).map(|t| t.to_rfc3339()),
            Ok("2025-03-31T00:00:00+00:00".into())
        );
        assert_eq!(
            parse_instant("1d", now, Relative::Past).map(|t| t.to_rfc3339()),
            Ok("2025-02-28T00:00:00+00:00".into())
        );
        assert_eq!(
            parse_instant("2025-06-01T12:00:00+02:00", now, Relative::Future)
                .map(|t| t.to_rfc3339()),
            Ok("2025-06-01T10:00:00+00:00".into())
        );
        assert_eq!(
            parse_instant("2025-06-01", now, Relative::Past).map(|t| t.to_rfc3339()),
            Ok("2025-06-01T00:00:00+00:00".into())
        );
        assert!(parse_instant("tomorrow", now, Relative::Future).is_err());
    }

    #[test]
    fn timestamps_keep_subseconds() {
        let at = DateTime::parse_from_rfc3339("2025-03-01T00:00:01.5Z")
            .expect("at")
            .with_timezone(&Utc);
        let ts = to_timestamp(at);
        assert_eq!((ts.seconds, ts.nanos), (at.timestamp(), 500_000_000));
    }

    #[test]
    fn user_refs() {
        assert_eq!(
            UserRef::parse("0190B5A2-1C3D-7E4F-8A9B-0C1D2E3F4A5B"),
            UserRef::Id("0190b5a2-1c3d-7e4f-8a9b-0c1d2e3f4a5b".into())
        );
        assert_eq!(UserRef::parse("alice"), UserRef::Username("alice".into()));
        assert_eq!(
            UserRef::parse("0190b5a21c3d7e4f8a9b0c1d2e3f4a5b"),
            UserRef::Username("0190b5a21c3d7e4f8a9b0c1d2e3f4a5b".into())
        );
        assert_eq!(
            UserRef::parse("alice@example.com"),
            UserRef::Username("alice@example.com".into())
        );
        assert!(parse_user_ref("  ").is_err());
        assert_eq!(
            UserRef::parse("alice").key(),
            get_user_request::Key::Username("alice".into())
        );
    }

    #[test]
    fn group_and_workspace_refs() {
        assert_eq!(
            GroupRef::parse("00000000-0000-7000-8000-000000000002"),
            GroupRef::Id("00000000-0000-7000-8000-000000000002".into())
        );
        assert_eq!(
            GroupRef::parse(" All Users "),
            GroupRef::Name("All Users".into())
        );
        assert_eq!(
            GroupRef::parse("Staff").key(),
            get_group_request::Key::Name("Staff".into())
        );
        assert_eq!(GroupRef::parse("Staff").to_string(), "Staff");
        assert!(parse_group_ref(" ").is_err());
        assert_eq!(
            WorkspaceRef::parse("kasmweb/chrome:1.16.0"),
            WorkspaceRef::Name("kasmweb/chrome:1.16.0".into())
        );
        assert_eq!(
            WorkspaceRef::parse("0190B5A2-1C3D-7E4F-8A9B-0C1D2E3F4A5B"),
            WorkspaceRef::Id("0190b5a2-1c3d-7e4f-8a9b-0c1d2e3f4a5b".into())
        );
        assert!(parse_workspace_ref("").is_err());
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env_pair("A=1"), Ok(("A".into(), "1".into())));
        assert_eq!(parse_env_pair("A="), Ok(("A".into(), String::new())));
        assert_eq!(parse_env_pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env_pair("A").is_err());
        assert!(parse_env_pair("=1").is_err());
        assert!(parse_env_pair("A\nB=1").is_err());
    }

    #[test]
    fn api_keys() {
        assert_eq!(
            parse_api_key("ApiKey k1:a:b"),
            Ok(Credential::ApiKey {
                id: "k1".into(),
                secret: "a:b".into()
            })
        );
        assert!(parse_api_key("k1:").is_err());
        assert!(parse_api_key(":s").is_err());
        assert!(parse_api_key("k1").is_err());
    }
}
