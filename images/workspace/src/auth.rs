//! HTTP basic auth as Kasm's images do it: user `kasm_user`, password `VNC_PW`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// The one user name Kasm's images accept.
pub const USER: &str = "kasm_user";

/// The `WWW-Authenticate` value sent with a 401.
pub const CHALLENGE: &str = "Basic realm=\"atrium\"";

/// The user and password in an `Authorization: Basic ...` value, or `None` when it is not one.
pub fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Whether an `Authorization` header names `kasm_user` with the right password.
pub fn is_authorized(header: Option<&HeaderValue>, password: &SecretString) -> bool {
    let Some((user, given)) = header.and_then(|h| parse_basic(h.as_bytes())) else {
        return false;
    };
    let password_ok: bool = given
        .as_bytes()
        .ct_eq(password.expose_secret().as_bytes())
        .into();
    password_ok && user == USER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    #[test]
    fn parses_user_and_password() {
        assert_eq!(
            parse_basic(basic("kasm_user:s3cret").as_bytes()),
            Some(("kasm_user".into(), "s3cret".into()))
        );
    }

    #[test]
    fn the_password_may_hold_colons_and_the_scheme_any_case() {
        let value = format!("bAsIc   {}", STANDARD.encode("kasm_user:a:b:c"));
        assert_eq!(
            parse_basic(value.as_bytes()),
            Some(("kasm_user".into(), "a:b:c".into()))
        );
    }

    #[test]
    fn rejects_what_is_not_basic_auth() {
        for value in [
            "".to_owned(),
            "Basic".to_owned(),
            "Bearer abc".to_owned(),
            "Basic !!!notbase64".to_owned(),
            format!("Basic {}", STANDARD.encode("nocolon")),
            format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe])),
        ] {
            assert_eq!(parse_basic(value.as_bytes()), None, "{value:?}");
        }
    }

    #[test]
    fn only_kasm_user_with_the_password_gets_in() {
        let password = SecretString::from("s3cret");
        let header = |v: &str| HeaderValue::from_str(&basic(v)).expect("header");
        assert!(is_authorized(Some(&header("kasm_user:s3cret")), &password));
        assert!(!is_authorized(Some(&header("kasm_user:wrong")), &password));
        assert!(!is_authorized(Some(&header("kasm_user:s3cre")), &password));
        assert!(!is_authorized(Some(&header("root:s3cret")), &password));
        assert!(!is_authorized(None, &password));
    }
}
