//! The HTTP side of the kit: one error body for every HTTP route, from the same error codes the
//! gRPC services use, and the authentication extractor over the transport-neutral
//! [`Authenticator`].
//!
//! Errors reach HTTP clients as `{"error": {"code", "message", "field"}}`, where `code` is the
//! [`ErrorDetail`](atrium_proto::common::v1::ErrorDetail) reason a service attached (or the one
//! its gRPC code implies) and the status is the one [`status_for`] gives that code.

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};
use tonic::Code;

use crate::auth::{Authenticator, Credential, Principal, secret_eq};
use crate::error::{ApiError, error_detail};

/// Cookie that carries a browser's access token (HttpOnly).
pub const ACCESS_COOKIE: &str = "atrium_access";
/// Cookie that carries a browser's refresh token (HttpOnly, sent to the refresh route only).
pub const REFRESH_COOKIE: &str = "atrium_refresh";
/// Cookie the browser's script reads and echoes in [`CSRF_HEADER`] on every state change.
pub const CSRF_COOKIE: &str = "atrium_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The HTTP status for a gRPC code: the one table both sides of the gateway use.
pub fn status_for(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Internal | Code::Unknown | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error code (the `reason` of an ErrorDetail) a gRPC code implies when a status carries
/// no detail.
pub fn reason_for(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::OutOfRange => "invalid_field",
        Code::NotFound => "not_found",
        Code::AlreadyExists | Code::Aborted => "already_exists",
        Code::FailedPrecondition => "failed_precondition",
        Code::PermissionDenied => "permission_denied",
        Code::Unauthenticated => "unauthenticated",
        Code::Unavailable | Code::Cancelled => "unavailable",
        Code::ResourceExhausted => "resource_exhausted",
        Code::DeadlineExceeded => "timeout",
        Code::Unimplemented => "unimplemented",
        Code::Ok | Code::Internal | Code::Unknown | Code::DataLoss => "internal",
    }
}

/// An error as an HTTP route reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub field: String,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            field: String::new(),
        }
    }

    /// 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field".into(),
            message: if field.is_empty() {
                message
            } else {
                format!("{field}: {message}")
            },
            field,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// The JSON body: `{"error": {"code", "message", "field"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {"code": self.code, "message": self.message, "field": self.field}
        })
    }
}

