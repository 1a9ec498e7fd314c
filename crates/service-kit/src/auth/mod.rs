//! Authentication for every Atrium gRPC server: who is calling, established once per request by
//! [`AuthLayer`] and handed to handlers as a [`Principal`] request extension.
//!
//! Users and programs present `authorization` metadata: `Bearer <access token>` (verified
//! locally against the [`KeySet`], refused once its login session is revoked) or
//! `ApiKey <id>:<secret>` (resolved by an [`ApiKeyResolver`]). Atrium's own services present no
//! secret: their client certificate names them (mutual TLS, [`crate::tls`]), and the layer lets
//! each call only its row of [`services::ALLOWED`]. Authorization beyond that — what the
//! principal may do — is the handler's business.

pub mod delegation;
pub mod jwt;
pub mod keys;
mod layer;
pub mod permissions;
pub mod remote;
pub mod revocation;
pub mod services;

use std::sync::Arc;

use async_trait::async_trait;
use subtle::ConstantTimeEq;

pub use delegation::Rights;
pub use jwt::{AccessClaims, Scope, TokenError};
pub use keys::{KeyEntry, KeySet};
pub use layer::{AuthLayer, AuthService};
pub use revocation::Revocations;
pub use services::ServiceId;

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
    /// One of Atrium's own services, proven by its client certificate. The auth layer has
    /// already refused every call outside the service's row of [`services::ALLOWED`].
    Service(ServiceId),
}

impl Principal {
    /// The audit-log form: `user:<id>`, `api_key:<id>` or `service:<name>`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User(u) => format!("user:{}", u.user_id),
            Principal::ApiKey(k) => format!("api_key:{}", k.key_id),
            Principal::Service(s) => format!("service:{s}"),
        }
    }

    /// Whether the caller is one of Atrium's services.
    pub fn is_service(&self) -> bool {
        matches!(self, Principal::Service(_))
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

/// A credential as presented in `authorization` metadata. `Debug` shows the kind and the key
/// id, never the token or the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer(String),
    ApiKey { id: String, secret: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer([redacted])"),
            Credential::ApiKey { id, .. } => {
                write!(f, "ApiKey {{ id: {id:?}, secret: [redacted] }}")
            }
        }
    }
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
        } else {
            None
        }
    }

    /// The `authorization` metadata value for this credential.
    pub fn header_value(&self) -> String {
        match self {
            Credential::Bearer(t) => format!("Bearer {t}"),
            Credential::ApiKey { id, secret } => format!("ApiKey {id}:{secret}"),
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
    api_keys: Option<Arc<dyn ApiKeyResolver>>,
    remote_keys: Option<Arc<remote::RemoteKeys>>,
    verified: Arc<VerifiedTokens>,
    revocations: Revocations,
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
            api_keys: None,
            remote_keys: None,
            verified: Arc::default(),
            revocations: Revocations::default(),
        }
    }

    /// Refuses tokens of the login sessions in `revocations` (kept current by identity's feed).
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = revocations;
        self
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Refreshes keys from identity when a token names a key not yet known.
    pub fn with_remote_keys(mut self, remote: Arc<remote::RemoteKeys>) -> Self {
        self.remote_keys = Some(remote);
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
            .map_err(|e| ApiError::Unauthenticated(e.to_string()))
            .and_then(|user| {
                if self.revocations.is_revoked(&user.login_session_id) {
                    Err(ApiError::Unauthenticated(
                        "this login session has ended; sign in again".into(),
                    ))
                } else {
                    Ok(Principal::User(user))
                }
            }),
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
    fn parses_the_two_schemes() {
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
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Service tok",
            "ApiKey nocolon",
            "token",
        ] {
            assert_eq!(Credential::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret_parts() {
        let bearer = format!("{:?}", Credential::Bearer("tok-123".into()));
        let key = format!(
            "{:?}",
            Credential::ApiKey {
                id: "k1".into(),
                secret: "s3cret".into()
            }
        );
        assert!(
            !bearer.contains("tok-123") && !key.contains("s3cret"),
            "{bearer} {key}"
        );
        assert!(key.contains("k1"));
    }
}
