//! A setting's value, shaped like the `SettingValue` oneof, and its storage format.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A setting value. The variants match `atrium.policy.v1.SettingValue` one for one (`Json` travels
/// there as JSON text).
///
/// Serde (and so [`Value::to_storage`]) uses serde's external tagging with lowercase tags, a
/// stable format: `{"bool":true}`, `{"int":3600}`, `{"float":20.0}`, `{"string":"delete"}`,
/// `{"json":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Json(serde_json::Value),
}

impl Value {
    /// The JSON text stored in the database. Validated values always round-trip through
    /// [`Value::from_storage`]; a non-finite float (which validation refuses) is written as null.
    pub fn to_storage(&self) -> String {
        let (tag, inner) = match self {
            Value::Bool(b) => ("bool", serde_json::Value::Bool(*b)),
            Value::Int(i) => ("int", serde_json::Value::from(*i)),
            Value::Float(f) => (
                "float",
                serde_json::Number::from_f64(*f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
            ),
            Value::String(s) => ("string", serde_json::Value::String(s.clone())),
            Value::Json(j) => ("json", j.clone()),
        };
        let mut object = serde_json::Map::new();
        object.insert(tag.to_owned(), inner);
        serde_json::Value::Object(object).to_string()
    }

    /// Reads what [`Value::to_storage`] wrote.
    pub fn from_storage(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// What kind of value this is, for error messages ("a boolean", "a number", "a JSON array").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Json(j) => json_kind(j),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A float, or an integer widened to one.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Value::Json(j) => Some(j),
            _ => None,
        }
    }
}

/// What kind of JSON value this is, for error messages.
pub(crate) fn json_kind(j: &serde_json::Value) -> &'static str {
    match j {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a JSON array",
        serde_json::Value::Object(_) => "a JSON object",
    }
}

/// Human text: `true`, `3600`, `20.5`, the string itself, compact JSON.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => f.write_str(s),
            Value::Json(j) => write!(f, "{j}"),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<serde_json::Value> for Value {
    fn from(j: serde_json::Value) -> Self {
        Value::Json(j)
    }
}
