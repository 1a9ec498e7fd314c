//! Access tokens: compact JWS (RFC 7515) signed with Ed25519 ("EdDSA"), verified locally by
//! every service against the key set identity publishes.
//!
//! Every token carries the audience [`AUDIENCE`] (`aud`), added by [`sign`] and required by
//! [`verify`]: a token minted for something else with the same keys is not an Atrium access
//! token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};

use super::keys::KeySet;

/// What an access token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything the user is allowed to do.
    Full,
    /// Only changing the password (a login that requires a password change).
    PasswordChange,
    /// Only enrolling in two-factor authentication.
    TotpEnrollment,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Full => "full",
            Scope::PasswordChange => "password_change",
            Scope::TotpEnrollment => "totp_enrollment",
        }
    }
}

/// The claims of an Atrium access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// User id.
    pub sub: String,
    /// Username.
    pub name: String,
    pub realm: String,
    /// Login session id.
    pub sid: String,
    /// Token id.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub scope: Scope,
}

/// The `aud` of Atrium access tokens.
pub const AUDIENCE: &str = "atrium";

/// The claims as signed: [`AccessClaims`] plus the audience.
#[derive(Serialize, Deserialize)]
struct Signed<C> {
    #[serde(flatten)]
    claims: C,
    #[serde(default)]
    aud: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// Why a token was refused. Messages are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token is malformed")]
    Malformed,
    #[error("access token signed by an unknown key")]
    UnknownKey,
    #[error("access token signature is invalid")]
    BadSignature,
    #[error("access token has expired")]
    Expired,
    #[error("access token has the wrong issuer")]
    WrongIssuer,
    #[error("access token is not meant for Atrium (wrong or missing audience)")]
    WrongAudience,
}

/// Signs `claims` with `key`, naming it `kid` in the header.
pub fn sign(claims: &AccessClaims, kid: &str, key: &SigningKey) -> String {
    let header = Header {
        alg: "EdDSA",
        typ: "JWT",
        kid,
    };
    // Serialising these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(&Signed {
        claims,
        aud: Some(AUDIENCE.to_owned()),
    })
    .unwrap_or_default();
    let mut token = String::with_capacity(256);
    B64.encode_string(header, &mut token);
    token.push('.');
    B64.encode_string(payload, &mut token);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    B64.encode_string(signature.to_bytes(), &mut token);
    token
}

/// Verifies signature, issuer and expiry; `now` is Unix seconds.
pub fn verify(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    let mut parts = token.splitn(3, '.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_bytes = B64.decode(header_b64).map_err(|_| TokenError::Malformed)?;
    let header: Header<'_> =
        serde_json::from_slice(&header_bytes).map_err(|_| TokenError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(TokenError::Malformed);
    }
    let mut sig = [0u8; 64];
    match B64.decode_slice(sig_b64, &mut sig) {
        Ok(64) => {}
        _ => return Err(TokenError::Malformed),
    }
    let entry = keys.get(header.kid).ok_or(TokenError::UnknownKey)?;
    if entry.valid_until.is_some_and(|until| now >= until) {
        return Err(TokenError::UnknownKey);
    }
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    entry
        .key
        .verify(
            &token.as_bytes()[..signed_len],
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| TokenError::BadSignature)?;
    let payload = B64.decode(payload_b64).map_err(|_| TokenError::Malformed)?;
    let Signed::<AccessClaims> { claims, aud } =
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer);
    }
    if aud.as_deref() != Some(AUDIENCE) {
        return Err(TokenError::WrongAudience);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::KeyEntry;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "atrium".into(),
            sub: "u1".into(),
            name: "alice".into(),
            realm: "local".into(),
            sid: "s1".into(),
            jti: "t1".into(),
            iat: 0,
            exp,
            scope: Scope::Full,
        }
    }

    fn setup() -> (SigningKey, KeySet) {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let set = KeySet::default();
        set.replace(vec![KeyEntry {
            kid: "k1".into(),
            key: key.verifying_key(),
            valid_until: None,
        }]);
        (key, set)
    }

    #[test]
    fn round_trip() {
        let (key, set) = setup();
        let token = sign(&claims(100), "k1", &key);
        assert_eq!(verify(&token, &set, "atrium", 50), Ok(claims(100)));
    }

    #[test]
    fn refuses_expired_tampered_foreign_and_garbage() {
        let (key, set) = setup();
        let token = sign(&claims(100), "k1", &key);
        assert_eq!(
            verify(&token, &set, "atrium", 100),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&token, &set, "other", 50),
            Err(TokenError::WrongIssuer)
        );
        let mut forged = claims(10_000);
        forged.sub = "admin".into();
        let forged_payload = B64.encode(serde_json::to_vec(&forged).unwrap_or_default());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            verify(&tampered, &set, "atrium", 50),
            Err(TokenError::BadSignature)
        );
        let other = SigningKey::from_bytes(&[9u8; 32]);
        assert_eq!(
            verify(&sign(&claims(100), "k1", &other), &set, "atrium", 50),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&sign(&claims(100), "k2", &key), &set, "atrium", 50),
            Err(TokenError::UnknownKey)
        );
        for junk in ["", "a.b", "a.b.c", "...", "ü.ü.ü"] {
            assert_eq!(
                verify(junk, &set, "atrium", 50),
                Err(TokenError::Malformed),
                "{junk}"
            );
        }
    }

    #[test]
    fn tokens_for_another_audience_are_refused() {
        let (key, set) = setup();
        let token = sign(&claims(100), "k1", &key);
        let payload = token.split('.').nth(1).unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_slice(&B64.decode(payload).unwrap_or_default()).unwrap_or_default();
        assert_eq!(json["aud"], AUDIENCE);
        // The same claims signed by the same key, with another audience or none.
        for aud in [Some("other"), None] {
            let mut json = json.clone();
            match aud {
                Some(aud) => json["aud"] = aud.into(),
                None => {
                    json.as_object_mut().map(|o| o.remove("aud"));
                }
            }
            let header = token.split('.').next().unwrap_or_default();
            let mut forged = format!(
                "{header}.{}",
                B64.encode(serde_json::to_vec(&json).unwrap_or_default())
            );
            let signature = key.sign(forged.as_bytes());
            forged.push('.');
            forged.push_str(&B64.encode(signature.to_bytes()));
            assert_eq!(
                verify(&forged, &set, "atrium", 50),
                Err(TokenError::WrongAudience),
                "{aud:?}"
            );
        }
    }

    #[test]
    fn retired_key_stops_verifying_at_its_deadline() {
        let (key, set) = setup();
        set.replace(vec![KeyEntry {
            kid: "k1".into(),
            key: key.verifying_key(),
            valid_until: Some(60),
        }]);
        let token = sign(&claims(100), "k1", &key);
        assert!(verify(&token, &set, "atrium", 59).is_ok());
        assert_eq!(
            verify(&token, &set, "atrium", 60),
            Err(TokenError::UnknownKey)
        );
    }
}
