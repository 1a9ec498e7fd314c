//! Token-signing keys: publication and rotation.

use atrium_service_kit::auth::{KeyEntry, KeySet, jwt};

use crate::common::{Backend, Code, Env, Outcome, PASSWORD, both_backends, pb, token_kid};

both_backends!(
    verification_keys_are_public_and_verify_tokens,
    rotation_keeps_old_tokens_valid
);

async fn verification_keys_are_public_and_verify_tokens(backend: Backend) {
    let env = Env::start(backend).await;
    let keys = env
        .anonymous()
        .await
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .must();
    assert_eq!(keys.keys.len(), 1);
    let key = &keys.keys[0];
    assert_eq!(key.key_id, keys.active_key_id);
    assert_eq!(key.algorithm, "EdDSA");
    assert_eq!(key.public_key.len(), 32);
    assert!(key.valid_until.is_none());
    assert_eq!(keys.issuer, "atrium");
    assert_eq!(keys.access_token_ttl_seconds, 900);

    let jwks: serde_json::Value = serde_json::from_str(&keys.jwks_json).expect("JWKS JSON");
    let jwk = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["kid"], keys.active_key_id.as_str());
    use base64::Engine as _;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().expect("x"))
        .expect("base64url x");
    assert_eq!(x, key.public_key);

    // Another service verifies a token with nothing but the published key.
    let bob = env.create_user("bob").await;
    let (login, _) = env.login_ok("bob", PASSWORD).await;
    assert_eq!(token_kid(&login.access_token), keys.active_key_id);
    let set = KeySet::default();
    let public: [u8; 32] = key.public_key.clone().try_into().expect("32 bytes");
    set.replace(vec![KeyEntry {
        kid: key.key_id.clone(),
        key: ed25519_dalek::VerifyingKey::from_bytes(&public).expect("Ed25519 key"),
        valid_until: None,
    }]);
    let claims = jwt::verify(
        &login.access_token,
        &set,
        &keys.issuer,
        chrono::Utc::now().timestamp(),
    )
    .expect("token verifies with the published key");
    assert_eq!(claims.sub, bob.id);
    assert_eq!(claims.name, "bob");
    assert_eq!(claims.sid, login.login_session_id);
    assert_eq!(
        claims.exp,
        login.access_token_expires_at.expect("expiry").seconds
    );
}

async fn rotation_keeps_old_tokens_valid(backend: Backend) {
    let env = Env::start(backend).await;
    let before = env
        .anonymous()
        .await
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .must();
    let (_, bob) = env.user_client("bob").await;
    bob.clone()
        .rotate_signing_key(pb::RotateSigningKeyRequest {})
        .await
        .fails(Code::PermissionDenied);

    let rotated = env
        .admin()
        .rotate_signing_key(pb::RotateSigningKeyRequest {})
        .await
        .must();
    assert_ne!(rotated.active_key_id, before.active_key_id);
    assert_eq!(rotated.keys.len(), 2);
    let old = rotated
        .keys
        .iter()
        .find(|k| k.key_id == before.active_key_id)
        .expect("old key still published");
    let until = old.valid_until.expect("old key has a deadline").seconds;
    let expected = chrono::Utc::now().timestamp() + 900;
    assert!((expected - 5..=expected + 1).contains(&until), "{until}");
    let new = rotated
        .keys
        .iter()
        .find(|k| k.key_id == rotated.active_key_id)
        .expect("new key");
    assert!(new.valid_until.is_none());
    assert_ne!(new.public_key, old.public_key);
    let published = env
        .anonymous()
        .await
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .must();
    assert_eq!(published, rotated);

    // Tokens signed before still work; new ones carry the new kid.
    let whoami = bob.clone().who_am_i(pb::WhoAmIRequest {}).await.must();
    assert_eq!(whoami.username, "bob");
    env.admin().who_am_i(pb::WhoAmIRequest {}).await.must();
    let (login, client) = env.login_ok("bob", PASSWORD).await;
    assert_eq!(token_kid(&login.access_token), rotated.active_key_id);
    client.clone().who_am_i(pb::WhoAmIRequest {}).await.must();
    let refreshed = env.refresh(&login.refresh_token).await.must();
    assert_eq!(token_kid(&refreshed.access_token), rotated.active_key_id);
    assert_eq!(env.audit_kind("signing_key.rotate").await.len(), 1);
}
