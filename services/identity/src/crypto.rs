//! Secrets at rest (SSH private keys, TOTP secrets, token-signing keys) are sealed with
//! XChaCha20-Poly1305 under the configured 32-byte secrets key; hashes for tokens and API-key
//! secrets; random tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use atrium_service_kit::sealed::SecretBox;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A random URL-safe token with `N` bytes of entropy.
pub fn random_token<const N: usize>() -> String {
    B64URL.encode(random_bytes::<N>())
}

/// Hex SHA-256, for looking up high-entropy tokens by hash.
pub fn sha256_hex(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = SecretBox::generate_key();
        let sb = SecretBox::from_base64(&key).expect("key");
        let sealed = sb.seal(b"hello").expect("seal");
        assert_ne!(
            sealed,
            sb.seal(b"hello").expect("seal"),
            "fresh nonce each time"
        );
        assert_eq!(sb.open(&sealed).expect("open"), b"hello");
        let other = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
        assert!(other.open(&sealed).is_err());
        assert!(sb.open("v1:AAAA").is_err());
        assert!(sb.open("garbage").is_err());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(SecretBox::from_base64("not base64!").is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
        assert!(SecretBox::from_base64(&short).is_err());
    }
}
