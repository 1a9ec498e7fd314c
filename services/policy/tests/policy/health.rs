//! Health and reflection, which anyone may call.

use futures::StreamExt as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::common::{Backend, Code, Env, both_backends};

both_backends!(health_reports_serving, reflection_lists_the_service);

async fn channel(env: &Env) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(env.server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

async fn health_reports_serving(backend: Backend) {
    let env = Env::start(backend).await;
    let mut health = HealthClient::new(channel(&env).await);
    let status = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    assert_eq!(
        atrium_policy::SERVICE_NAME,
        "atrium.policy.v1.PolicyService"
    );
    let policy = health
        .check(status(atrium_policy::SERVICE_NAME))
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(policy.status(), ServingStatus::Serving);
    let overall = health
        .check(status(""))
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(overall.status(), ServingStatus::Serving);
    let unknown = health
        .check(status("atrium.nope.v1.Nope"))
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);
}

async fn reflection_lists_the_service(backend: Backend) {
    let env = Env::start(backend).await;
    let mut reflection = ServerReflectionClient::new(channel(&env).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses
        .next()
        .await
        .expect("one response")
        .expect("reflection response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"atrium.policy.v1.PolicyService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}
