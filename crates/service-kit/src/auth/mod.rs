//! Authentication for every Atrium gRPC server: who is calling, established once per request by
//! [`AuthLayer`] and handed to handlers as a [`Principal`] request extension.
//!
//! Callers present `authorization` metadata: `Bearer <access token>` (verified locally against
//! the [`KeySet`]), `ApiKey <id>:<secret>` (resolved by an [`ApiKeyResolver`]) or
//! `Service <token>` (the shared service credential, compared in constant time). Authorization —
//! what the principal may do — is the handler's business.

pub mod jwt;
pub mod keys;
mod layer;
pub mod permissions;
pub mod remote;

use std::sync::Arc;

use async_trait::async_trait;
use subtle::ConstantTimeEq;

pub use jwt::{AccessClaims, Scope, TokenError};
pub use keys::{KeyEntry, KeySet};
pub use layer::{AuthLayer, AuthService};

use crate::config::Secret;
use crate::error::ApiError;

/// An authenticated user, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrincipal {
    pub user_id: String,
    pub username: String,
    pub realm: String,
    pub login_session_id: String,
    pub token_id: String,
    pub scope: Scope,
    pub expires_at: i64,
}

/// An authenticated API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    pub key_id: String,
    pub name: String,
    pub read_only: bool,
    pub permissions: Vec<String>,
}

impl ApiKeyPrincipal {
    /// Whether this key may use `permission`: it must hold it, and read-only keys only `.view`
    /// permissions.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.read_only && !permissions::is_read_only(permission) {
            return Err(ApiError::PermissionDenied(format!(
                "API key {} is read-only",
                self.key_id
            )));
        }
        if self.permissions.iter().any(|p| p == permission) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "API key {} lacks permission {permission}",
                self.key_id
            )))
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(UserPrincipal),
    ApiKey(ApiKeyPrincipal),
    /// One of Atrium's own services, holding the service credential.
    Service,
}

impl Principal {
    /// The audit-log form: `user:<id>`, `api_key:<id>` or `service`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User(u) => format!("user:{}", u.user_id),
            Principal::ApiKey(k) => format!("api_key:{}", k.key_id),
            Principal::Service => "service".to_owned(),
        }
    }

    /// The user, if the caller is a user with a full-scope token.
    pub fn full_user(&self) -> Option<&UserPrincipal> {
        match self {
            Principal::User(u) if u.scope == Scope::Full => Some(u),
            _ => None,
        }
    }
}

/// Reads the principal the auth layer attached to a request.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, ApiError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthenticated("authentication required".into()))
}

/// A credential as presented in `authorization` metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer(String),
    ApiKey { id: String, secret: String },
    Service(String),
}

impl Credential {
    /// Parses an `authorization` value; `None` when it has no known scheme.
    pub fn parse(value: &str) -> Option<Credential> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        if rest.is_empty() {
            return None;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Credential::Bearer(rest.to_owned()))
        } else if scheme.eq_ignore_ascii_case("apikey") {
            let (id, secret) = rest.split_once(':')?;
            Some(Credential::ApiKey {
                id: id.to_owned(),
                secret: secret.to_owned(),
            })
        } else if scheme.eq_ignore_ascii_case("service") {
            Some(Credential::Service(rest.to_owned()))
        } else {
            None
        }
    }

    /// The `authorization` metadata value for this credential.
    pub fn header_value(&self) -> String {
        match self {
            Credential::Bearer(t) => format!("Bearer {t}"),
            Credential::ApiKey { id, secret } => format!("ApiKey {id}:{secret}"),
            Credential::Service(t) => format!("Service {t}"),
        }
    }
}

/// Resolves API keys (identity does it from its database; other services ask identity).
#[async_trait]
pub trait ApiKeyResolver: Send + Sync + 'static {
    async fn resolve(&self, id: &str, secret: &str) -> Result<ApiKeyPrincipal, ApiError>;
}

/// Turns credentials into principals.
#[derive(Clone)]
pub struct Authenticator {
    keys: KeySet,
    issuer: Arc<str>,
    service_token: Option<Secret>,
    api_keys: Option<Arc<dyn ApiKeyResolver>>,
    remote_keys: Option<Arc<remote::RemoteKeys>>,
    verified: Arc<VerifiedTokens>,
}

/// Tokens already verified, so a client's repeated calls cost a map lookup instead of a
/// signature check. Entries hold until the token expires or the key set changes; the map is
/// bounded (cleared when full).
#[derive(Default)]
struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<Box<str>, (UserPrincipal, u64)>>,
}

