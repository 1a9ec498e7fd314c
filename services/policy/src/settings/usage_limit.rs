//! The usage_limit setting as a type: who shares the allowance, over which window, how many hours.

use serde_json::{Map, Value as Json};

/// The most hours a usage limit may grant: 100 years.
pub const MAX_USAGE_HOURS: f64 = 876_000.0;

/// Whose time counts against the allowance (`"type"` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageScope {
    /// Each member has their own allowance.
    PerUser,
    /// Members share one allowance.
    PerGroup,
}

/// The window the allowance renews over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageInterval {
    Daily,
    Weekly,
    Monthly,
    /// Never renews.
    Total,
}

/// `{"type": "per_user"|"per_group", "interval": "daily"|"weekly"|"monthly"|"total",
/// "hours": decimal in (0, 876000]}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageLimit {
    pub scope: UsageScope,
    pub interval: UsageInterval,
    /// Decimal hours, `0 < hours <= MAX_USAGE_HOURS`.
    pub hours: f64,
}

impl UsageScope {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageScope::PerUser => "per_user",
            UsageScope::PerGroup => "per_group",
        }
    }
}

impl UsageInterval {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageInterval::Daily => "daily",
            UsageInterval::Weekly => "weekly",
            UsageInterval::Monthly => "monthly",
            UsageInterval::Total => "total",
        }
    }
}

impl UsageLimit {
    /// Reads the JSON form. Words are matched case-insensitively; extra keys are refused. The
    /// error is the reason only (the caller names the setting).
    pub fn from_json(json: &Json) -> Result<UsageLimit, String> {
        let Json::Object(object) = json else {
            return Err(format!(
                "expected an object with type, interval and hours, got {}",
                super::value::json_kind(json)
            ));
        };
        if let Some(extra) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "type" | "interval" | "hours"))
        {
            return Err(format!(
                "unknown key \"{extra}\" (allowed: type, interval, hours)"
            ));
        }
        let scope = match word(object, "type", "per_user or per_group")?.as_str() {
            "per_user" => UsageScope::PerUser,
            "per_group" => UsageScope::PerGroup,
            other => {
                return Err(format!(
                    "type must be per_user or per_group, got \"{other}\""
                ));
            }
        };
        let intervals = "daily, weekly, monthly or total";
        let interval = match word(object, "interval", intervals)?.as_str() {
            "daily" => UsageInterval::Daily,
            "weekly" => UsageInterval::Weekly,
            "monthly" => UsageInterval::Monthly,
            "total" => UsageInterval::Total,
            other => return Err(format!("interval must be {intervals}, got \"{other}\"")),
        };
        let hours = match object.get("hours") {
            None => return Err("hours is required (decimal hours > 0)".to_owned()),
            Some(Json::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            Some(other) => {
                return Err(format!(
                    "hours must be a number, got {}",
                    super::value::json_kind(other)
                ));
            }
        };
        if !hours.is_finite() || hours <= 0.0 {
            return Err(format!("hours must be greater than 0, got {hours}"));
        }
        if hours > MAX_USAGE_HOURS {
            return Err(format!(
                "hours must be at most {MAX_USAGE_HOURS}, got {hours}"
            ));
        }
        Ok(UsageLimit {
            scope,
            interval,
            hours,
        })
    }

    /// The canonical JSON form (lowercase words, hours as a float).
    pub fn to_json(&self) -> Json {
        let mut object = Map::new();
        object.insert("type".to_owned(), Json::from(self.scope.as_str()));
        object.insert("interval".to_owned(), Json::from(self.interval.as_str()));
        object.insert("hours".to_owned(), Json::from(self.hours));
        Json::Object(object)
    }
}

/// A required string field, trimmed and lowercased.
fn word(object: &Map<String, Json>, key: &str, allowed: &str) -> Result<String, String> {
    match object.get(key) {
        Some(Json::String(s)) => Ok(s.trim().to_ascii_lowercase()),
        Some(other) => Err(format!(
            "{key} must be a string ({allowed}), got {}",
            super::value::json_kind(other)
        )),
        None => Err(format!("{key} is required ({allowed})")),
    }
}
