//! Health and reflection, which anyone may call.

use atrium_service_kit::testing::{health_status, reflected_services};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::{Backend, Code, Env, both_backends};

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
}
