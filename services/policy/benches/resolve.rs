//! Effective-policy resolution: a user in 20 groups, each setting 48 settings.
//!
//! `cargo bench -p atrium-policy --bench resolve`
//!
//! 1. In-process, alternating: uncached resolution (3 queries + resolution) against the cached
//!    path, same user, same run → the cache speed-up (goal ≥ 20×).
//! 2. Over gRPC on loopback, closed loop (each caller calls again as soon as its reply arrives):
//!    the no-op baseline (the same server's health `Check`, 50 callers), then
//!    `ResolveEffectivePolicy` with one caller (latency without queueing) and with 50 callers →
//!    p50/p99 latency and throughput (goal p99 ≤ 1 ms), and throughput as a ratio of the no-op's.
//! 3. `ResolveEffectivePolicy` with 50 callers paced at a quarter and at half of the closed-loop
//!    throughput: latency below saturation.
//!
//! The benchmark links the allocator the service binaries use (mimalloc).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_policy::settings::{self, SettingType, Value};
use atrium_policy::testing::TestPolicy;
use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::Credential;
use atrium_service_kit::testing::Backend;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GROUPS: usize = 20;
const SETTINGS_PER_GROUP: usize = 48;
const CALLERS: usize = 50;
/// The callers share two HTTP/2 connections, as two client replicas would, each multiplexing its
/// concurrent calls over one tonic channel.
const CONNECTIONS: usize = 2;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURED: Duration = Duration::from_secs(8);

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

/// A user in 20 groups of 48 settings each, made through the API by an administrator.
async fn setup(policy: &TestPolicy) -> String {
    let (_, mut admin) = policy.new_user(true).await.unwrap();
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
    user_id
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let policy = TestPolicy::start(Backend::Sqlite).await.unwrap();
    let user_id = setup(&policy).await;
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

    grpc(&policy, &user_id).await;
    transport(&policy, &user_id).await;
}

/// One call in flight.
type Call = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Caller `i` of a closed loop: `ResolveEffectivePolicy` with `credential` on connection
/// `i % CONNECTIONS`, checking the answer is whole.
fn resolver(
    channels: &[tonic::transport::Channel],
    credential: Credential,
) -> impl Fn(usize) -> Box<dyn FnMut() -> Call + Send> {
    let channels = channels.to_vec();
    move |i: usize| {
        let client =
            TestPolicy::client_on(channels[i % CONNECTIONS].clone(), Some(&credential)).unwrap();
        Box::new(move || {
            let mut client = client.clone();
            Box::pin(async move {
                let reply = client
                    .resolve_effective_policy(pb::ResolveEffectivePolicyRequest::default())
                    .await
                    .unwrap();
                assert_eq!(
                    reply.into_inner().settings.len(),
                    settings::catalogue().len()
                );
            })
        })
    }
}

/// 4. The same 50-caller closed loop over mutual TLS (the callers' connections present a
///    service certificate) and over plaintext (a second server with `tls.insecure_plaintext`,
///    same data), alternating, three rounds each → throughput ratio (goal ≥ 0.9).
async fn transport(tls_policy: &TestPolicy, tls_user: &str) {
    // The plaintext server gets a copy of the TLS server's database (with TLS off there are no
    // service identities to set one up through the API), and the same test signing key: the
    // same user, groups and token work on both.
    let copy = tempfile::tempdir().unwrap();
    let source = tls_policy
        .database_url()
        .strip_prefix("sqlite://")
        .unwrap()
        .to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let from = format!("{source}{suffix}");
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, copy.path().join(format!("test.db{suffix}"))).unwrap();
        }
    }
    let copied = format!("sqlite://{}/test.db", copy.path().display());
    let plain_policy = TestPolicy::start_with(Backend::Sqlite, |c| {
        c.tls = atrium_service_kit::tls::TlsConfig {
            insecure_plaintext: true,
            ..Default::default()
        };
        // Never answers; with TLS off, identity is dialled in plaintext too.
        c.identity_endpoint = "http://127.0.0.1:9".into();
        c.database_url = copied;
    })
    .await
    .unwrap();
    let plain_user = tls_user;
    let mut tls_channels = Vec::new();
    let mut plain_channels = Vec::new();
    for _ in 0..CONNECTIONS {
        tls_channels.push(
            atrium_service_kit::testing::dialer_as(atrium_service_kit::auth::ServiceId::Identity)
                .connect(&tls_policy.endpoint())
                .await
                .unwrap(),
        );
        plain_channels.push(plain_policy.channel().await.unwrap());
    }
    let over_tls = resolver(
        &tls_channels,
        Credential::Bearer(tls_policy.token_for(tls_user)),
    );
    let over_plain = resolver(
        &plain_channels,
        Credential::Bearer(plain_policy.token_for(plain_user)),
    );
    let (mut tls_total, mut plain_total) = (0.0, 0.0);
    for _ in 0..3 {
        plain_total += run("Resolve, plaintext     ", CALLERS, None, &over_plain).await;
        tls_total += run("Resolve, mutual TLS    ", CALLERS, None, &over_tls).await;
    }
    println!(
        "ResolveEffectivePolicy over mutual TLS / plaintext = {:.3} (throughput, {CALLERS} callers; goal >= 0.9)",
        tls_total / plain_total
    );
}

