//! Login latency with the chosen argon2id parameters, against a bare argon2id verification in
//! the same run: how much a login costs on top of the hash it cannot avoid. Then the same
//! user's login while 200 concurrent attackers (from another loopback address, 127.0.0.2)
//! hammer other accounts with wrong passwords: its p99 against its idle p50 (goal ≤ 3×). The
//! attack runs for 5 s before measuring (steady state: the per-source limit has engaged).
//!
//! `cargo bench -p atrium-identity --bench login` (SQLite; a real server on loopback).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_identity::password;
use atrium_identity::testing::{ADMIN_PASSWORD, TestIdentity};
use atrium_proto::identity::v1::LoginRequest;
use atrium_service_kit::testing::Backend;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    const N: usize = 40;
    let identity = TestIdentity::start_with(Backend::Sqlite, |c| {
        // The measured user logs in about 120 times; attackers stay under the defaults.
        c.login_attempts_per_account_per_minute = 1_000;
        // The production default (the test servers switch the per-source limit off).
        c.login_attempts_per_source_per_minute = 120;
    })
    .await
    .expect("start identity");
    let mut client = identity.anonymous().await.expect("client");
    let hash = password::hash(ADMIN_PASSWORD.to_owned()).await.unwrap();

    let mut bare = Vec::with_capacity(N);
    let mut login = Vec::with_capacity(N);
    // Alternate the two so that machine noise hits both alike.
    for _ in 0..N {
        let start = Instant::now();
        assert!(
            password::verify(ADMIN_PASSWORD.to_owned(), hash.clone())
                .await
                .unwrap()
        );
        bare.push(start.elapsed());

        let start = Instant::now();
        let response = client
            .login(LoginRequest {
                username: "admin".into(),
                password: ADMIN_PASSWORD.into(),
                ..Default::default()
            })
            .await
            .expect("login")
            .into_inner();
        login.push(start.elapsed());
        assert!(!response.refresh_token.is_empty());
    }
    let (bare50, bare99) = (percentile(&mut bare, 0.5), percentile(&mut bare, 0.99));
    let (login50, login99) = (percentile(&mut login, 0.5), percentile(&mut login, 0.99));
    println!(
        "argon2id m={} KiB t={} p={}",
        password::MEMORY_KIB,
        password::PASSES,
        password::LANES
    );
    println!(
        "bare argon2id verify      p50 {:7.2} ms  p99 {:7.2} ms",
        ms(bare50),
        ms(bare99)
    );
    println!(
        "Login over gRPC (SQLite)  p50 {:7.2} ms  p99 {:7.2} ms",
        ms(login50),
        ms(login99)
    );
    println!(
        "ratio login/argon2 p50 = {:.2}",
        login50.as_secs_f64() / bare50.as_secs_f64()
    );
    // Baseline for the attack: the same 200 clients from the same address, as fast as they
    // can, but calling health Check (no work in identity): what the flood's mere traffic costs
    // a login on this machine, where attackers and server share two cores.
    under_attack(&identity, login50, false).await;
    under_attack(&identity, login50, true).await;
}

const ATTACKERS: usize = 200;

async fn login_once(
    client: &mut atrium_proto::identity::v1::identity_service_client::IdentityServiceClient<
        tonic::transport::Channel,
    >,
) -> Duration {
    let start = Instant::now();
    client
        .login(LoginRequest {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
            ..Default::default()
        })
        .await
        .expect("the legitimate login");
    start.elapsed()
}

async fn under_attack(identity: &TestIdentity, idle50: Duration, logins: bool) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let attacker = atrium_service_kit::testing::user_dialer()
        .from_source(std::net::IpAddr::from([127, 0, 0, 2]));
    let stop = Arc::new(AtomicBool::new(false));
    let (tried, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for i in 0..ATTACKERS {
        let channel = attacker
            .connect(&identity.endpoint())
            .await
            .expect("attacker");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let mut c = atrium_proto::identity::v1::identity_service_client::IdentityServiceClient::new(
            channel,
        );
        let (stop, tried, refused) = (stop.clone(), tried.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if !logins {
                    let _ = health
                        .check(tonic_health::pb::HealthCheckRequest::default())
                        .await;
                    tried.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let answer = c
                    .login(LoginRequest {
                        username: format!("victim-{i}"),
                        password: "guess".into(),
                        ..Default::default()
                    })
                    .await;
                tried.fetch_add(1, Ordering::Relaxed);
                if answer.is_err_and(|s| s.code() == tonic::Code::ResourceExhausted) {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // The legitimate user comes from an address of its own (each phase a fresh one, so its
    // ~80 logins stay under the per-source limit of 120 a minute).
    let own = std::net::IpAddr::from([127, 0, 0, if logins { 4 } else { 3 }]);
    let channel = atrium_service_kit::testing::user_dialer()
        .from_source(own)
        .connect(&identity.endpoint())
        .await
        .expect("legitimate client");
    let mut client =
        atrium_proto::identity::v1::identity_service_client::IdentityServiceClient::new(channel);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut samples = Vec::with_capacity(80);
    let start = Instant::now();
    while samples.len() < 80 && start.elapsed() < Duration::from_secs(60) {
        samples.push(login_once(&mut client).await);
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let (p50, p99) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    );
    let what = if logins {
        "wrong-password logins"
    } else {
        "health Checks (baseline)"
    };
    println!(
        "{ATTACKERS} clients from 127.0.0.2 sending {what}: {} calls, {} refused by the rate limit",
        tried.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    println!(
        "Login meanwhile           p50 {:7.2} ms  p99 {:7.2} ms",
        ms(p50),
        ms(p99)
    );
    println!(
        "ratio p99 meanwhile / idle p50 = {:.2}{}",
        p99.as_secs_f64() / idle50.as_secs_f64(),
        if logins { " (goal <= 3)" } else { "" }
    );
}
