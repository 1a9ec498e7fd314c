//! `/api/public/*`: Kasm's Developer API (see ../shared/reference/kasm-developer-api.md), so
//! Kasm integrations work unchanged.
//!
//! Every call is `POST /api/public/<name>` with a JSON body carrying `api_key` and
//! `api_key_secret` (or HTTP Basic `key:secret`). The key is rate-limited, authenticated, and
//! then forwarded as the credential of every gRPC call: the services authorize it themselves,
//! so a call needs the Atrium permissions of the RPCs it makes. The gateway checks the key's
//! permissions first only to name the missing one clearly (the services would answer "not
//! found" for a session the key may not see):
//!
//! | Kasm call | Atrium permissions |
//! |---|---|
//! | request_kasm | sessions.modify (acting for a user); users.create without user_id; users.view adds the username |
//! | get_kasm_status, get_kasms | sessions.view |
//! | keepalive | sessions.modify (and sessions.view when user_id is given) |
//! | exec_command_kasm | sessions.modify and sessions.exec (and sessions.view when user_id is given) |
//! | destroy_kasm | sessions.delete (and sessions.view when user_id is given) |
//! | create_user / get_user(s) / update_user / delete_user | users.create / users.view / users.modify / users.delete (delete also sessions.view, and sessions.delete with force) |
//! | logout_user | users.auth_session |
//! | get_attributes / update_user_attributes | users.view / users.modify |
//! | add_user_group, remove_user_group | groups.modify |
//! | get_images | workspaces.view |
//! | get_groups / create_group / update_group / delete_group | groups.view / .create / .modify / .delete |
//!
//! Errors are `{"error_message": "..."}` with a 4xx/5xx status. Session sharing is off:
//! join_kasm and enable_sharing say so.

mod directory;
pub mod model;
mod sessions;

use atrium_service_kit::auth::{ApiKeyPrincipal, Credential, Principal};
use atrium_service_kit::http::basic_api_key;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::AppState;
use model::{KasmError, Keys, parse};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/public/{call}", axum::routing::any(handle))
        .route(
            "/api/public",
            axum::routing::any(|| async {
                KasmError::not_found("name a call: POST /api/public/<call>").into_response()
            }),
        )
}

/// One authenticated call in progress.
pub(crate) struct Call<'a> {
    pub state: &'a AppState,
    pub key: &'a ApiKeyPrincipal,
    pub credential: &'a Credential,
}

impl Call<'_> {
    /// Names the first of `permissions` the key lacks (read-only keys: only `.view` ones).
    pub fn need(&self, call: &str, permissions: &[&str]) -> Result<(), KasmError> {
        for p in permissions {
            if let Err(e) = self.key.require(p) {
                let why = atrium_service_kit::http::HttpError::from(e).message;
                return Err(KasmError::forbidden(format!(
                    "{why} ({call} needs {})",
                    permissions.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn holds(&self, permission: &str) -> bool {
        self.key.require(permission).is_ok()
    }
}

async fn handle(
    State(state): State<AppState>,
    Path(call): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match serve(&state, &call, &method, &headers, body).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(call, status = %e.status, message = e.message, "developer API call failed");
            }
            e.into_response()
        }
    }
}

async fn serve(
    state: &AppState,
    call: &str,
    method: &Method,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Value, KasmError> {
    if *method != Method::POST {
        return Err(KasmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{call}: the Developer API takes POST with a JSON body"),
        ));
    }
    if !CALLS.contains(&call) {
        return Err(KasmError::not_found(format!(
            "unknown Developer API call {call:?}"
        )));
    }
    let max = state.config.max_body_bytes;
    let body = axum::body::to_bytes(body, max).await.map_err(|_| {
        KasmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than {max} bytes"),
        )
    })?;
    let credential = credential(headers, &body)?;
    let Credential::ApiKey { id, .. } = &credential else {
        return Err(KasmError::unauthorized("an API key is required"));
    };
    // Before authentication: guessing secrets costs tokens too.
    if let Err(wait) = state.public_limit.take(id) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Err(KasmError {
            retry_after: Some(secs),
            ..KasmError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many Developer API calls for this API key; try again in {secs} s"),
            )
        });
    }
    let key = match state.authenticator.authenticate(&credential).await {
        Ok(Principal::ApiKey(key)) => key,
        Ok(_) => return Err(KasmError::unauthorized("an API key is required")),
        Err(e) => {
            let e = KasmError::from(atrium_service_kit::http::HttpError::from(e));
            return Err(match e.status {
                StatusCode::UNAUTHORIZED => {
                    KasmError::unauthorized(format!("invalid API key: {}", e.message))
                }
                _ => e,
            });
        }
    };
    let call_ctx = Call {
        state,
        key: &key,
        credential: &credential,
    };
    dispatch(&call_ctx, call, &body).await
}