const VERIFIED_TOKENS_CAP: usize = 10_000;

impl VerifiedTokens {
    fn get(&self, token: &str, generation: u64, now: i64) -> Option<UserPrincipal> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(token) {
            Some((principal, g)) if *g == generation && now < principal.expires_at => {
                Some(principal.clone())
            }
            _ => None,
        }
    }

    fn put(&self, token: &str, principal: &UserPrincipal, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= VERIFIED_TOKENS_CAP {
            entries.clear();
        }
        entries.insert(token.into(), (principal.clone(), generation));
    }
}

impl Authenticator {
    pub fn new(keys: KeySet, issuer: &str) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            service_token: None,
            api_keys: None,
            remote_keys: None,
            verified: Arc::default(),
        }
    }

    /// Refreshes keys from identity when a token names a key not yet known.
    pub fn with_remote_keys(mut self, remote: Arc<remote::RemoteKeys>) -> Self {
        self.remote_keys = Some(remote);
        self
    }

    pub fn with_service_token(mut self, token: Secret) -> Self {
        self.service_token = Some(token);
        self
    }

    pub fn with_api_keys(mut self, resolver: Arc<dyn ApiKeyResolver>) -> Self {
        self.api_keys = Some(resolver);
        self
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies an access token against the key set, at the current time.
    pub fn verify_token(&self, token: &str) -> Result<UserPrincipal, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let generation = self.keys.generation();
        if let Some(principal) = self.verified.get(token, generation, now) {
            return Ok(principal);
        }
        let principal = self.verify_uncached(token, now)?;
        self.verified.put(token, &principal, generation);
        Ok(principal)
    }

    /// Verifies signature, issuer and expiry without the cache of verified tokens.
    pub fn verify_uncached(&self, token: &str, now: i64) -> Result<UserPrincipal, TokenError> {
        let claims = jwt::verify(token, &self.keys, &self.issuer, now)?;
        Ok(UserPrincipal {
            user_id: claims.sub,
            username: claims.name,
            realm: claims.realm,
            login_session_id: claims.sid,
            token_id: claims.jti,
            scope: claims.scope,
            expires_at: claims.exp,
        })
    }

    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal, ApiError> {
        match credential {
            Credential::Bearer(token) => match (self.verify_token(token), &self.remote_keys) {
                (Err(TokenError::UnknownKey), Some(remote)) => {
                    remote.refresh_if_stale().await;
                    self.verify_token(token)
                }
                (result, _) => result,
            }
            .map(Principal::User)
            .map_err(|e| ApiError::Unauthenticated(e.to_string())),
            Credential::Service(token) => {
                let expected = self.service_token.as_ref().ok_or_else(|| {
                    ApiError::Unauthenticated("service credentials are not accepted here".into())
                })?;
                let ok: bool = expected.expose().as_bytes().ct_eq(token.as_bytes()).into();
                if ok {
                    Ok(Principal::Service)
                } else {
                    Err(ApiError::Unauthenticated(
                        "service credential is invalid".into(),
                    ))
                }
            }
            Credential::ApiKey { id, secret } => {
                let resolver = self.api_keys.as_ref().ok_or_else(|| {
                    ApiError::Unauthenticated("API keys are not accepted here".into())
                })?;
                resolver.resolve(id, secret).await.map(Principal::ApiKey)
            }
        }
    }
}

/// Secret comparison helper for services that hold their own secrets.
pub fn secret_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_schemes() {
        assert_eq!(
            Credential::parse("Bearer abc"),
            Some(Credential::Bearer("abc".into()))
        );
        assert_eq!(
            Credential::parse("ApiKey k1:s3cret"),
            Some(Credential::ApiKey {
                id: "k1".into(),
                secret: "s3cret".into()
            })
        );
        assert_eq!(
            Credential::parse("service tok"),
            Some(Credential::Service("tok".into()))
        );
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "ApiKey nocolon",
            "token",
        ] {
            assert_eq!(Credential::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn service_token_must_match() {
        let auth = Authenticator::new(KeySet::default(), "atrium")
            .with_service_token(Secret::new("right"));
        assert_eq!(
            auth.authenticate(&Credential::Service("right".into()))
                .await
                .ok(),
            Some(Principal::Service)
        );
        assert!(
            auth.authenticate(&Credential::Service("wrong".into()))
                .await
                .is_err()
        );
        let no_service = Authenticator::new(KeySet::default(), "atrium");
        assert!(
            no_service
                .authenticate(&Credential::Service("right".into()))
                .await
                .is_err()
        );
    }
}
