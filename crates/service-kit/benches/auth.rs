//! Access-token verification through the kit's auth layer, against a bare Ed25519 signature
//! verification of the same bytes, in the same run.
//!
//! `cargo bench -p atrium-service-kit --bench auth`
//! Prints both rates and their ratio (goal: layer / bare ≥ 0.8).

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
    let claims = AccessClaims {
        iss: "atrium".into(),
        sub: "0192f5a2-7c3b-7def-8a1b-0123456789ab".into(),
        name: "alice@example.com".into(),
        realm: "local".into(),
        sid: "0192f5a2-7c3b-7def-8a1b-0123456789ac".into(),
        jti: "5f0c3f1e0a7b4c8d9e2f1a3b4c5d6e7f".into(),
        iat: now,
        exp: now + 3600,
        scope: Scope::Full,
    };
    let token = jwt::sign(&claims, "k1", &key);
    let (signed, sig_b64) = token.rsplit_once('.').unwrap();
    let signature = {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig_b64)
            .unwrap();
        Signature::from_slice(&bytes).unwrap()
    };
    let verifying = key.verifying_key();

    // The auth layer around a handler that only checks the principal arrived.
    let inner = tower::service_fn(|req: http::Request<Body>| async move {
        assert!(matches!(
            req.extensions().get::<Principal>(),
            Some(Principal::User(_))
        ));
        Ok::<_, Infallible>(http::Response::new(Body::empty()))
    });
    let authenticator = Authenticator::new(keys, "atrium");
    let service = AuthLayer::new(authenticator, Vec::new()).layer(inner);
    let header = format!("Bearer {token}");

    // Alternate small batches of the two, so that whatever else the machine does hits both alike.
    const BATCH: u32 = 200;
    let measure = Duration::from_secs(6);
    let (bare, layered) = runtime.block_on(async {
        let call = || {
            let request = http::Request::builder()
                .uri("/atrium.identity.v1.IdentityService/WhoAmI")
                .header("authorization", header.as_str())
                .body(Body::empty())
                .unwrap();
            service.clone().oneshot(request)
        };
        let (mut bare, mut layered, mut ops) = (Duration::ZERO, Duration::ZERO, 0u32);
        let mut warm = true;
        let started = Instant::now();
        while started.elapsed() < measure {
            let t = Instant::now();
            for _ in 0..BATCH {
                verifying
                    .verify(black_box(signed.as_bytes()), black_box(&signature))
                    .unwrap();
            }
            let b = t.elapsed();
            let t = Instant::now();
            for _ in 0..BATCH {
                let response = call().await.unwrap();
                assert!(
                    response.headers().get("grpc-status").is_none(),
                    "token refused"
                );
            }
            let l = t.elapsed();
            if !warm {
                bare += b;
                layered += l;
                ops += BATCH;
            }
            warm = false;
        }
        (bare / ops, layered / ops)
    });
    println!(
        "bare ed25519 verify (same bytes)               {:>8.2} µs/op",
        bare.as_secs_f64() * 1e6
    );
    println!(
        "auth layer (parse, verify, claims, principal)  {:>8.2} µs/op",
        layered.as_secs_f64() * 1e6
    );
    println!(
        "throughput ratio layer/bare = {:.3} (goal >= 0.8)",
        bare.as_secs_f64() / layered.as_secs_f64()
    );
}