/// The key: `api_key` / `api_key_secret` in the body, else the Authorization header (HTTP
/// Basic `key:secret` or `ApiKey key:secret`).
fn credential(headers: &HeaderMap, body: &[u8]) -> Result<Credential, KasmError> {
    let keys: Keys = parse(body)?;
    match (keys.api_key, keys.api_key_secret) {
        (Some(id), Some(secret)) if !id.trim().is_empty() && !secret.is_empty() => {
            return Ok(Credential::ApiKey {
                id: id.trim().to_owned(),
                secret,
            });
        }
        (Some(id), _) if !id.trim().is_empty() => {
            return Err(KasmError::unauthorized("api_key_secret: is required"));
        }
        _ => {}
    }
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        let parsed = basic_api_key(value).or_else(|| Credential::parse(value));
        return match parsed {
            Some(c @ Credential::ApiKey { .. }) => Ok(c),
            _ => Err(KasmError::unauthorized(
                "authorization: must be Basic base64(key:secret) or ApiKey key:secret",
            )),
        };
    }
    Err(KasmError::unauthorized(
        "api_key and api_key_secret are required (in the body, or HTTP Basic key:secret)",
    ))
}

/// Every call served.
pub const CALLS: &[&str] = &[
    "request_kasm",
    "get_kasm_status",
    "get_kasms",
    "keepalive",
    "destroy_kasm",
    "exec_command_kasm",
    "join_kasm",
    "create_user",
    "get_user",
    "get_users",
    "update_user",
    "delete_user",
    "logout_user",
    "get_attributes",
    "update_user_attributes",
    "add_user_group",
    "remove_user_group",
    "get_images",
    "get_groups",
    "create_group",
    "update_group",
    "delete_group",
];

async fn dispatch(c: &Call<'_>, call: &str, body: &[u8]) -> Result<Value, KasmError> {
    match call {
        "request_kasm" => sessions::request_kasm(c, parse(body)?).await,
        "get_kasm_status" => sessions::get_kasm_status(c, parse(body)?).await,
        "get_kasms" => sessions::get_kasms(c).await,
        "keepalive" => sessions::keepalive(c, parse(body)?).await,
        "destroy_kasm" => sessions::destroy_kasm(c, parse(body)?).await,
        "exec_command_kasm" => sessions::exec_command_kasm(c, parse(body)?).await,
        "join_kasm" => sessions::join_kasm(parse(body)?),
        "create_user" => directory::create_user(c, parse(body)?).await,
        "get_user" => directory::get_user(c, parse(body)?).await,
        "get_users" => directory::get_users(c).await,
        "update_user" => directory::update_user(c, parse(body)?).await,
        "delete_user" => directory::delete_user(c, parse(body)?).await,
        "logout_user" => directory::logout_user(c, parse(body)?).await,
        "get_attributes" => directory::get_attributes(c, parse(body)?).await,
        "update_user_attributes" => directory::update_user_attributes(c, parse(body)?).await,
        "add_user_group" => directory::user_group(c, parse(body)?, true).await,
        "remove_user_group" => directory::user_group(c, parse(body)?, false).await,
        "get_images" => directory::get_images(c).await,
        "get_groups" => directory::get_groups(c).await,
        "create_group" => directory::create_group(c, parse(body)?).await,
        "update_group" => directory::update_group(c, parse(body)?).await,
        "delete_group" => directory::delete_group(c, parse(body)?).await,
        _ => Err(KasmError::not_found(format!(
            "unknown Developer API call {call:?}"
        ))),
    }
}

/// Pages through a List call (at most `MAX_PAGES` pages of 1000).
pub(crate) const MAX_PAGES: usize = 100;

