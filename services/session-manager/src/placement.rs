//! Placement, as pure code: which agent hosts a new session, and why every other one does not.
//!
//! Alive agents only (never draining or unhealthy); the requested zone first, other zones only
//! when that zone's `search_alternate_zones` allows and the user did not pick the zone; free
//! cores, memory and GPUs = capacity − what placed sessions reserve; agents that already hold
//! the image first; then least-loaded (default) or most-loaded (packing) by the zone's
//! strategy. Ties go to the lower agent id, so the answer is deterministic.

use std::collections::HashMap;

/// Cores, memory and GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    pub cores: f64,
    pub memory_mib: i64,
    pub gpus: u32,
}

impl Resources {
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            cores: (self.cores - other.cores).max(0.0),
            memory_mib: (self.memory_mib - other.memory_mib).max(0),
            gpus: self.gpus.saturating_sub(other.gpus),
        }
    }

    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            cores: self.cores + other.cores,
            memory_mib: self.memory_mib + other.memory_mib,
            gpus: self.gpus + other.gpus,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentHealth {
    Active,
    Draining,
    Unhealthy,
}

/// One agent as placement sees it: its heartbeat plus what the session-manager has placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub agent_id: String,
    pub zone: String,
    pub health: AgentHealth,
    /// Why the agent is not active, from its heartbeat.
    pub reason: String,
    /// Capacity after per-agent overrides.
    pub capacity: Resources,
    /// Reserved by sessions placed on it.
    pub reserved: Resources,
    pub images: Vec<String>,
}

impl Candidate {
    pub fn free(&self) -> Resources {
        self.capacity.minus(self.reserved)
    }

    /// 0 (empty) to 1 (full): the fuller of cores and memory.
    fn load(&self, need: &Need) -> f64 {
        let after = self.reserved.plus(need.resources);
        let ratio = |used: f64, total: f64| if total > 0.0 { used / total } else { 1.0 };
        ratio(after.cores, self.capacity.cores).max(ratio(
            after.memory_mib as f64,
            self.capacity.memory_mib as f64,
        ))
    }

    fn has_image(&self, image: &str) -> bool {
        let bare = image.strip_suffix(":latest").unwrap_or(image);
        self.images
            .iter()
            .any(|i| i == image || i.strip_suffix(":latest") == Some(bare) || i == bare)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    LeastLoaded,
    MostLoaded,
}

impl Strategy {
    pub fn parse(s: &str) -> Strategy {
        match s {
            "most_loaded" => Strategy::MostLoaded,
            _ => Strategy::LeastLoaded,
        }
    }
}

/// A zone's placement rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneRule {
    pub id: String,
    pub name: String,
    pub search_alternate_zones: bool,
    pub strategy: Strategy,
}

/// What a session needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub resources: Resources,
    pub image: String,
    /// The zone to place in (the user's pick, else the workspace's); `None`: any zone.
    pub zone: Option<String>,
    /// The user picked the zone: never widen to others.
    pub user_picked_zone: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub agent_id: String,
    pub zone: String,
    pub chosen: bool,
    /// Empty when the agent could host the session.
    pub rejected_because: String,
    pub free: Resources,
    pub has_image: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub chosen: Option<String>,
    pub verdicts: Vec<Verdict>,
}

impl Placement {
    /// One sentence: the choice, or why nothing fits with each agent's reason.
    pub fn summary(&self) -> String {
        match &self.chosen {
            Some(id) => format!("placed on agent {id}"),
            None if self.verdicts.is_empty() => {
                "no agent can host it: no agent is alive (none has sent a heartbeat)".into()
            }
            None => {
                let reasons: Vec<String> = self
                    .verdicts
                    .iter()
                    .map(|v| format!("{}: {}", v.agent_id, v.rejected_because))
                    .collect();
                format!("no agent can host it: {}", reasons.join("; "))
            }
        }
    }
}

