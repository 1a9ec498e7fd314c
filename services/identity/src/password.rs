//! Password hashing (argon2id, OWASP parameters: 19 MiB, 2 passes, 1 lane) and the password
//! policy.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use atrium_service_kit::ApiError;

/// OWASP's argon2id recommendation (Password Storage Cheat Sheet): m=19456 KiB, t=2, p=1.
pub const MEMORY_KIB: u32 = 19_456;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;
/// Longer passwords are refused: hashing megabytes per login is a denial of service.
pub const MAX_LENGTH: usize = 1024;

fn argon2() -> Argon2<'static> {
    // The constants are valid parameters; `Params::new` cannot fail for them.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The configured password rules.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl PasswordPolicy {
    /// Checks `password` for `field`, naming the field in the error.
    pub fn check(&self, field: &str, password: &str, username: &str) -> Result<(), ApiError> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(ApiError::invalid(
                field,
                format!("must be at least {} characters", self.min_length),
            ));
        }
        if password.len() > MAX_LENGTH {
            return Err(ApiError::invalid(
                field,
                format!("must be at most {MAX_LENGTH} bytes"),
            ));
        }
        if password.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                field,
                "must not contain control characters",
            ));
        }
        if !username.is_empty() && password.eq_ignore_ascii_case(username) {
            return Err(ApiError::invalid(field, "must not be the username"));
        }
        Ok(())
    }
}

/// Hashes on a blocking thread (tens of milliseconds of CPU).
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
            .map_err(|e| ApiError::internal(anyhow::anyhow!("salt: {e}")))?;
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(anyhow::anyhow!("hash password: {e}")))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Verifies on a blocking thread. A malformed stored hash verifies nothing.
pub async fn verify(password: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || match PasswordHash::new(&stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    })
    .await
    .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verify_round_trip_uses_argon2id_owasp() {
        let h = hash("correct horse".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("correct horse".into(), h.clone())
                .await
                .expect("verify")
        );
        assert!(!verify("wrong horse".into(), h).await.expect("verify"));
        assert!(
            !verify("x".into(), "not a hash".into())
                .await
                .expect("verify")
        );
    }

    #[test]
    fn policy_names_the_field() {
        let p = PasswordPolicy { min_length: 8 };
        let e = p
            .check("password", "short", "bob")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(e, "password: must be at least 8 characters");
        assert!(p.check("password", "Bobbobbob", "bobbobbob").is_err());
        assert!(p.check("password", "long enough", "bob").is_ok());
        assert!(p.check("password", &"x".repeat(2000), "bob").is_err());
    }
}
