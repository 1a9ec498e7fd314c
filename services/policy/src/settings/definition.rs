//! What a catalogued setting is: its name, aliases, type, default, seed, and how it resolves.

use super::value::Value;

/// The unit a numeric setting is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl Unit {
    /// Lowercase plural, as `SettingDefinition.unit` carries it ("seconds").
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Minutes => "minutes",
            Unit::Hours => "hours",
            Unit::Days => "days",
        }
    }
}

/// The type of a setting: what `validate` accepts and what the value means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SettingType {
    Bool,
    /// An integer in `min..=max`; stored as `Value::Int`.
    Int {
        min: i64,
        max: i64,
    },
    /// A finite number in `min..=max`; stored as `Value::Float` (an integer is accepted).
    Float {
        min: f64,
        max: f64,
    },
    /// Free text of at most `max_len` bytes, without control characters other than tab/newline.
    String {
        max_len: usize,
    },
    /// An `http`/`https` URL with a host, or the empty string for "none".
    Url,
    /// One of the listed lowercase words; input is matched case-insensitively.
    Enum(&'static [&'static str]),
    /// A JSON object (deeper checks belong to whoever consumes it, e.g. run_config → workspaces).
    Json,
    /// A workspace id (a UUID, normalised to lowercase hyphenated), or the empty string for none.
    Image,
    /// A policy id, or the empty string for "explicitly none".
    Policy,
    /// `{"type": "per_user"|"per_group", "interval": "daily"|"weekly"|"monthly"|"total",
    /// "hours": decimal}`; see [`super::UsageLimit`].
    UsageLimit,
    /// `{"/host/path": {"bind": "/container/path", "mode": "rw"|"ro"}}`; see
    /// [`super::VolumeMapping`].
    VolumeMapping,
}

impl SettingType {
    /// The type's name as `SettingDefinition.type` carries it.
    pub fn name(&self) -> &'static str {
        match self {
            SettingType::Bool => "bool",
            SettingType::Int { .. } => "int",
            SettingType::Float { .. } => "float",
            SettingType::String { .. } => "string",
            SettingType::Url => "url",
            SettingType::Enum(_) => "enum",
            SettingType::Json => "json",
            SettingType::Image => "image",
            SettingType::Policy => "policy",
            SettingType::UsageLimit => "usage_limit",
            SettingType::VolumeMapping => "volume_mapping",
        }
    }

    /// The accepted words of an enum; empty for every other type.
    pub fn allowed_values(&self) -> &'static [&'static str] {
        match self {
            SettingType::Enum(values) => values,
            _ => &[],
        }
    }

    /// What a value of this type looks like, for error messages ("a boolean").
    pub fn expected(&self) -> String {
        match self {
            SettingType::Bool => "a boolean".to_owned(),
            SettingType::Int { .. } => "an integer".to_owned(),
            SettingType::Float { .. } => "a number".to_owned(),
            SettingType::String { .. } => "a string".to_owned(),
            SettingType::Url => "an http(s) URL string".to_owned(),
            SettingType::Enum(values) => format!("one of {}", values.join(", ")),
            SettingType::Json => "a JSON object".to_owned(),
            SettingType::Image => "a workspace id (UUID) or an empty string".to_owned(),
            SettingType::Policy => "a policy id string".to_owned(),
            SettingType::UsageLimit => "a usage limit object".to_owned(),
            SettingType::VolumeMapping => "a volume mapping object".to_owned(),
        }
    }
}

/// How the values of several member groups combine into one effective value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// The member group with the lowest priority number that sets it wins (seeds/001).
    LowestPriority,
    /// Every member group's value is merged (volume_mapping: the union of host paths).
    Combined,
}

impl Resolution {
    /// As `SettingDefinition.resolution` carries it.
    pub fn describe(self) -> &'static str {
        match self {
            Resolution::LowestPriority => "lowest priority number wins",
            Resolution::Combined => "combined across all member groups",
        }
    }
}

/// One catalogued group setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The canonical name; what the service stores.
    pub name: &'static str,
    /// Other names accepted on input (seeds/001 names, current Kasm names); never stored.
    pub aliases: &'static [&'static str],
    pub ty: SettingType,
    /// What applies when no member group sets it; `None` means "not set" (which is not the same
    /// as a zero: session_time_limit absent = unlimited, 0 = set).
    pub default: Option<Value>,
    /// What the built-in All Users group is seeded with, if anything.
    pub all_users_seed: Option<Value>,
    pub description: &'static str,
    pub resolution: Resolution,
    /// The unit of a number (for usage_limit: of its `hours`).
    pub unit: Option<Unit>,
}

impl Definition {
    /// Checks and normalises a value for this setting; see [`super::validate`].
    pub fn validate(&self, value: Value) -> Result<Value, super::SettingError> {
        super::validate(self, value)
    }

    /// Parses CLI text for this setting and validates it; see [`super::parse_raw`].
    pub fn parse_raw(&self, raw: &str) -> Result<Value, super::SettingError> {
        super::parse_raw(self, raw)
    }

    /// Whether `name` is this setting's canonical name or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}