fn fits(c: &Candidate, need: &Need) -> Option<String> {
    match c.health {
        AgentHealth::Active => {}
        AgentHealth::Draining => return Some("draining".into()),
        AgentHealth::Unhealthy => {
            return Some(if c.reason.is_empty() {
                "unhealthy".into()
            } else {
                format!("unhealthy ({})", c.reason)
            });
        }
    }
    let free = c.free();
    let mut short = Vec::new();
    if need.resources.gpus > 0 && c.capacity.gpus == 0 {
        short.push(format!("no GPUs ({} needed)", need.resources.gpus));
    } else if need.resources.gpus > free.gpus {
        short.push(format!(
            "{} GPU(s) free, {} needed",
            free.gpus, need.resources.gpus
        ));
    }
    if need.resources.cores > free.cores + 1e-9 {
        short.push(format!(
            "{} core(s) free of {}, {} needed",
            round(free.cores),
            round(c.capacity.cores),
            round(need.resources.cores)
        ));
    }
    if need.resources.memory_mib > free.memory_mib {
        short.push(format!(
            "{} MiB free of {}, {} needed",
            free.memory_mib, c.capacity.memory_mib, need.resources.memory_mib
        ));
    }
    (!short.is_empty()).then(|| short.join(", "))
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn in_zone(c: &Candidate, zone: &str, rules: &HashMap<String, ZoneRule>) -> bool {
    if c.zone == zone {
        return true;
    }
    // Agents name their zone by name or id; workspaces and users by id.
    rules
        .get(zone)
        .is_some_and(|r| c.zone == r.name || c.zone == r.id)
}

/// Chooses an agent for `need` among `candidates`, with a verdict for every one.
/// `zones` maps zone ids and names to their rules.
pub fn place(
    candidates: &[Candidate],
    need: &Need,
    zones: &HashMap<String, ZoneRule>,
) -> Placement {
    let rule = need.zone.as_ref().and_then(|z| zones.get(z));
    let strategy = rule.map(|r| r.strategy).unwrap_or_default();
    let widen = rule.is_some_and(|r| r.search_alternate_zones) && !need.user_picked_zone;

    let mut verdicts: Vec<Verdict> = Vec::with_capacity(candidates.len());
    // (index into verdicts, in the preferred zone)
    let mut eligible: Vec<(usize, bool)> = Vec::new();
    for c in candidates {
        let home = need.zone.as_deref().is_none_or(|z| in_zone(c, z, zones));
        let mut rejected = fits(c, need).unwrap_or_default();
        if rejected.is_empty() && !home && !widen {
            let zone = need.zone.as_deref().unwrap_or_default();
            rejected = if need.user_picked_zone {
                format!("in zone {:?}; the user picked zone {zone:?}", c.zone)
            } else {
                format!(
                    "in zone {:?}, not {zone:?} (the zone does not search alternate zones)",
                    c.zone
                )
            };
        }
        if rejected.is_empty() {
            eligible.push((verdicts.len(), home));
        }
        verdicts.push(Verdict {
            agent_id: c.agent_id.clone(),
            zone: c.zone.clone(),
            chosen: false,
            rejected_because: rejected,
            free: c.free(),
            has_image: c.has_image(&need.image),
        });
    }
    let pool: Vec<usize> = if eligible.iter().any(|(_, home)| *home) {
        eligible
            .iter()
            .filter(|(_, home)| *home)
            .map(|(i, _)| *i)
            .collect()
    } else {
        eligible.iter().map(|(i, _)| *i).collect()
    };
    let best = pool.into_iter().min_by(|&a, &b| {
        let (ca, cb) = (&candidates[a], &candidates[b]);
        let (la, lb) = (ca.load(need), cb.load(need));
        let by_load = match strategy {
            Strategy::LeastLoaded => la.total_cmp(&lb),
            Strategy::MostLoaded => lb.total_cmp(&la),
        };
        verdicts[b]
            .has_image
            .cmp(&verdicts[a].has_image)
            .then(by_load)
            .then_with(|| ca.agent_id.cmp(&cb.agent_id))
    });
    // Agents outside the zone that lost only to the zone rule say so.
    if let Some(i) = best {
        verdicts[i].chosen = true;
        let chosen_home = eligible.iter().any(|(j, home)| *j == i && *home);
        for (j, home) in &eligible {
            if *j != i && !verdicts[*j].chosen {
                verdicts[*j].rejected_because = if chosen_home && !home {
                    "outside the requested zone, which has room".into()
                } else {
                    format!("another agent was preferred ({strategy:?}, image present first)")
                };
            }
        }
    } else {
        for (j, _) in &eligible {
            verdicts[*j].rejected_because = "not chosen".into();
        }
    }
    Placement {
        chosen: best.map(|i| verdicts[i].agent_id.clone()),
        verdicts,
    }
}

#[cfg(test)]
mod tests {
    use super::Strategy;
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use proptest::strategy::Strategy as _;

    fn agent(id: &str, zone: &str, cores: f64, reserved: f64) -> Candidate {
        Candidate {
            agent_id: id.into(),
            zone: zone.into(),
            health: AgentHealth::Active,
            reason: String::new(),
            capacity: Resources {
                cores,
                memory_mib: 8192,
                gpus: 0,
            },
            reserved: Resources {
                cores: reserved,
                memory_mib: 0,
                gpus: 0,
            },
            images: vec![],
        }
    }

    fn need(cores: f64) -> Need {
        Need {
            resources: Resources {
                cores,
                memory_mib: 512,
                gpus: 0,
            },
            image: "atrium/demo:latest".into(),
            zone: None,
            user_picked_zone: false,
        }
    }

    fn zones(search_alternates: bool, strategy: Strategy) -> HashMap<String, ZoneRule> {
        let rule = |id: &str, name: &str| ZoneRule {
            id: id.into(),
            name: name.into(),
            search_alternate_zones: search_alternates,
            strategy,
        };
        HashMap::from([
            ("z1".into(), rule("z1", "east")),
            ("z2".into(), rule("z2", "west")),
        ])
    }

    #[test]
    fn least_loaded_by_default_and_packing_on_request() {
        let agents = [agent("a", "east", 4.0, 3.0), agent("b", "east", 4.0, 1.0)];
        let p = place(&agents, &need(1.0), &HashMap::new());
        assert_eq!(p.chosen.as_deref(), Some("b"));
        let mut n = need(1.0);
        n.zone = Some("z1".into());
        let p = place(&agents, &n, &zones(false, Strategy::MostLoaded));
        assert_eq!(p.chosen.as_deref(), Some("a"));
    }

    #[test]
    fn the_image_on_the_node_beats_load() {
        let mut agents = [agent("a", "east", 4.0, 3.0), agent("b", "east", 4.0, 0.0)];
        agents[0].images = vec!["atrium/demo:latest".into()];
        let p = place(&agents, &need(1.0), &HashMap::new());
        assert_eq!(p.chosen.as_deref(), Some("a"));
    }

    #[test]
    fn nothing_fits_says_why_for_each_agent() {
        let mut agents = vec![
            agent("full", "east", 2.0, 2.0),
            agent("drain", "east", 8.0, 0.0),
            agent("sick", "east", 8.0, 0.0),
        ];
        agents[1].health = AgentHealth::Draining;
        agents[2].health = AgentHealth::Unhealthy;
        agents[2].reason = "docker unreachable".into();
        let p = place(&agents, &need(1.0), &HashMap::new());
        assert_eq!(p.chosen, None);
        let summary = p.summary();
        assert!(summary.contains("full: 0 core(s) free of 2"), "{summary}");
        assert!(summary.contains("drain: draining"), "{summary}");
        assert!(
            summary.contains("sick: unhealthy (docker unreachable)"),
            "{summary}"
        );
        assert!(
            place(&[], &need(1.0), &HashMap::new())
                .summary()
                .contains("no agent is alive")
        );
    }

    #[test]
    fn zones_widen_only_when_allowed_and_not_picked() {
        let agents = [agent("w", "west", 4.0, 0.0), agent("e", "east", 1.0, 1.0)];
        let mut n = need(1.0);
        n.zone = Some("z1".into());
        // East is full; it may not widen.
        assert_eq!(
            place(&agents, &n, &zones(false, Strategy::LeastLoaded)).chosen,
            None
        );
        // It may widen.
        assert_eq!(
            place(&agents, &n, &zones(true, Strategy::LeastLoaded))
                .chosen
                .as_deref(),
            Some("w")
        );
        // The user picked east: never widened.
        n.user_picked_zone = true;
        let p = place(&agents, &n, &zones(true, Strategy::LeastLoaded));
        assert_eq!(p.chosen, None);
        assert!(
            p.summary().contains("the user picked zone"),
            "{}",
            p.summary()
        );
    }

    #[test]
    fn gpus_are_counted() {
        let mut a = agent("g", "east", 8.0, 0.0);
        let mut n = need(1.0);
        n.resources.gpus = 1;
        let p = place(std::slice::from_ref(&a), &n, &HashMap::new());
        assert!(p.summary().contains("no GPUs"), "{}", p.summary());
        a.capacity.gpus = 1;
        a.reserved.gpus = 1;
        let p = place(std::slice::from_ref(&a), &n, &HashMap::new());
        assert!(p.summary().contains("0 GPU(s) free"), "{}", p.summary());
    }

    fn candidates() -> impl proptest::strategy::Strategy<Value = Vec<Candidate>> {
        proptest::collection::vec(
            (
                0u8..3,
                0u8..3,
                1u32..16,
                0u32..16,
                0i64..8192,
                proptest::bool::ANY,
            ),
            0..12,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (zone, health, cap, used, mem_used, img))| Candidate {
                    agent_id: format!("agent-{i:02}"),
                    zone: ["east", "west", "north"][zone as usize].into(),
                    health: [
                        AgentHealth::Active,
                        AgentHealth::Draining,
                        AgentHealth::Unhealthy,
                    ][health as usize % 3],
                    reason: String::new(),
                    capacity: Resources {
                        cores: f64::from(cap),
                        memory_mib: 8192,
                        gpus: 0,
                    },
                    reserved: Resources {
                        cores: f64::from(used.min(cap)),
                        memory_mib: mem_used,
                        gpus: 0,
                    },
                    images: if img {
                        vec!["atrium/demo:latest".into()]
                    } else {
                        vec![]
                    },
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn choices_are_sound(
            agents in candidates(),
            cores in 1u32..6,
            zone in proptest::option::of(0u8..2),
            picked in proptest::bool::ANY,
            widen in proptest::bool::ANY,
            packing in proptest::bool::ANY,
        ) {
            let strategy = if packing { Strategy::MostLoaded } else { Strategy::LeastLoaded };
            let rules = zones(widen, strategy);
            let n = Need {
                resources: Resources { cores: f64::from(cores), memory_mib: 256, gpus: 0 },
                image: "atrium/demo:latest".into(),
                zone: zone.map(|z| ["z1", "z2"][z as usize].to_string()),
                user_picked_zone: picked,
            };
            let p = place(&agents, &n, &rules);
            prop_assert_eq!(p.verdicts.len(), agents.len());
            let fitting: Vec<&Candidate> = agents.iter().filter(|c| fits(c, &n).is_none()).collect();
            let home = |c: &Candidate| n.zone.as_deref().is_none_or(|z| in_zone(c, z, &rules));
            match &p.chosen {
                Some(id) => {
                    let c = agents.iter().find(|c| &c.agent_id == id).expect("chosen exists");
                    // It fits and is active.
                    prop_assert!(fits(c, &n).is_none());
                    prop_assert_eq!(c.health, AgentHealth::Active);
                    // The zone first; outside it only when allowed.
                    if fitting.iter().any(|f| home(f)) { prop_assert!(home(c)); }
                    if !home(c) { prop_assert!(widen && !picked); }
                    // The image first, among the pool it came from.
                    let pool: Vec<&&Candidate> = fitting.iter().filter(|f| home(f) == home(c)).collect();
                    if pool.iter().any(|f| f.has_image(&n.image)) { prop_assert!(c.has_image(&n.image)); }
                    // Exactly one verdict is chosen, and every other has a reason.
                    prop_assert_eq!(p.verdicts.iter().filter(|v| v.chosen).count(), 1);
                    prop_assert!(p.verdicts.iter().all(|v| v.chosen || !v.rejected_because.is_empty()));
                }
                None => {
                    // Nothing fits where it may go.
                    let allowed = |c: &&Candidate| home(c) || (widen && !picked);
                    prop_assert!(!fitting.iter().any(allowed));
                    prop_assert!(p.verdicts.iter().all(|v| !v.rejected_because.is_empty()));
                }
            }
        }
    }
}
