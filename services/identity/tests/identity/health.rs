//! Health and reflection, which anyone may call.

use atrium_service_kit::testing::{health_status, http_get, metric_sample, reflected_services};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::{Backend, Code, Env, Outcome, PASSWORD, both_backends};

both_backends!(health_reports_serving, reflection_lists_the_service);

async fn health_reports_serving(backend: Backend) {
    let env = Env::start(backend).await;
    let endpoint = env.server.endpoint();
    assert_eq!(
        atrium_identity::SERVICE_NAME,
        "atrium.identity.v1.IdentityService"
    );
    let service = health_status(&endpoint, atrium_identity::SERVICE_NAME).await;
    assert_eq!(service.expect("health check"), ServingStatus::Serving);
    let overall = health_status(&endpoint, "").await;
    assert_eq!(overall.expect("health check"), ServingStatus::Serving);
    let unknown = health_status(&endpoint, "atrium.nope.v1.Nope").await;
    assert_eq!(unknown.expect_err("unknown service").code(), Code::NotFound);
}

async fn reflection_lists_the_service(backend: Backend) {
    let env = Env::start(backend).await;
    let names = reflected_services(&env.server.endpoint())
        .await
        .expect("reflection");
    assert!(
        names.contains(&"atrium.identity.v1.IdentityService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    // Only what this port serves: no other Atrium API.
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("atrium.") && !n.ends_with("IdentityService"))
        .collect();
    assert!(foreign.is_empty(), "{names:?}");
}

/// `/metrics` counts logins by result and reason, and every call by method and code.
#[tokio::test]
async fn metrics_count_logins_and_calls() {
    let env = Env::start(Backend::Sqlite).await;
    env.create_user("bob").await;
    env.login_ok("bob", PASSWORD).await;
    for _ in 0..2 {
        env.login("bob", "wrong password!")
            .await
            .fails(Code::Unauthenticated);
    }
    env.login("nobody", "wrong password!")
        .await
        .fails(Code::Unauthenticated);

    let (status, text) = http_get(env.server.metrics_addr, "/metrics")
        .await
        .expect("metrics");
    assert_eq!(status, 200);
    let logins = |result: &str, reason: &str| {
        let series =
            format!("atrium_identity_logins_total{{result=\"{result}\",reason=\"{reason}\"}}");
        metric_sample(&text, &series)
    };
    // The bootstrap admin's login (Env::start) and bob's.
    assert_eq!(logins("success", ""), Some(2.0), "{text}");
    assert_eq!(logins("failure", "bad_password"), Some(2.0), "{text}");
    assert_eq!(logins("failure", "unknown_user"), Some(1.0), "{text}");
    let login_calls = |code: &str| {
        metric_sample(
            &text,
            &format!(
                "atrium_grpc_server_handled_total{{grpc_service=\"{}\",grpc_method=\"Login\",grpc_code=\"{code}\"}}",
                atrium_identity::SERVICE_NAME
            ),
        )
    };
    assert_eq!(login_calls("OK"), Some(2.0), "{text}");
    assert_eq!(login_calls("Unauthenticated"), Some(3.0), "{text}");
}
