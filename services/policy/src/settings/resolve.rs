//! Resolution: from the settings of a user's member groups to one effective value per catalogued
//! setting, with the explanation of where each came from.

use std::collections::BTreeMap;

use serde_json::Map;

use super::catalogue;
use super::definition::{Definition, Resolution};
use super::value::Value;

/// A group as resolution and explanations name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
    /// Lower numbers are stronger (Administrators 1, All Users 1000).
    pub priority: i32,
}

/// One member group and the settings it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    pub group: GroupRef,
    /// Canonical name → validated value. Keys that are not canonical catalogue names (aliases,
    /// settings since removed) are ignored: the service stores canonical names only.
    pub values: BTreeMap<String, Value>,
}

/// The effective value of one setting and its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Canonical name.
    pub name: &'static str,
    /// `None`: no member group sets it and the catalogue default is "not set".
    pub value: Option<Value>,
    /// True when no member group sets it, so `value` is the catalogue default.
    pub is_default: bool,
    /// The group whose value won; for a combined setting every group that contributed, strongest
    /// first. Empty when `is_default`.
    pub supplied_by: Vec<GroupRef>,
    /// Member groups that also set it but lost to a stronger group, strongest first, with what
    /// they set. For a combined setting: the entries that lost (same key as a stronger group's).
    pub overridden: Vec<(GroupRef, Value)>,
}

/// The member groups strongest first: by priority number ascending, then by group id ascending.
///
/// The id tie-break makes resolution deterministic when two groups share a priority. Group ids
/// are UUIDv7, which sort by creation time, so on a tie the **older group wins**. Groups with
/// the same priority and id (which the service never produces) keep their input order.
pub fn strongest_first(groups: &[GroupSettings]) -> Vec<&GroupSettings> {
    let mut ordered: Vec<&GroupSettings> = groups.iter().collect();
    ordered.sort_by(|a, b| {
        (a.group.priority, a.group.id.as_str()).cmp(&(b.group.priority, b.group.id.as_str()))
    });
    ordered
}

/// Resolves every catalogued setting, in catalogue order, for a user who is a member of `groups`
/// (any order; see [`strongest_first`] for the order applied).
///
/// - [`Resolution::LowestPriority`]: the value of the strongest group that sets it; `overridden`
///   lists every weaker group that also sets it. No setter: the catalogue default.
/// - [`Resolution::Combined`] (volume_mapping): the union of every setter's JSON object; where
///   several groups map the same host path, or different host paths onto the same container
///   path, the strongest group's entry wins and the
///   weaker groups' entries are listed in `overridden`. A group is in `supplied_by` unless every
///   one of its entries lost (a group setting `{}` counts as supplying). No setter: the default.
///   A value that is not a JSON object (validation never lets one through) contributes nothing.
pub fn resolve(groups: &[GroupSettings]) -> Vec<Resolved> {
    let ordered = strongest_first(groups);
    catalogue::catalogue()
        .iter()
        .map(|def| resolve_one(def, &ordered))
        .collect()
}

fn resolve_one(def: &'static Definition, ordered: &[&GroupSettings]) -> Resolved {
    let setters: Vec<(&GroupRef, &Value)> = ordered
        .iter()
        .filter_map(|g| g.values.get(def.name).map(|v| (&g.group, v)))
        .collect();
    let Some(((strongest, winner), weaker)) = setters.split_first() else {
        return Resolved {
            name: def.name,
            value: def.default.clone(),
            is_default: true,
            supplied_by: Vec::new(),
            overridden: Vec::new(),
        };
    };
    match def.resolution {
        Resolution::LowestPriority => Resolved {
            name: def.name,
            value: Some((*winner).clone()),
            is_default: false,
            supplied_by: vec![(*strongest).clone()],
            overridden: weaker
                .iter()
                .map(|(group, v)| ((*group).clone(), (*v).clone()))
                .collect(),
        },
        Resolution::Combined => combined(def, &setters),
    }
}

/// `setters` is strongest first.
fn combined(def: &'static Definition, setters: &[(&GroupRef, &Value)]) -> Resolved {
    let mut union = Map::new();
    // Container paths already taken: a weaker group's mount onto the same place loses too.
    let mut binds = std::collections::HashSet::new();
    let mut supplied_by = Vec::new();
    let mut overridden = Vec::new();
    for (group, value) in setters {
        let Some(serde_json::Value::Object(entries)) = value.as_json() else {
            continue;
        };
        let mut supplied = entries.is_empty();
        let mut lost = Map::new();
        for (key, entry) in entries {
            let bind = entry.get("bind").and_then(serde_json::Value::as_str);
            if union.contains_key(key) || bind.is_some_and(|b| binds.contains(b)) {
                lost.insert(key.clone(), entry.clone());
            } else {
                union.insert(key.clone(), entry.clone());
                binds.extend(bind.map(str::to_owned));
                supplied = true;
            }
        }
        if supplied {
            supplied_by.push((*group).clone());
        }
        if !lost.is_empty() {
            overridden.push((
                (*group).clone(),
                Value::Json(serde_json::Value::Object(lost)),
            ));
        }
    }
    Resolved {
        name: def.name,
        value: Some(Value::Json(serde_json::Value::Object(union))),
        is_default: false,
        supplied_by,
        overridden,
    }
}