async fn grpc(policy: &TestPolicy, user_id: &str) {
    // 2. Over gRPC, closed loop: the no-op baseline, one caller, then 50 callers.
    let token = policy.token_for(user_id);
    let credential = Credential::Bearer(token);
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(policy.channel().await.unwrap());
    }
    let resolve = resolver(&channels, credential);
    let noop = |i: usize| {
        let client = HealthClient::new(channels[i % CONNECTIONS].clone());
        move || {
            let mut client = client.clone();
            async move {
                let reply = client.check(HealthCheckRequest::default()).await.unwrap();
                assert_eq!(reply.into_inner().status, ServingStatus::Serving as i32);
            }
        }
    };
    let floor = run("health Check (no-op)   ", CALLERS, None, noop).await;
    run("ResolveEffectivePolicy ", 1, None, &resolve).await;
    let saturated = run("ResolveEffectivePolicy ", CALLERS, None, &resolve).await;
    println!(
        "ResolveEffectivePolicy calls/s = {:.2} of the no-op call's, {CALLERS} callers",
        saturated / floor
    );

    // 3. Paced: 50 callers at a fixed offered load below saturation.
    for share in [0.25, 0.5] {
        run(
            "ResolveEffectivePolicy ",
            CALLERS,
            Some(saturated * share),
            &resolve,
        )
        .await;
    }
}

/// `callers` tasks calling for 8 s after 1 s of warm-up; prints and returns calls/s.
///
/// `offered: None` is a closed loop (each caller calls again as soon as a reply arrives). With
/// `Some(calls/s)`, caller `i` has call `k` scheduled at `i·T/n + k·T` (`T = n / offered`) and
/// its latency counts from that scheduled instant, so a late reply also charges the calls queued
/// behind it (no coordinated omission).
async fn run<F, G, Fut>(label: &str, callers: usize, offered: Option<f64>, caller: F) -> f64
where
    F: Fn(usize) -> G,
    G: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let begin = Instant::now() + Duration::from_millis(100);
    let (warm_up, deadline) = (begin + WARM_UP, begin + WARM_UP + MEASURED);
    let period = offered.map(|rate| Duration::from_secs_f64(callers as f64 / rate));
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let mut call = caller(i);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut next =
                    begin + period.map_or(Duration::ZERO, |p| p * i as u32 / callers as u32);
                loop {
                    // Ahead of schedule, a caller waits and its latency counts from when it
                    // actually starts (the timer wheel's 1 ms granularity is not the service's);
                    // behind schedule, it counts from the scheduled instant.
                    let start = if period.is_some() && next > Instant::now() {
                        tokio::time::sleep_until(next.into()).await;
                        Instant::now()
                    } else if period.is_some() {
                        next
                    } else {
                        next = Instant::now();
                        next
                    };
                    if next >= deadline {
                        return samples;
                    }
                    call().await;
                    if next >= warm_up {
                        samples.push(start.elapsed());
                    }
                    if let Some(period) = period {
                        next += period;
                    }
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    samples.sort();
    let rate = samples.len() as f64 / MEASURED.as_secs_f64();
    let load = offered.map_or("closed loop".to_owned(), |r| format!("paced at {r:.0}/s"));
    println!(
        "{label} {callers:>2} caller(s), {load:<17}: {rate:>6.0} calls/s, p50 {:.3} ms, p99 {:.3} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
    );
    rate
}
