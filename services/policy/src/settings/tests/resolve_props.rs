//! Properties of resolution over random member groups, checked against a brute-force oracle.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::json;

use super::super::*;

/// The LowestPriority settings the groups draw from: one of each interesting shape.
const SETTINGS: &[&str] = &[
    "allow_kasm_audio",
    "max_kasms_per_user",
    "idle_disconnect",
    "session_time_limit",
    "keepalive_expiration_action",
    "web_filter_policy",
];
const HOSTS: &[&str] = &["/a", "/b", "/c", "/srv/d", "/srv/e"];
const BINDS: &[&str] = &["/x", "/y", "/z"];

fn value_for(name: &str) -> BoxedStrategy<Value> {
    match name {
        "allow_kasm_audio" => any::<bool>().prop_map(Value::Bool).boxed(),
        "max_kasms_per_user" => (0_i64..=100).prop_map(Value::Int).boxed(),
        "idle_disconnect" => (0.0_f64..10_000.0).prop_map(Value::Float).boxed(),
        "session_time_limit" => (0_i64..=100_000).prop_map(Value::Int).boxed(),
        "keepalive_expiration_action" => prop::sample::select(vec!["delete", "stop", "pause"])
            .prop_map(Value::from)
            .boxed(),
        _ => "[a-z0-9-]{0,8}".prop_map(Value::String).boxed(),
    }
}

fn volume_mapping() -> impl Strategy<Value = Value> {
    let entry = (
        prop::sample::select(BINDS),
        prop::sample::select(vec!["rw", "ro"]),
    );
    prop::collection::btree_map(prop::sample::select(HOSTS), entry, 0..=4).prop_map(|m| {
        // One group never mounts two host paths onto the same container path.
        let mut binds = BTreeSet::new();
        let object: serde_json::Map<String, serde_json::Value> = m
            .into_iter()
            .filter(|(_, (bind, _))| binds.insert(*bind))
            .map(|(host, (bind, mode))| (host.to_owned(), json!({"bind": bind, "mode": mode})))
            .collect();
        Value::Json(serde_json::Value::Object(object))
    })
}

fn group(id: u16) -> impl Strategy<Value = GroupSettings> {
    let values: Vec<BoxedStrategy<Option<(String, Value)>>> = SETTINGS
        .iter()
        .map(|name| {
            prop::option::of(value_for(name).prop_map(move |v| ((*name).to_owned(), v))).boxed()
        })
        .chain(std::iter::once(
            prop::option::of(volume_mapping().prop_map(|v| ("volume_mapping".to_owned(), v)))
                .boxed(),
        ))
        .collect();
    // Few priorities, so ties are common.
    (0_i32..4, values).prop_map(move |(priority, values)| GroupSettings {
        group: GroupRef {
            id: format!("{id:05}"),
            name: format!("g{id}"),
            priority,
        },
        values: values.into_iter().flatten().collect(),
    })
}

fn groups() -> impl Strategy<Value = Vec<GroupSettings>> {
    prop::collection::btree_set(any::<u16>(), 1..=8)
        .prop_flat_map(|ids| ids.into_iter().map(group).collect::<Vec<_>>())
        .prop_shuffle()
}

