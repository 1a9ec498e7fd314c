//! Placement over 1,000 simulated agents (labelled as such: heartbeats made up here, no agent
//! runs). Measures `place` per call, p50/p99 over 20,000 calls with a different session need
//! each time, against a baseline in the same run: one pass over the same candidates summing
//! their free cores (the least any placement must do).
//!
//!   cargo bench -p atrium-session-manager --bench placement

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use atrium_session_manager::placement::{
    AgentHealth, Candidate, Need, Resources, Strategy, ZoneRule, place,
};

const AGENTS: usize = 1000;
const CALLS: usize = 20_000;

fn agents() -> Vec<Candidate> {
    (0..AGENTS)
        .map(|i| Candidate {
            agent_id: format!("sim-agent-{i:04}"),
            zone: ["east", "west", "north", "south"][i % 4].into(),
            health: if i % 97 == 0 {
                AgentHealth::Draining
            } else {
                AgentHealth::Active
            },
            reason: String::new(),
            capacity: Resources {
                cores: 32.0,
                memory_mib: 131_072,
                gpus: (i % 8 == 0) as u32,
            },
            reserved: Resources {
                cores: (i % 33) as f64,
                memory_mib: ((i * 977) % 131_072) as i64,
                gpus: 0,
            },
            images: if i % 3 == 0 {
                vec!["atrium/workspace-demo:latest".into()]
            } else {
                vec![]
            },
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let agents = agents();
    let zones: HashMap<String, ZoneRule> = ["east", "west", "north", "south"]
        .iter()
        .map(|z| {
            (
                (*z).to_string(),
                ZoneRule {
                    id: (*z).into(),
                    name: (*z).into(),
                    search_alternate_zones: true,
                    strategy: Strategy::LeastLoaded,
                },
            )
        })
        .collect();
    let needs: Vec<Need> = (0..CALLS)
        .map(|i| Need {
            resources: Resources {
                cores: 1.0 + (i % 4) as f64,
                memory_mib: 2048,
                gpus: 0,
            },
            image: "atrium/workspace-demo:latest".into(),
            zone: Some(["east", "west", "north", "south"][i % 4].into()),
            user_picked_zone: i % 5 == 0,
        })
        .collect();
    let mut place_times = Vec::with_capacity(CALLS);
    let mut base_times = Vec::with_capacity(CALLS);
    for need in &needs {
        let t = Instant::now();
        let total: f64 = agents.iter().map(|a| a.free().cores).sum();
        black_box(total >= need.resources.cores);
        base_times.push(t.elapsed());
        let t = Instant::now();
        black_box(place(&agents, need, &zones));
        place_times.push(t.elapsed());
    }
    place_times.sort();
    base_times.sort();
    let (p50, p99) = (
        percentile(&place_times, 0.5),
        percentile(&place_times, 0.99),
    );
    let (b50, b99) = (percentile(&base_times, 0.5), percentile(&base_times, 0.99));
    println!("placement over {AGENTS} simulated agents, {CALLS} calls:");
    println!("  place():   p50 {p50:?}  p99 {p99:?}");
    println!("  baseline (sum free cores once): p50 {b50:?}  p99 {b99:?}");
    println!(
        "  p99 ratio place/baseline: {:.1}   target p99 ≤ 1 ms: {}",
        p99.as_secs_f64() / b99.as_secs_f64().max(1e-9),
        if p99 <= Duration::from_millis(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}
