//! Login latency with the chosen argon2id parameters, against a bare argon2id verification in
//! the same run: how much a login costs on top of the hash it cannot avoid.
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
    let identity = TestIdentity::start(Backend::Sqlite)
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
}
