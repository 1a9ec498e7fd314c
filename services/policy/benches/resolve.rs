//! Effective-policy resolution: a user in 20 groups, each setting 48 settings.
//!
//! `cargo bench -p atrium-policy --bench resolve`
//!
//! 1. In-process, alternating: uncached resolution (3 queries + resolution) against the cached
//!    path, same user, same run → the cache speed-up (goal ≥ 20×).
//! 2. `ResolveEffectivePolicy` over gRPC on loopback with 50 concurrent callers, each calling in a
//!    loop for a fixed time → p50/p99 latency and throughput (goal p99 ≤ 1 ms); first with one
//!    caller, which shows the per-call latency without queueing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_policy::settings::{self, SettingType, Value};
use atrium_policy::testing::TestPolicy;
use atrium_proto::policy::v1 as pb;
use atrium_service_kit::testing::Backend;

const GROUPS: usize = 20;
const SETTINGS_PER_GROUP: usize = 48;
const CALLERS: usize = 50;

/// 48 catalogued settings with simple valid values.
fn sample_settings() -> Vec<(&'static str, Value)> {
    settings::catalogue()
        .iter()
        .filter_map(|d| match d.ty {
            SettingType::Bool => Some((d.name, Value::Bool(true))),
            SettingType::Int { min, .. } => Some((d.name, Value::Int(min.max(1)))),
            SettingType::Float { min, .. } => Some((d.name, Value::Float(min.max(1.0)))),
            _ => None,
        })
        .take(SETTINGS_PER_GROUP)
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let policy = TestPolicy::start(Backend::Sqlite).await.unwrap();
    let mut admin = policy.service().await.unwrap();
    let (user_id, _) = policy.new_user(false).await.unwrap();
    let values = sample_settings();
    assert_eq!(
        values.len(),
        SETTINGS_PER_GROUP,
        "the catalogue has too few simple settings"
    );
    for g in 0..GROUPS {
        let group = admin
            .create_group(pb::CreateGroupRequest {
                name: format!("bench-{g}"),
                description: String::new(),
                priority: 10 + g as i32,
            })
            .await
            .unwrap()
            .into_inner();
        for (name, value) in &values {
            admin
                .set_group_setting(pb::SetGroupSettingRequest {
                    group_id: group.id.clone(),
                    name: (*name).to_owned(),
                    raw_value: value.to_string(),
                    value: None,
                })
                .await
                .unwrap();
        }
        admin
            .add_group_member(pb::GroupMemberRequest {
                group_id: group.id,
                user_id: user_id.clone(),
            })
            .await
            .unwrap();
    }
    let core = policy.core.clone();
    let resolved = core.resolve_uncached(&user_id).await.unwrap();
    assert_eq!(
        resolved.groups.len(),
        GROUPS + 1,
        "20 groups plus All Users"
    );

    // 1. Cached against uncached, alternating batches.
    let (mut uncached, mut cached, mut n_u, mut n_c) = (Duration::ZERO, Duration::ZERO, 0u32, 0u32);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(core.resolve_uncached(&user_id).await.unwrap());
        }
        uncached += t.elapsed();
        n_u += 20;
        let t = Instant::now();
        for _ in 0..2000 {
            std::hint::black_box(core.user_policy(&user_id).await.unwrap());
        }
        cached += t.elapsed();
        n_c += 2000;
    }
    let (u, c) = (uncached / n_u, cached / n_c);
    println!(
        "uncached resolution (SQLite, 3 queries)  {:>9.1} µs",
        u.as_secs_f64() * 1e6
    );
    println!(
        "cached resolution                        {:>9.2} µs",
        c.as_secs_f64() * 1e6
    );
    println!(
        "cache speed-up = {:.0}x (goal >= 20x)",
        u.as_secs_f64() / c.as_secs_f64()
    );

    // 2. Over gRPC: one caller (latency without queueing), then 50 concurrent callers.
    let token = policy.token_for(&user_id);
    for (callers, secs) in [(1usize, 3u64), (CALLERS, 10)] {
        let mut tasks = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        for _ in 0..callers {
            let credential = atrium_service_kit::auth::Credential::Bearer(token.clone());
            let mut client = policy.client(Some(credential)).await.unwrap();
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let reply = client
                        .resolve_effective_policy(pb::ResolveEffectivePolicyRequest::default())
                        .await
                        .unwrap();
                    samples.push(t.elapsed());
                    assert!(!reply.into_inner().settings.is_empty());
                }
                samples
            }));
        }
        let started = Instant::now();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let elapsed = started.elapsed();
        all.sort();
        println!(
            "gRPC ResolveEffectivePolicy, {callers:>2} caller(s): {} calls, {:.0} calls/s, p50 {:.3} ms, p99 {:.3} ms",
            all.len(),
            all.len() as f64 / elapsed.as_secs_f64(),
            percentile(&all, 0.5).as_secs_f64() * 1e3,
            percentile(&all, 0.99).as_secs_f64() * 1e3,
        );
    }
}
