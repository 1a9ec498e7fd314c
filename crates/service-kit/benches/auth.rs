//! Access-token verification through the kit's auth layer, against a bare Ed25519 signature
//! verification of the same bytes, in the same run.
//!
//! `cargo bench -p atrium-service-kit --bench auth`
//! Prints the rates and ratios (goal: verifying layer / bare ≥ 0.8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use atrium_service_kit::auth::{
    AccessClaims, AuthLayer, Authenticator, KeyEntry, KeySet, Principal, Scope, jwt,
};
use ed25519_dalek::{Signature, SigningKey, Verifier};
use tonic::body::Body;
use tower::{Layer, ServiceExt};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let keys = KeySet::default();
    keys.replace(vec![KeyEntry {
        kid: "k1".into(),
        key: key.verifying_key(),
        valid_until: None,
    }]);
    let now = chrono::Utc::now().timestamp();
    // Distinct tokens (more than the verified-token cache holds), so the layer really verifies.
    const TOKENS: usize = 25_000;
    let tokens: Vec<String> = (0..TOKENS)
        .map(|i| {
            let claims = AccessClaims {
                iss: "atrium".into(),
                sub: "0192f5a2-7c3b-7def-8a1b-0123456789ab".into(),
                name: "alice@example.com".into(),
                realm: "local".into(),
                sid: "0192f5a2-7c3b-7def-8a1b-0123456789ac".into(),
                jti: format!("{i:032x}"),
                iat: now,
                exp: now + 3600,
                scope: Scope::Full,
            };
            jwt::sign(&claims, "k1", &key)
        })
        .collect();
    let signed: Vec<(Vec<u8>, Signature)> = tokens
        .iter()
        .map(|t| {
            use base64::Engine;
            let (signed, sig_b64) = t.rsplit_once('.').unwrap();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig_b64)
                .unwrap();
            (
                signed.as_bytes().to_vec(),
                Signature::from_slice(&bytes).unwrap(),
            )
        })
        .collect();
    let verifying = key.verifying_key();

    // The auth layer around a handler that only checks the principal arrived.
    let inner = tower::service_fn(|req: http::Request<Body>| async move {
        assert!(matches!(
            req.extensions().get::<Principal>(),
            Some(Principal::User(_))
        ));
        Ok::<_, Infallible>(http::Response::new(Body::empty()))
    });
    let service = AuthLayer::new(Authenticator::new(keys, "atrium"), Vec::new()).layer(inner);
    let headers: Vec<String> = tokens.iter().map(|t| format!("Bearer {t}")).collect();

    // Alternate small batches of the two, so that whatever else the machine does hits both alike.
    const BATCH: usize = 200;
    let measure = Duration::from_secs(6);
    let (bare, layered, cached) = runtime.block_on(async {
        // Requests are built before the clock starts: the server receives them built, too.
        let request = |header: &str| {
            http::Request::builder()
                .uri("/atrium.identity.v1.IdentityService/WhoAmI")
                .header("authorization", header)
                .body(Body::empty())
                .unwrap()
        };
        let (mut bare, mut layered, mut cached, mut ops) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u32);
        let mut next = 0usize;
        let mut warm = true;
        let started = Instant::now();
        while started.elapsed() < measure {
            let t = Instant::now();
            for i in 0..BATCH {
                let (bytes, sig) = &signed[(next + i) % TOKENS];
                verifying.verify(black_box(bytes), black_box(sig)).unwrap();
            }
            let b = t.elapsed();
            let requests: Vec<_> = (0..BATCH)
                .map(|i| request(&headers[(next + i) % TOKENS]))
                .collect();
            let t = Instant::now();
            for request in requests {
                let response = service.clone().oneshot(request).await.unwrap();
                assert!(
                    response.headers().get("grpc-status").is_none(),
                    "token refused"
                );
            }
            let l = t.elapsed();
            // The same token again and again: the verified-token cache answers.
            let requests: Vec<_> = (0..BATCH)
                .map(|_| request(&headers[next % TOKENS]))
                .collect();
            let t = Instant::now();
            for request in requests {
                let response = service.clone().oneshot(request).await.unwrap();
                assert!(
                    response.headers().get("grpc-status").is_none(),
                    "token refused"
                );
            }
            let c = t.elapsed();
            next += BATCH;
            if !warm {
                bare += b;
                layered += l;
                cached += c;
                ops += BATCH as u32;
            }
            warm = false;
        }
        (bare / ops, layered / ops, cached / ops)
    });
    println!(
        "bare ed25519 verify (distinct tokens)               {:>8.2} µs/op",
        bare.as_secs_f64() * 1e6
    );
    println!(
        "auth layer, first sight of each token (verifies)    {:>8.2} µs/op",
        layered.as_secs_f64() * 1e6
    );
    println!(
        "auth layer, a token seen before (cache)             {:>8.2} µs/op",
        cached.as_secs_f64() * 1e6
    );
    println!(
        "throughput ratio layer/bare, verifying = {:.3} (goal >= 0.8)",
        bare.as_secs_f64() / layered.as_secs_f64()
    );
    println!(
        "throughput ratio layer/bare, cached    = {:.1}",
        bare.as_secs_f64() / cached.as_secs_f64()
    );
}
