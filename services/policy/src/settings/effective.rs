//! A user's effective policy: every catalogued setting resolved, with typed getters.

use super::catalogue;
use super::resolve::{self, GroupSettings, Resolved};
use super::usage_limit::UsageLimit;
use super::value::Value;
use super::volume::VolumeMapping;

/// Every catalogued setting resolved for one user, in catalogue order, each with its explanation.
///
/// Getters take a canonical name or an alias and return `None` both for an unknown name and for
/// a setting that is "not set"; "set to 0" stays `Some(0)` (`session_time_limit`: `Some(Int(0))`
/// is a zero-second limit, `None` is no limit).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectivePolicy {
    /// One entry per catalogue definition, at the definition's catalogue position.
    settings: Vec<Resolved>,
}

impl EffectivePolicy {
    /// Resolves the settings of a user's member groups (any order); see [`resolve::resolve`].
    pub fn resolve(groups: &[GroupSettings]) -> EffectivePolicy {
        EffectivePolicy {
            settings: resolve::resolve(groups),
        }
    }

    /// The policy of a user in no group: every catalogue default.
    pub fn defaults() -> EffectivePolicy {
        EffectivePolicy::resolve(&[])
    }

    /// The resolved setting with its explanation.
    pub fn explain(&self, name: &str) -> Option<&Resolved> {
        catalogue::position(name).and_then(|i| self.settings.get(i))
    }

    /// The effective value; `None` when not set (or unknown).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.explain(name).and_then(|r| r.value.as_ref())
    }

    /// Whether the setting has a value ("set to 0" is set).
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    pub fn get_int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_int)
    }

    /// A float, or an integer widened to one.
    pub fn get_float(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_float)
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    pub fn get_json(&self, name: &str) -> Option<&serde_json::Value> {
        self.get(name).and_then(Value::as_json)
    }

    /// The effective usage_limit; `None` when not set (unmetered).
    pub fn usage_limit(&self) -> Option<UsageLimit> {
        self.get_json("usage_limit")
            .and_then(|j| UsageLimit::from_json(j).ok())
    }

    /// The combined volume_mapping of all member groups.
    pub fn volume_mapping(&self) -> VolumeMapping {
        self.get_json("volume_mapping")
            .and_then(|j| VolumeMapping::from_json(j).ok())
            .unwrap_or_default()
    }

    /// Every resolved setting, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = &Resolved> {
        self.settings.iter()
    }

    /// Every resolved setting, in catalogue order.
    pub fn into_resolved(self) -> Vec<Resolved> {
        self.settings
    }
}