pub(crate) fn page(token: String) -> Option<atrium_proto::common::v1::PageRequest> {
    Some(atrium_proto::common::v1::PageRequest {
        page_size: 1000,
        page_token: token,
    })
}

pub(crate) fn next_token(page: Option<&atrium_proto::common::v1::PageResponse>) -> Option<String> {
    page.map(|p| p.next_page_token.clone())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    /// A gateway whose services are all unreachable (nothing listens on port 9).
    async fn app(per_second: u32) -> axum::Router {
        let nowhere = "http://127.0.0.1:9";
        // From JSON: the fields this test sets, whatever their Rust types.
        let config: crate::GatewayConfig = serde_json::from_value(serde_json::json!({
            "tls": {"insecure_plaintext": true},
            "identity_endpoint": nowhere,
            "policy_endpoint": nowhere,
            "session_endpoint": nowhere,
            "usage_endpoint": nowhere,
            "public_api_per_second": per_second,
        }))
        .expect("config");
        let gateway = crate::Gateway::new(config).await.expect("gateway");
        crate::router(gateway.state())
    }

    async fn call(
        app: &axum::Router,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::from(body.to_owned())).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, json)
    }

    fn message(v: &Value) -> &str {
        v["error_message"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn refusals_come_in_kasm_shape() {
        let app = app(100).await;
        let keys = r#"{"api_key":"k","api_key_secret":"s"}"#;
        let (status, _, body) = call(&app, Method::GET, "/api/public/get_users", None, "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(message(&body).contains("POST"), "{body}");
        let (status, _, body) = call(&app, Method::POST, "/api/public/nope", None, keys).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(message(&body).contains("nope"), "{body}");
        let (status, _, body) = call(&app, Method::POST, "/api/public/get_users", None, "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(message(&body).contains("api_key"), "{body}");
        let (status, _, body) = call(
            &app,
            Method::POST,
            "/api/public/get_users",
            None,
            r#"{"api_key":"k"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(message(&body).contains("api_key_secret"), "{body}");
        let (status, _, body) = call(
            &app,
            Method::POST,
            "/api/public/get_users",
            None,
            r#"{"api_key":7,"api_key_secret":"s"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message(&body).starts_with("api_key: "), "{body}");
        let (status, _, body) = call(
            &app,
            Method::POST,
            "/api/public/get_users",
            None,
            "not json",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message(&body).starts_with("body: "), "{body}");
        let (status, _, body) = call(
            &app,
            Method::POST,
            "/api/public/get_users",
            Some("Bearer some.jwt.token"),
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        // A well-formed key reaches identity, which is away here.
        let (status, _, body) = call(
            &app,
            Method::POST,
            "/api/public/get_users",
            Some("Basic a2V5OnNlY3JldA=="),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(!message(&body).is_empty(), "{body}");
        let big = format!(
            r#"{{"api_key":"k","api_key_secret":"s","x":"{}"}}"#,
            "a".repeat(2 << 20)
        );
        let (status, _, body) = call(&app, Method::POST, "/api/public/get_users", None, &big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    }

    #[tokio::test]
    async fn each_key_has_its_own_rate_limit() {
        // One call per second, a burst of two.
        let app = app(1).await;
        let body = |key: &str| format!(r#"{{"api_key":"{key}","api_key_secret":"wrong"}}"#);
        for _ in 0..2 {
            let (status, _, _) = call(
                &app,
                Method::POST,
                "/api/public/get_kasms",
                None,
                &body("k1"),
            )
            .await;
            assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
        }
        let (status, headers, answer) = call(
            &app,
            Method::POST,
            "/api/public/get_kasms",
            None,
            &body("k1"),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
        assert!(message(&answer).contains("try again"), "{answer}");
        assert_eq!(
            headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        // The same key over HTTP Basic shares the bucket; another key has its own.
        let (status, _, _) = call(
            &app,
            Method::POST,
            "/api/public/get_kasms",
            Some("Basic azE6d3Jvbmc="),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let (status, _, _) = call(
            &app,
            Method::POST,
            "/api/public/get_kasms",
            None,
            &body("k2"),
        )
        .await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (status, _, _) = call(
            &app,
            Method::POST,
            "/api/public/get_kasms",
            None,
            &body("k1"),
        )
        .await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "refilled");
    }
}
