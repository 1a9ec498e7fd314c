//! Group settings, as pure domain logic: the catalogue (names, aliases, types, defaults, built-in
//! group seeds), values and their validation, and resolution of a user's member groups into an
//! effective policy with explanations (seeds/001, reference/group-settings.md).
//!
//! No database and no gRPC here: storage uses [`Value::to_storage`] / [`Value::from_storage`],
//! and the API layer converts [`Value`], [`Definition`] and [`Resolved`] to and from the
//! `atrium.policy.v1` messages.

mod catalogue;
mod definition;
mod effective;
mod error;
mod resolve;
mod usage_limit;
mod validate;
mod value;
mod volume;

#[cfg(test)]
mod tests;

pub use catalogue::{STRING_MAX_LEN, administrators_seed, all_users_seed, catalogue, lookup};
pub use definition::{Definition, Resolution, SettingType, Unit};
pub use effective::EffectivePolicy;
pub use error::SettingError;
pub use resolve::{GroupRef, GroupSettings, Resolved, resolve, strongest_first};
pub use usage_limit::{MAX_USAGE_HOURS, UsageInterval, UsageLimit, UsageScope};
pub use validate::{
    JSON_MAX_BYTES, definition_for, parse_named, parse_raw, validate, validate_named,
};
pub use value::Value;
pub use volume::{MAX_VOLUME_ENTRIES, MountMode, VolumeMapping, VolumeMount};
