//! Fuzzing by property: the parsers that read what strangers send — the `authorization` header
//! (bearer tokens, API keys) and access tokens — never panic on any input, and never accept a
//! token that is not byte-for-byte one that was signed. A bounded run (proptest's cases) is part
//! of every test run; `PROPTEST_CASES=100000` runs longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use atrium_service_kit::auth::{AccessClaims, Credential, KeyEntry, KeySet, Scope, jwt};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

fn keys() -> (SigningKey, KeySet) {
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let set = KeySet::default();
    set.replace(vec![KeyEntry {
        kid: "k1".into(),
        key: key.verifying_key(),
        valid_until: None,
    }]);
    (key, set)
}

fn token(key: &SigningKey) -> String {
    jwt::sign(
        &AccessClaims {
            iss: "atrium".into(),
            sub: "u1".into(),
            name: "alice".into(),
            realm: "local".into(),
            sid: "s1".into(),
            jti: "t1".into(),
            iat: 0,
            exp: 4_000_000_000,
            scope: Scope::Full,
        },
        "k1",
        key,
    )
}

/// Strings that look like what attackers send: printable ASCII with the separators that matter,
/// arbitrary Unicode, and base64url alphabets.
fn header_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,200}",
        any::<String>(),
        "(Bearer|ApiKey|bearer|APIKEY|Service|Basic)? ?[A-Za-z0-9_:.=-]{0,120}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_authorization_header_parser_never_panics(value in header_like()) {
        if let Some(Credential::ApiKey { id, secret }) = Credential::parse(&value) {
            // A parsed key always came from "<scheme> <id>:<secret>".
            let pair = format!("{}:{}", id, secret);
            prop_assert!(value.contains(&pair));
        }
    }

    #[test]
    fn arbitrary_tokens_are_refused_without_panicking(value in header_like()) {
        let (_, set) = keys();
        prop_assert!(jwt::verify(&value, &set, "atrium", 1).is_err());
    }

    #[test]
    fn only_the_signed_bytes_verify(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (key, set) = keys();
        let original = token(&key);
        let mut bytes = original.clone().into_bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        let verified = jwt::verify(&mutated, &set, "atrium", 1);
        prop_assert!(verified.is_err() || mutated == original, "{} verified", mutated);
    }
}

#[test]
fn the_untouched_token_verifies() {
    let (key, set) = keys();
    assert!(jwt::verify(&token(&key), &set, "atrium", 1).is_ok());
}
