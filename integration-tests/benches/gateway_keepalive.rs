//! The Developer API's keepalive through the gateway against the session-manager's own gRPC
//! Keepalive, in one run, both with the same API key and the same 50 sessions:
//!
//! - `POST /api/public/keepalive` requests/s at 50 concurrent callers (HTTP/1.1 keep-alive
//!   connections, key and secret in the JSON body as Kasm clients send them) ÷
//! - `Keepalive` RPCs/s at 50 concurrent callers straight to the session-manager (mutual TLS).
//!
//! Sessions sit on a simulated agent (a heartbeat with no agent behind it).
//!
//!   scripts/bench-gateway keepalive

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_integration_tests::{Role, Sandbox, demo_workspace, user_with_settings};
use atrium_launcher::Caller;
use atrium_proto::identity::v1 as id_pb;
use atrium_proto::session::v1 as pb;
use atrium_service_kit::auth::Credential;

const CALLERS: usize = 50;

fn redis_url() -> String {
    std::env::var("ATRIUM_TEST_REDIS_URL").expect("ATRIUM_TEST_REDIS_URL")
}

/// Runs `call` from `callers` tasks for `secs`; calls per second.
async fn rate<F, Fut>(callers: usize, secs: u64, make: impl Fn(usize) -> F) -> f64
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..callers {
        let mut call = make(i);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                assert!(call().await, "a call failed");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn keepalive() {
    let sandbox = Sandbox::builder(&[
        Role::Identity,
        Role::Policy,
        Role::SessionManager,
        Role::Gateway,
    ])
    .configure(|c| {
        c.tune_gateway(|g| {
            // The per-key limit is what a deployment sets; here the limit is not measured.
            g.public_api_per_second = 1_000_000;
        })
    })
    .start()
    .await
    .unwrap();
    atrium_integration_tests::simulated_agent(
        &redis_url(),
        sandbox.redis_namespace(),
        "simulated-agent",
    )
    .await
    .unwrap();
    let admin = sandbox.admin().unwrap().clone();
    let workspace = demo_workspace(
        sandbox.running(),
        &admin,
        "atrium/simulated:latest",
        0.01,
        64,
    )
    .await
    .unwrap();
    let user = user_with_settings(
        sandbox.running(),
        &admin,
        "keepalive",
        &[
            ("max_kasms_per_user", "100"),
            ("keepalive_expiration", "3600"),
        ],
    )
    .await
    .unwrap();
    let mut own = sandbox
        .running()
        .session(&Caller::User(user.credential.clone()))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..CALLERS {
        let s = own
            .request_session(pb::RequestSessionRequest {
                workspace_id: workspace.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.push(s.id);
    }
    let key = sandbox
        .identity_as_admin()
        .await
        .unwrap()
        .create_api_key(id_pb::CreateApiKeyRequest {
            name: "bench".into(),
            read_only: false,
            permissions: vec!["sessions.view".into(), "sessions.modify".into()],
            expires_at: None,
        })
        .await
        .unwrap()
        .into_inner();
    let key_id = key.api_key.unwrap().id;
    let secret = key.secret;
    let credential = Credential::ApiKey {
        id: key_id.clone(),
        secret: secret.clone(),
    };

    let mut grpc = Vec::new();
    for _ in 0..CALLERS {
        grpc.push(
            sandbox
                .running()
                .session(&Caller::User(credential.clone()))
                .await
                .unwrap(),
        );
    }
    let base = sandbox.endpoint(Role::Gateway).unwrap();
    let http: Vec<reqwest::Client> = (0..CALLERS)
        .map(|_| reqwest::Client::builder().build().unwrap())
        .collect();

    let grpc_rate = |secs| {
        let grpc = grpc.clone();
        let ids = ids.clone();
        rate(CALLERS, secs, move |i| {
            let c = grpc[i].clone();
            let id = ids[i].clone();
            move || {
                let mut c = c.clone();
                let id = id.clone();
                async move { c.keepalive(pb::SessionRef { session_id: id }).await.is_ok() }
            }
        })
    };
    let http_rate = |secs| {
        let http = http.clone();
        let ids = ids.clone();
        let url = format!("{base}/api/public/keepalive");
        let (key_id, secret) = (key_id.clone(), secret.clone());
        rate(CALLERS, secs, move |i| {
            let client = http[i].clone();
            let body = serde_json::json!({
                "api_key": key_id, "api_key_secret": secret, "kasm_id": ids[i],
            })
            .to_string();
            let url = url.clone();
            move || {
                let client = client.clone();
                let body = body.clone();
                let url = url.clone();
                async move {
                    match client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        Ok(r) => {
                            eprintln!("{} {}", r.status(), r.text().await.unwrap_or_default());
                            false
                        }
                        Err(e) => {
                            eprintln!("{e}");
                            false
                        }
                    }
                }
            }
        })
    };
    // Warm both paths (connections, caches), then alternate twice.
    grpc_rate(2).await;
    http_rate(2).await;
    let mut grpc_runs = Vec::new();
    let mut http_runs = Vec::new();
    for _ in 0..2 {
        grpc_runs.push(grpc_rate(6).await);
        http_runs.push(http_rate(6).await);
    }
    let grpc_mean = grpc_runs.iter().sum::<f64>() / grpc_runs.len() as f64;
    let http_mean = http_runs.iter().sum::<f64>() / http_runs.len() as f64;
    println!("keepalive, {CALLERS} concurrent callers, one API key, {CALLERS} sessions:");
    println!("  session-manager gRPC Keepalive/s:     {grpc_runs:>10.0?}  mean {grpc_mean:.0}");
    println!("  gateway POST /api/public/keepalive/s: {http_runs:>10.0?}  mean {http_mean:.0}");
    println!(
        "  ratio gateway / gRPC:                 {:>10.3}   (target ≥ 0.5)",
        http_mean / grpc_mean
    );
    sandbox.stop().await.ok();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["keepalive"];
    let chosen: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for which in chosen {
        match which {
            "keepalive" => keepalive().await,
            other => panic!("unknown benchmark {other}; one of {all:?}"),
        }
    }
}
