//! Revocation latency: from `UpdateUser{locked}` at identity to the first call policy refuses
//! with the locked user's token. Policy verifies tokens itself; the refusal comes from identity's
//! `WatchRevocations` stream. Identity and policy on SQLite, mutual TLS on loopback.
//!
//! `cargo bench -p atrium-integration-tests --bench revocation`
//!
//! Baseline in the same run: one accepted `ResolveEffectivePolicy` call (the probe's own cost),
//! so the figure reads as "lock takes effect after N probe round trips". Goal: p99 ≤ 5 s
//! (target ≤ 1 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_integration_tests::{Role, Sandbox};
use atrium_launcher::LaunchConfig;
use atrium_proto::identity::v1 as id;
use atrium_proto::policy::v1 as pol;
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_service_kit::auth::Credential;
use atrium_service_kit::telemetry::OutgoingInterceptor;

const ROUNDS: usize = 30;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn login(sandbox: &Sandbox, username: &str, password: &str) -> String {
    sandbox
        .identity_anonymous()
        .await
        .unwrap()
        .login(id::LoginRequest {
            username: username.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Identity and policy on SQLite; policy fetches identity's keys over gRPC and follows its
    // revocation feed, as when it runs alone.
    let sandbox = Sandbox::builder(&[Role::Identity, Role::Policy])
        .sqlite()
        .configure(|config| {
            LaunchConfig {
                share_verification_keys: false,
                ..config
            }
            // One login per round; the default per-account limit would throttle the benchmark.
            .tune_identity(|c| c.login_attempts_per_account_per_minute = 600)
        })
        .start()
        .await
        .unwrap();
    let channel = sandbox
        .running()
        .user_dialer()
        .unwrap()
        .connect(&sandbox.endpoint(Role::Policy).unwrap())
        .await
        .unwrap();

    let mut admin = sandbox.identity_as_admin().await.unwrap();
    let user = admin
        .create_user(id::CreateUserRequest {
            username: "carol".into(),
            password: "carol-password-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let (mut probes, mut latencies) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let token = login(&sandbox, "carol", "carol-password-1").await;
        let mut client = PolicyServiceClient::with_interceptor(
            channel.clone(),
            OutgoingInterceptor::new(Some(&Credential::Bearer(token))).unwrap(),
        );
        for _ in 0..5 {
            let t = Instant::now();
            client
                .resolve_effective_policy(pol::ResolveEffectivePolicyRequest::default())
                .await
                .unwrap();
            probes.push(t.elapsed());
        }
        let start = Instant::now();
        admin
            .update_user(id::UpdateUserRequest {
                user_id: user.id.clone(),
                locked: Some(true),
                ..Default::default()
            })
            .await
            .unwrap();
        loop {
            let refused = client
                .resolve_effective_policy(pol::ResolveEffectivePolicyRequest::default())
                .await
                .is_err_and(|s| s.code() == tonic::Code::Unauthenticated);
            if refused {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never refused");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(start.elapsed());
        admin
            .update_user(id::UpdateUserRequest {
                user_id: user.id.clone(),
                locked: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    probes.sort();
    latencies.sort();
    let probe = percentile(&probes, 0.5);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "probe (accepted ResolveEffectivePolicy) p50 {:.2} ms",
        probe.as_secs_f64() * 1e3
    );
    println!(
        "lock -> first refusal at policy, {ROUNDS} rounds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 5 s, target <= 1 s)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "p99 = {:.1} probe round trips",
        p99.as_secs_f64() / probe.as_secs_f64()
    );
    sandbox.stop().await.unwrap();
}
