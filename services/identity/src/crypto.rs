//! Secrets at rest (SSH private keys, TOTP secrets, token-signing keys) are sealed with
//! XChaCha20-Poly1305 under the configured 32-byte secrets key; hashes for tokens and API-key
//! secrets; random tokens.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "v1:";

/// Seals and opens secrets with the service's secrets key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// `key_b64` is 32 bytes, base64 (standard alphabet).
    pub fn from_base64(key_b64: &str) -> anyhow::Result<Self> {
        let key = B64
            .decode(key_b64.trim())
            .map_err(|_| anyhow::anyhow!("secrets_key: not valid base64"))?;
        if key.len() != 32 {
            anyhow::bail!("secrets_key: must be 32 bytes (base64), got {}", key.len());
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| anyhow::anyhow!("secrets_key: bad length"))?;
        Ok(Self { cipher })
    }

    /// A fresh random key, base64, for `atrium up` and tests.
    pub fn generate_key() -> String {
        B64.encode(random_bytes::<32>())
    }

    pub fn seal(&self, plaintext: &[u8]) -> anyhow::Result<String> {
        let nonce_bytes = random_bytes::<24>();
        let nonce = XNonce::from_slice(&nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(nonce, plaintext)
            .map_err(|_| anyhow::anyhow!("seal secret"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|raw| raw.len() > 24)
            .ok_or_else(|| anyhow::anyhow!("sealed secret is malformed"))?;
        let (nonce, ciphertext) = raw.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| anyhow::anyhow!("sealed secret does not open with this secrets_key"))
    }
}

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
        assert!(SecretBox::from_base64(&B64.encode([0u8; 16])).is_err());
    }
}
