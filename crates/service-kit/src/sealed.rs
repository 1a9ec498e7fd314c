//! Secrets at rest, sealed with XChaCha20-Poly1305 under a service's 32-byte secrets key
//! (`v1:` + base64 of nonce and ciphertext). Identity seals SSH private keys, TOTP secrets and
//! signing keys with it; the session-manager seals each session's VNC password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

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

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_another_key() {
        let sealed_box = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
        let sealed = sealed_box.seal(b"vnc password").expect("seal");
        assert_eq!(sealed_box.open(&sealed).expect("open"), b"vnc password");
        let other = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
        assert!(other.open(&sealed).is_err());
        assert!(sealed_box.open("v1:AAAA").is_err());
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
    }
}
