//! Input checks and conversions every service's API edge uses; each error names the field.

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult};

/// A UUID in any common spelling (with or without dashes), normalised to lower-case hyphenated.
pub fn uuid(field: &str, raw: &str) -> ApiResult<String> {
    if raw.trim().is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    uuid::Uuid::parse_str(raw.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::invalid(field, "is not a valid id (UUID)"))
}

/// Free text of at most `max` characters, trimmed; short fields (≤ 255) refuse control
/// characters, long ones (notes, descriptions) allow newlines and tabs.
pub fn text(field: &str, raw: &str, max: usize) -> ApiResult<String> {
    if raw.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if max <= 255 && raw.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(raw.trim().to_owned())
}

/// Like [`text`], and not empty.
pub fn required_text(field: &str, raw: &str, max: usize) -> ApiResult<String> {
    let value = text(field, raw, max)?;
    if value.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(value)
}

/// A wire timestamp, truncated to microseconds: what PostgreSQL keeps, so a value reads back
/// exactly as it was answered.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    let micros = at.timestamp_subsec_micros();
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(micros * 1000).unwrap_or(0),
    }
}

pub fn from_timestamp(field: &str, ts: &prost_types::Timestamp) -> ApiResult<DateTime<Utc>> {
    u32::try_from(ts.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos))
        .ok_or_else(|| ApiError::invalid(field, "is not a valid timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_text_and_timestamps() {
        let id = "0192f5a2-7c3b-7def-8a1b-0123456789ab";
        assert_eq!(
            uuid("user_id", "0192F5A27C3B7DEF8A1B0123456789AB")
                .ok()
                .as_deref(),
            Some(id)
        );
        let e = uuid("user_id", "nope")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(e, "user_id: is not a valid id (UUID)");
        assert!(text("name", "a\u{7}b", 255).is_err());
        assert!(text("notes", "line\nline", 1000).is_ok());
        assert!(required_text("name", "  ", 10).is_err());
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
        let ts = timestamp(at);
        assert_eq!(ts.nanos, 123_456_000);
        assert!(
            from_timestamp(
                "at",
                &prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1
                }
            )
            .is_err()
        );
    }
}