impl From<tonic::Status> for HttpError {
    fn from(status: tonic::Status) -> Self {
        let detail = error_detail(&status);
        let code = detail
            .as_ref()
            .map(|d| d.reason.clone())
            .unwrap_or_else(|| reason_for(status.code()).to_owned());
        let internal = matches!(
            status.code(),
            Code::Internal | Code::Unknown | Code::DataLoss
        );
        if internal {
            tracing::error!(code = ?status.code(), message = status.message(), "backend error");
        }
        Self {
            status: status_for(status.code()),
            code,
            message: if internal {
                "internal error".into()
            } else if status.message().is_empty() {
                reason_for(status.code()).replace('_', " ")
            } else {
                status.message().to_owned()
            },
            field: detail.map(|d| d.field).unwrap_or_default(),
        }
    }
}

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> Self {
        tonic::Status::from(error).into()
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for HttpError {}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"atrium\""),
            );
        }
        response
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer …` or `ApiKey …`, or HTTP Basic `key:secret`.
    Header,
    /// The browser's session cookie (CSRF-checked on every state change).
    Cookie,
}

/// An authenticated caller of an HTTP route, with the credential to forward to the services
/// (which authorize it themselves: the gateway confers no rights of its own).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub credential: Credential,
    pub via: Via,
}

/// The credential a request presents: the `Authorization` header (`Bearer`, `ApiKey id:secret`
/// or `Basic` of `id:secret`), else the access cookie. `Ok(None)`: no credential at all.
pub fn presented(headers: &HeaderMap) -> Result<Option<(Credential, Via)>, HttpError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| HttpError::unauthenticated("authorization: not a valid header value"))?;
        if let Some(credential) = Credential::parse(value) {
            return Ok(Some((credential, Via::Header)));
        }
        if let Some(credential) = basic_api_key(value) {
            return Ok(Some((credential, Via::Header)));
        }
        return Err(HttpError::unauthenticated(
            "authorization: must be `Bearer <token>`, `ApiKey <id>:<secret>` or Basic <id:secret>",
        ));
    }
    Ok(cookie(headers, ACCESS_COOKIE)
        .filter(|t| !t.is_empty())
        .map(|token| (Credential::Bearer(token.to_owned()), Via::Cookie)))
}

/// `Basic base64(id:secret)` as an API key credential.
pub fn basic_api_key(value: &str) -> Option<Credential> {
    use base64::Engine as _;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    if id.is_empty() || secret.is_empty() {
        return None;
    }
    Some(Credential::ApiKey {
        id: id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// Whether a cookie-authenticated request may change state: safe methods always; others only
/// with the CSRF header equal to the CSRF cookie (double submit; a page on another site can
/// neither read the cookie nor set the header).
pub fn csrf_ok(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    match (
        cookie(headers, CSRF_COOKIE),
        headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    ) {
        (Some(cookie), Some(header)) if !cookie.is_empty() => secret_eq(cookie, header),
        _ => false,
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        let (credential, via) = presented(&parts.headers)?
            .ok_or_else(|| HttpError::unauthenticated("authentication required"))?;
        if via == Via::Cookie && !csrf_ok(&parts.method, &parts.headers) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                format!(
                    "{CSRF_HEADER}: missing or wrong; send the value of the {CSRF_COOKIE} cookie"
                ),
            ));
        }
        let principal = authenticator.authenticate(&credential).await?;
        Ok(Self {
            principal,
            credential,
            via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        map
    }

    #[test]
    fn a_status_with_detail_keeps_its_field_and_reason() {
        let error: HttpError =
            tonic::Status::from(ApiError::invalid("user.email", "not an email")).into();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "invalid_field");
        assert_eq!(error.field, "user.email");
        assert_eq!(error.body()["error"]["message"], "user.email: not an email");
    }

    #[test]
    fn internal_errors_never_show_their_message() {
        let error: HttpError = tonic::Status::internal("db password hunter2").into();
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.message.contains("hunter2"));
    }

    #[test]
    fn every_code_has_a_status_and_a_reason() {
        for code in 0..=16 {
            let code = Code::from_i32(code);
            let status = status_for(code);
            assert!(status.is_success() == (code == Code::Ok), "{code:?}");
            assert!(!reason_for(code).is_empty());
        }
        assert_eq!(status_for(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            status_for(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn credentials_come_from_header_then_cookie() {
        let h = headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "atrium_access=zzz"),
        ]);
        assert_eq!(
            presented(&h).expect("ok"),
            Some((Credential::Bearer("abc".into()), Via::Header))
        );
        let h = headers(&[("cookie", "a=1; atrium_access=zzz; b=2")]);
        assert_eq!(
            presented(&h).expect("ok"),
            Some((Credential::Bearer("zzz".into()), Via::Cookie))
        );
        // "key:secret" in Basic.
        let h = headers(&[("authorization", "Basic a2V5OnNlY3JldA==")]);
        assert_eq!(
            presented(&h).expect("ok"),
            Some((
                Credential::ApiKey {
                    id: "key".into(),
                    secret: "secret".into()
                },
                Via::Header
            ))
        );
        assert!(presented(&headers(&[("authorization", "Digest x")])).is_err());
        assert_eq!(presented(&HeaderMap::new()).expect("ok"), None);
    }

    #[test]
    fn csrf_needs_the_header_to_match_the_cookie() {
        let cookie = ("cookie", "atrium_csrf=tok123");
        assert!(csrf_ok(&Method::GET, &headers(&[])));
        assert!(!csrf_ok(&Method::POST, &headers(&[cookie])));
        assert!(!csrf_ok(
            &Method::POST,
            &headers(&[cookie, ("x-csrf-token", "tok124")])
        ));
        assert!(!csrf_ok(&Method::DELETE, &headers(&[("x-csrf-token", "")])));
        assert!(csrf_ok(
            &Method::POST,
            &headers(&[cookie, ("x-csrf-token", "tok123")])
        ));
    }
}
