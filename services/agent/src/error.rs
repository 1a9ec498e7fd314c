//! The agent's errors, and their one mapping to gRPC statuses.

use atrium_service_kit::ApiError;

use crate::runtime::RuntimeError;
use crate::spec::SessionId;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A request field is invalid (named in the error).
    #[error(transparent)]
    Invalid(ApiError),
    #[error("agent is draining")]
    Draining,
    #[error("session {0} has no container on this agent")]
    NoContainer(SessionId),
    /// The node or the container is not in a state that allows the call.
    #[error("{0}")]
    Precondition(String),
    #[error("only Atrium's services may call the agent")]
    NotService,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

pub type AgentResult<T> = Result<T, AgentError>;

impl From<ApiError> for AgentError {
    fn from(e: ApiError) -> Self {
        Self::Invalid(e)
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Invalid(api) => api,
            AgentError::Draining => ApiError::FailedPrecondition(e.to_string()),
            AgentError::NoContainer(_) => ApiError::NotFound(e.to_string()),
            AgentError::Precondition(message) => ApiError::FailedPrecondition(message),
            AgentError::NotService => ApiError::PermissionDenied(e.to_string()),
            AgentError::Runtime(r) => match r {
                RuntimeError::NoSuchContainer(what) => {
                    ApiError::NotFound(format!("container {what}"))
                }
                RuntimeError::NoSuchImage(image) => ApiError::FailedPrecondition(format!(
                    "image {image} is not present on this node; pull it first"
                )),
                RuntimeError::Conflict(message) => ApiError::FailedPrecondition(message),
                RuntimeError::Rejected(message) => ApiError::invalid(
                    "spec",
                    format!("the container engine refused the container: {message}"),
                ),
                RuntimeError::Unavailable(message) => {
                    ApiError::Unavailable(format!("the container engine is unreachable: {message}"))
                }
                RuntimeError::Timeout(message) => {
                    ApiError::Unavailable(format!("the container engine timed out: {message}"))
                }
                RuntimeError::Other(message) => {
                    ApiError::internal(anyhow::anyhow!("container engine: {message}"))
                }
            },
        }
    }
}

impl From<AgentError> for tonic::Status {
    fn from(e: AgentError) -> Self {
        ApiError::from(e).into()
    }
}
