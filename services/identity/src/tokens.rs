//! Token-signing keys and access-token issuance. Keys live (sealed) in the database so every
//! replica signs with the same active key; rotation retires the old key, which keeps verifying
//! until the tokens it signed have expired.

use std::sync::{Arc, RwLock};

use atrium_proto::identity::v1::{VerificationKey, VerificationKeys};
use atrium_service_kit::auth::{AccessClaims, KeyEntry, KeySet, Scope, jwt};
use atrium_service_kit::{ApiError, ApiResult};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::crypto::SecretBox;
use crate::entity::{signing_key, user};
use crate::repo::Repo;

/// Lifetime of restricted tokens (password change, 2FA enrolment).
pub const RESTRICTED_TTL_SECS: i64 = 300;

struct Active {
    kid: String,
    key: SigningKey,
}

/// Signs access tokens and keeps the verification [`KeySet`] current.
#[derive(Clone)]
pub struct TokenIssuer {
    keys: KeySet,
    active: Arc<RwLock<Option<Active>>>,
    published: Arc<RwLock<Vec<signing_key::Model>>>,
    issuer: String,
    access_ttl: Duration,
}

/// A signed access token.
pub struct Issued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl TokenIssuer {
    pub fn new(keys: KeySet, issuer: &str, access_ttl_secs: u32) -> Self {
        Self {
            keys,
            active: Arc::default(),
            published: Arc::default(),
            issuer: issuer.to_owned(),
            access_ttl: Duration::seconds(i64::from(access_ttl_secs)),
        }
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Loads keys from the database (creating the first one if there is none), drops keys whose
    /// tokens have all expired, and refreshes the verification set.
    pub async fn reload(&self, repo: &Repo, secrets: &SecretBox) -> ApiResult<()> {
        let now = Utc::now();
        repo.delete_signing_keys_retired_before(now - self.access_ttl)
            .await?;
        let mut rows = repo.signing_keys().await?;
        if !rows.iter().any(|k| k.retired_at.is_none()) {
            self.create_key(repo, secrets).await?;
            rows = repo.signing_keys().await?;
        }
        let mut entries = Vec::with_capacity(rows.len());
        let mut active = None;
        for row in &rows {
            let public = decode_public(&row.public_key)?;
            entries.push(KeyEntry {
                kid: row.id.clone(),
                key: public,
                valid_until: row.retired_at.map(|r| (r + self.access_ttl).timestamp()),
            });
            if row.retired_at.is_none() {
                // The newest unretired key signs (several only if two replicas raced to create one).
                let seed = secrets
                    .open(&row.private_key_sealed)
                    .map_err(ApiError::Internal)?;
                let seed: [u8; 32] = seed.try_into().map_err(|_| {
                    ApiError::internal(anyhow::anyhow!("signing key {} is not 32 bytes", row.id))
                })?;
                active = Some(Active {
                    kid: row.id.clone(),
                    key: SigningKey::from_bytes(&seed),
                });
            }
        }
        self.keys.replace(entries);
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = active;
        *self.published.write().unwrap_or_else(|p| p.into_inner()) = rows;
        Ok(())
    }

    async fn create_key(&self, repo: &Repo, secrets: &SecretBox) -> ApiResult<()> {
        let seed = crate::crypto::random_bytes::<32>();
        let key = SigningKey::from_bytes(&seed);
        let row = signing_key::Model {
            id: format!("k{}", uuid::Uuid::now_v7().simple()),
            private_key_sealed: secrets.seal(&seed).map_err(ApiError::Internal)?,
            public_key: B64.encode(key.verifying_key().as_bytes()),
            created_at: Utc::now(),
            retired_at: None,
        };
        repo.insert_signing_key(row).await
    }

    /// Starts a new key and retires the others.
    pub async fn rotate(&self, repo: &Repo, secrets: &SecretBox) -> ApiResult<()> {
        repo.retire_signing_keys(Utc::now()).await?;
        self.create_key(repo, secrets).await?;
        self.reload(repo, secrets).await
    }

    /// Issues an access token for a user and login session.
    pub fn issue(
        &self,
        user: &user::Model,
        login_session_id: &str,
        scope: Scope,
    ) -> ApiResult<Issued> {
        let now = Utc::now();
        let ttl = match scope {
            Scope::Full => self.access_ttl,
            _ => Duration::seconds(RESTRICTED_TTL_SECS).min(self.access_ttl),
        };
        let expires_at = now + ttl;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.id.clone(),
            name: user.username.clone(),
            realm: user.realm.clone(),
            sid: login_session_id.to_owned(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            scope,
        };
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        let active = active
            .as_ref()
            .ok_or_else(|| ApiError::Unavailable("no signing key loaded yet".into()))?;
        Ok(Issued {
            token: jwt::sign(&claims, &active.kid, &active.key),
            expires_at,
        })
    }

    /// The published keys, for `GetVerificationKeys`.
    pub fn verification_keys(&self) -> VerificationKeys {
        let rows = self
            .published
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let active_key_id = self
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|a| a.kid.clone())
            .unwrap_or_default();
        let mut jwks = Vec::new();
        let keys = rows
            .iter()
            .filter_map(|row| {
                let public = B64.decode(&row.public_key).ok()?;
                jwks.push(serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": row.id, "x": B64URL.encode(&public),
                }));
                Some(VerificationKey {
                    key_id: row.id.clone(),
                    algorithm: "EdDSA".into(),
                    public_key: public,
                    created_at: Some(crate::convert::timestamp(row.created_at)),
                    valid_until: row
                        .retired_at
                        .map(|r| crate::convert::timestamp(r + self.access_ttl)),
                })
            })
            .collect();
        VerificationKeys {
            keys,
            active_key_id,
            issuer: self.issuer.clone(),
            access_token_ttl_seconds: u32::try_from(self.access_ttl.num_seconds())
                .unwrap_or(u32::MAX),
            jwks_json: serde_json::json!({ "keys": jwks }).to_string(),
        }
    }
}

fn decode_public(b64: &str) -> ApiResult<VerifyingKey> {
    let bytes: [u8; 32] = B64
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("stored public key is malformed")))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored public key: {e}")))
}
