//! One error type for every service's API edge, with a single mapping to gRPC status codes.
//!
//! Validation failures name the field; internal failures are logged whole on the server and
//! reach the client as a generic message.

use atrium_proto::common::v1::ErrorDetail;
use prost::Message;
use tonic::{Code, Status};

/// What went wrong, in the terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Unavailable(String),
    /// A rate or resource limit: the caller should slow down and retry later.
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An invalid request field: `field` is the dotted path from the request root.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// For start-up code that reports with anyhow: internal errors keep their chain.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            Self::Internal(inner) => inner,
            other => anyhow::anyhow!(other.to_string()),
        }
    }

    fn code_and_reason(&self) -> (Code, &'static str) {
        match self {
            Self::InvalidArgument { .. } => (Code::InvalidArgument, "invalid_field"),
            Self::NotFound(_) => (Code::NotFound, "not_found"),
            Self::AlreadyExists(_) => (Code::AlreadyExists, "already_exists"),
            Self::FailedPrecondition(_) => (Code::FailedPrecondition, "failed_precondition"),
            Self::PermissionDenied(_) => (Code::PermissionDenied, "permission_denied"),
            Self::Unauthenticated(_) => (Code::Unauthenticated, "unauthenticated"),
            Self::Unavailable(_) => (Code::Unavailable, "unavailable"),
            Self::ResourceExhausted(_) => (Code::ResourceExhausted, "resource_exhausted"),
            Self::Internal(_) => (Code::Internal, "internal"),
        }
    }
}

/// Maps a database error; a unique-constraint violation becomes AlreadyExists(`what`).
pub fn unique_as(error: sea_orm::DbErr, what: &str) -> ApiError {
    match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::AlreadyExists(what.to_owned())
        }
        _ => ApiError::from(error),
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database"))
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let (code, reason) = error.code_and_reason();
        if let ApiError::Internal(inner) = &error {
            tracing::error!(error = format!("{inner:#}"), "internal error");
        }
        let message = error.to_string();
        let field = match &error {
            ApiError::InvalidArgument { field, .. } => field.clone(),
            _ => String::new(),
        };
        let detail = ErrorDetail {
            reason: reason.to_owned(),
            field,
            message: message.clone(),
        };
        Status::with_details(code, message, detail.encode_to_vec().into())
    }
}

/// Reads the [`ErrorDetail`] a status carries, if any (clients use this to find the field).
pub fn error_detail(status: &Status) -> Option<ErrorDetail> {
    ErrorDetail::decode(status.details())
        .ok()
        .filter(|d| !d.reason.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_the_field_in_message_and_detail() {
        let status: Status = ApiError::invalid("user.email", "not an email address").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "user.email: not an email address");
        let detail = error_detail(&status).expect("detail");
        assert_eq!(detail.field, "user.email");
        assert_eq!(detail.reason, "invalid_field");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status: Status =
            ApiError::internal(anyhow::anyhow!("password for db is hunter2")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
