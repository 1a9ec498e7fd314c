//! The CLI's one error type and how it is shown: `error: <message>` on stderr, or a JSON
//! `{"error": {...}}` object on stdout with `--output json`; exit code 1, or 2 for usage errors.

use atrium_service_kit::error::error_detail;
use serde_json::{Value, json};
use tonic::{Code, Status};

/// Everything a command can fail with.
#[derive(Debug)]
pub enum CliError {
    /// The server answered with an error status.
    Status(Status),
    /// The command line (or its stdin) was wrong; exit code 2, like clap's own errors.
    Usage(String),
    /// The server could not be reached.
    Connect { endpoint: String, message: String },
    /// Anything local: files, terminals.
    Local(anyhow::Error),
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        CliError::Status(status)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::Local(error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::Local(error.into())
    }
}

/// A usage error (exit code 2).
pub fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The one-line human message (without the `error: ` prefix).
    pub fn message(&self) -> String {
        match self {
            CliError::Status(status) => status_message(status),
            CliError::Usage(message) => message.clone(),
            CliError::Connect { endpoint, message } => {
                format!("cannot connect to {endpoint}: {message}")
            }
            CliError::Local(error) => format!("{error:#}"),
        }
    }

    /// The `{"error": {...}}` document printed with `--output json`.
    pub fn to_json(&self) -> Value {
        let (code, reason, field) = match self {
            CliError::Status(status) => {
                let detail = error_detail(status);
                (
                    code_name(status.code()),
                    detail.as_ref().map(|d| d.reason.clone()),
                    detail.map(|d| d.field).filter(|f| !f.is_empty()),
                )
            }
            CliError::Usage(_) => ("INVALID_ARGUMENT", Some("usage".to_owned()), None),
            CliError::Connect { .. } => ("UNAVAILABLE", None, None),
            CliError::Local(_) => ("INTERNAL", None, None),
        };
        json!({
            "error": {
                "code": code,
                "message": self.message(),
                "field": field,
                "reason": reason,
            }
        })
    }
}

fn status_message(status: &Status) -> String {
    let message = status.message().trim();
    if message.is_empty() {
        format!("{} (no message from server)", code_name(status.code()))
    } else {
        message.to_owned()
    }
}

/// The canonical gRPC name of a status code (`NOT_FOUND`, `INVALID_ARGUMENT`, ...).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Replaces a status's message, keeping its code and details (used to add a hint).
pub fn with_message(status: &Status, message: String) -> Status {
    Status::with_details(status.code(), message, status.details().to_vec().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use atrium_service_kit::ApiError;

    #[test]
    fn status_errors_carry_code_field_and_reason_in_json() {
        let status: Status = ApiError::invalid("user.email", "not an email address").into();
        let err = CliError::from(status);
        assert_eq!(err.exit_code(), 1);
        assert_eq!(err.message(), "user.email: not an email address");
        let json = err.to_json();
        assert_eq!(json["error"]["code"], "INVALID_ARGUMENT");
        assert_eq!(json["error"]["field"], "user.email");
        assert_eq!(json["error"]["reason"], "invalid_field");
        assert_eq!(json["error"]["message"], "user.email: not an email address");
    }

    #[test]
    fn statuses_without_details_have_null_field() {
        let err = CliError::from(Status::permission_denied("admin only"));
        let json = err.to_json();
        assert_eq!(json["error"]["code"], "PERMISSION_DENIED");
        assert!(json["error"]["field"].is_null());
        assert_eq!(err.message(), "admin only");
    }

    #[test]
    fn usage_errors_exit_with_two() {
        let err = usage("nothing to update");
        assert_eq!(err.exit_code(), 2);
        assert_eq!(err.to_json()["error"]["code"], "INVALID_ARGUMENT");
    }

    #[test]
    fn with_message_keeps_the_details() {
        let status: Status = ApiError::invalid("page.page_size", "too large").into();
        let hinted = with_message(&status, "page.page_size: too large (hint)".into());
        assert_eq!(hinted.code(), Code::InvalidArgument);
        assert_eq!(
            error_detail(&hinted).map(|d| d.field),
            Some("page.page_size".into())
        );
    }
}
