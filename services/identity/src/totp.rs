//! TOTP (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps, one step of drift either way.

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const DIGITS: u32 = 6;
pub const STEP_SECS: i64 = 30;

/// A new 160-bit secret.
pub fn generate_secret() -> Vec<u8> {
    crate::crypto::random_bytes::<20>().to_vec()
}

pub fn encode_secret(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The code for a time step.
pub fn code_at(secret: &[u8], step: i64) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        value % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// Whether `code` is valid at `now` (Unix seconds), allowing one step of drift either way.
pub fn verify(secret: &[u8], code: &str, now: i64) -> bool {
    matching_step(secret, code, now).is_some()
}

/// The time step `code` belongs to, if it is valid at `now` (±1 step). Callers record the step
/// so that a code cannot be used twice (RFC 6238 §5.2).
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = now.div_euclid(STEP_SECS);
    (-1..=1)
        .map(|d| step + d)
        .find(|s| atrium_service_kit::auth::secret_eq(&code_at(secret, *s), code))
}

/// The otpauth:// URI authenticator apps scan.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        encode_secret(secret),
        issuer = percent(issuer),
        account = percent(account),
    )
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 appendix B, SHA-1 key, 8-digit codes truncated to our 6 digits.
        let key = b"12345678901234567890";
        assert_eq!(code_at(key, 59 / 30), "287082");
        assert_eq!(code_at(key, 1_111_111_109 / 30), "081804");
        assert_eq!(code_at(key, 2_000_000_000 / 30), "279037");
    }

    #[test]
    fn drift_of_one_step_either_way() {
        let key = generate_secret();
        let now = 1_700_000_000;
        let code = code_at(&key, now / 30);
        assert!(verify(&key, &code, now));
        assert!(verify(&key, &code, now + 30));
        assert!(verify(&key, &code, now - 30));
        assert!(!verify(&key, &code, now + 90));
        assert!(!verify(&key, "12345", now));
        assert!(!verify(&key, "abcdef", now));
    }

    #[test]
    fn uri_escapes_names() {
        let uri = otpauth_uri("Atrium", "a b@c", b"12345678901234567890");
        assert!(uri.starts_with(
            "otpauth://totp/Atrium:a%20b%40c?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Atrium"
        ));
    }
}