fn key(g: &GroupSettings) -> (i32, String) {
    (g.group.priority, g.group.id.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_values_are_valid(groups in groups()) {
        for g in &groups {
            for (name, value) in &g.values {
                let def = lookup(name).unwrap();
                let validated = validate(def, value.clone());
                prop_assert_eq!(validated.as_ref(), Ok(value));
            }
        }
    }

    #[test]
    fn lowest_priority_then_id_wins(groups in groups()) {
        let policy = EffectivePolicy::resolve(&groups);
        for def in catalogue().iter().filter(|d| d.resolution == Resolution::LowestPriority) {
            let r = policy.explain(def.name).unwrap();
            let mut setters: Vec<&GroupSettings> =
                groups.iter().filter(|g| g.values.contains_key(def.name)).collect();
            match setters.iter().copied().min_by_key(|g| key(g)) {
                None => {
                    prop_assert!(r.is_default);
                    prop_assert_eq!(&r.value, &def.default);
                    prop_assert!(r.supplied_by.is_empty() && r.overridden.is_empty());
                }
                Some(winner) => {
                    prop_assert!(!r.is_default);
                    prop_assert_eq!(r.value.as_ref(), winner.values.get(def.name));
                    prop_assert_eq!(&r.supplied_by, &vec![winner.group.clone()]);
                    setters.retain(|g| g.group != winner.group);
                    setters.sort_by_key(|g| key(g));
                    let others: Vec<(GroupRef, Value)> = setters
                        .iter()
                        .map(|g| (g.group.clone(), g.values[def.name].clone()))
                        .collect();
                    prop_assert_eq!(&r.overridden, &others);
                }
            }
        }
    }

    #[test]
    fn volume_mapping_is_the_union_strongest_per_host_path(groups in groups()) {
        let r = EffectivePolicy::resolve(&groups).explain("volume_mapping").cloned().unwrap();
        let mut setters: Vec<&GroupSettings> =
            groups.iter().filter(|g| g.values.contains_key("volume_mapping")).collect();
        setters.sort_by_key(|g| key(g));
        if setters.is_empty() {
            prop_assert!(r.is_default);
            prop_assert_eq!(r.value, Some(Value::Json(json!({}))));
            prop_assert!(r.supplied_by.is_empty() && r.overridden.is_empty());
            return Ok(());
        }
        prop_assert!(!r.is_default);
        // Strongest group first; an entry wins unless a stronger one took its host path or its
        // container path.
        let mut union = serde_json::Map::new();
        let mut taken_binds = BTreeSet::new();
        let mut winners = BTreeSet::new();
        let mut lost: BTreeMap<(i32, String), (GroupRef, serde_json::Map<String, serde_json::Value>)> =
            BTreeMap::new();
        for g in &setters {
            let Some(serde_json::Value::Object(map)) = g.values["volume_mapping"].as_json() else {
                unreachable!("generated mappings are objects");
            };
            for (host, entry) in map {
                let bind = entry["bind"].as_str().unwrap().to_owned();
                if union.contains_key(host) || taken_binds.contains(&bind) {
                    lost.entry(key(g)).or_insert_with(|| (g.group.clone(), serde_json::Map::new())).1
                        .insert(host.clone(), entry.clone());
                } else {
                    union.insert(host.clone(), entry.clone());
                    taken_binds.insert(bind);
                    winners.insert(key(g));
                }
            }
        }
        prop_assert_eq!(r.value, Some(Value::Json(serde_json::Value::Object(union))));
        let mut suppliers: Vec<&GroupSettings> = setters
            .iter()
            .copied()
            .filter(|g| {
                let empty = g.values["volume_mapping"].as_json() == Some(&json!({}));
                empty || winners.contains(&key(g))
            })
            .collect();
        suppliers.sort_by_key(|g| key(g));
        let suppliers: Vec<GroupRef> = suppliers.iter().map(|g| g.group.clone()).collect();
        prop_assert_eq!(&r.supplied_by, &suppliers);
        let overridden: Vec<(GroupRef, Value)> = lost
            .into_values()
            .map(|(g, m)| (g, Value::Json(serde_json::Value::Object(m))))
            .collect();
        prop_assert_eq!(&r.overridden, &overridden);
        // Every winning entry is explained by a named supplier.
        prop_assert!(winners.iter().all(|w| suppliers.iter().any(|s| (s.priority, s.id.clone()) == *w)));
    }

    #[test]
    fn resolution_does_not_depend_on_input_order(groups in groups()) {
        let mut reversed = groups.clone();
        reversed.reverse();
        prop_assert_eq!(resolve(&groups), resolve(&reversed));
    }

    #[test]
    fn storage_round_trips(groups in groups()) {
        for value in groups.iter().flat_map(|g| g.values.values()) {
            prop_assert_eq!(&Value::from_storage(&value.to_storage()).unwrap(), value);
        }
    }
}
