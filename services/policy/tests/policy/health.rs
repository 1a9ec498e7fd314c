//! Health and reflection, which anyone may call.

use std::time::{Duration, Instant};

use atrium_service_kit::server::HEALTH_CHECK_INTERVAL;
use atrium_service_kit::testing::{health_status, reflected_services};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::{Backend, Code, Env, both_backends};

both_backends!(health_reports_serving, reflection_lists_the_service);

/// The service reports NOT_SERVING once its database stops answering (a load balancer or
/// Kubernetes readiness probe then sends calls elsewhere).
#[tokio::test]
async fn health_follows_the_database() {
    let env = Env::start(Backend::Postgres).await;
    let endpoint = env.server.endpoint();
    let status = || health_status(&endpoint, atrium_policy::SERVICE_NAME);
    assert_eq!(status().await.expect("health"), ServingStatus::Serving);
    env.server
        .database()
        .destroy()
        .await
        .expect("drop the database");
    let deadline = Instant::now() + HEALTH_CHECK_INTERVAL * 3;
    loop {
        let now = status().await.expect("health answers without a database");
        if now == ServingStatus::NotServing {
            break;
        }
        assert!(Instant::now() < deadline, "still {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let overall = health_status(&endpoint, "").await.expect("health");
    assert_eq!(overall, ServingStatus::NotServing);
}

async fn health_reports_serving(backend: Backend) {
    let env = Env::start(backend).await;
    let endpoint = env.server.endpoint();
    assert_eq!(
        atrium_policy::SERVICE_NAME,
        "atrium.policy.v1.PolicyService"
    );
    let service = health_status(&endpoint, atrium_policy::SERVICE_NAME).await;
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
        names.contains(&"atrium.policy.v1.PolicyService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    // Only what this port serves: no other Atrium API.
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("atrium.") && !n.ends_with("PolicyService"))
        .collect();
    assert!(foreign.is_empty(), "{names:?}");
}
