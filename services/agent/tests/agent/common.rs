//! What every scenario shares: starting agents, specs, and asserting on gRPC outcomes.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

pub use atrium_agent::testing::{Client, TestAgent, new_session_id, session_spec};
pub use atrium_proto::agent::v1 as pb;
use atrium_service_kit::error::error_detail;
pub use tonic::Code;
use tonic::{Response, Status};

pub type Reply<T> = Result<Response<T>, Status>;

/// The answer, or a panic saying what came back instead.
pub fn ok<T: Debug>(reply: Reply<T>) -> T {
    match reply {
        Ok(r) => r.into_inner(),
        Err(status) => panic!(
            "expected success, got {:?}: {}",
            status.code(),
            status.message()
        ),
    }
}

/// The error status, checked against `code`.
pub fn err<T: Debug>(reply: Reply<T>, code: Code) -> Status {
    match reply {
        Ok(r) => panic!("expected {code:?}, got {:?}", r.into_inner()),
        Err(status) => {
            assert_eq!(status.code(), code, "{}", status.message());
            status
        }
    }
}

/// The field an InvalidArgument names.
pub fn field(status: &Status) -> String {
    error_detail(status).map(|d| d.field).unwrap_or_default()
}

pub fn session_ref(session_id: &str) -> pb::SessionRef {
    pb::SessionRef {
        session_id: session_id.into(),
    }
}

pub fn create(spec: pb::SessionSpec) -> pb::CreateSessionRequest {
    pb::CreateSessionRequest { spec: Some(spec) }
}

pub fn state(c: &pb::SessionContainer) -> pb::ContainerState {
    c.state()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The agent's health as `grpc.health.v1` reports it for the agent service.
pub async fn health(agent: &TestAgent) -> tonic_health::pb::health_check_response::ServingStatus {
    let mut client =
        tonic_health::pb::health_client::HealthClient::new(agent.channel().await.expect("channel"));
    let answer = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: atrium_agent::SERVICE_NAME.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    answer.status()
}
