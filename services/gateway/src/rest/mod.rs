//! `/api/v1`: the routes of [`routes::ROUTES`] served by transcoding to gRPC, the login routes
//! that set and clear the browser's cookies, Server-Sent Events / WebSocket for watch streams,
//! and the generated OpenAPI document.

pub mod openapi;
pub mod routes;
pub mod transcode;

use std::collections::HashMap;
use std::sync::LazyLock;

use atrium_proto::identity::v1::{
    ChangePasswordRequest, ConfirmTotpRequest, LoginRequest, LoginResponse, LoginStatus,
    LogoutRequest, RefreshRequest,
};
use atrium_service_kit::http::{
    ACCESS_COOKIE, Authenticated, CSRF_COOKIE, HttpError, REFRESH_COOKIE, Via, cookie, presented,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State, WebSocketUpgrade};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use futures::StreamExt as _;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost_reflect::DynamicMessage;
use serde_json::{Value, json};

use crate::backends::Backend;
use crate::{AppState, ClientAddr};
use routes::{Body, LoginAction, ROUTES, Route, Serve};
use transcode::{from_json, method, set_text, to_json};

static OPENAPI: LazyLock<String> = LazyLock::new(|| openapi::document().to_string());

pub fn router() -> Router<AppState> {
    let mut router = Router::new().route(
        "/api/v1/openapi.json",
        axum::routing::get(|| async {
            (
                [(header::CONTENT_TYPE, "application/json")],
                OPENAPI.as_str(),
            )
        }),
    );
    for route in ROUTES.iter() {
        let filter = match MethodFilter::try_from(route.method.clone()) {
            Ok(f) => f,
            Err(_) => continue,
        };
        let handler = move |state: State<AppState>,
                            params: Path<HashMap<String, String>>,
                            query: RawQuery,
                            request: http::Request<axum::body::Body>| {
            handle(route, state, params, query, request)
        };
        router = router.route(route.path, on(filter, handler));
    }
    router
}

async fn handle(
    route: &'static Route,
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    request: http::Request<axum::body::Body>,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("body: larger than {} bytes", state.config.max_body_bytes),
            )
            .into_response();
        }
    };
    match serve(route, &state, &mut parts, params, query, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(
    route: &'static Route,
    state: &AppState,
    parts: &mut Parts,
    params: HashMap<String, String>,
    query: Option<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    if let Serve::Login(action) = route.serve {
        return login(action, state, parts, query, body).await;
    }
    let caller = Authenticated::from_request_parts(parts, state).await?;
    let method = method(route.rpc).ok_or_else(|| HttpError::not_found("route"))?;
    let message = request_message(route, &method.input(), &params, query.as_deref(), &body)?;
    let backend = Backend::of_service(method.parent_service().full_name())
        .ok_or_else(|| HttpError::not_found("route"))?;
    let channel = state.backends.channel(backend)?;
    match route.serve {
        Serve::Stream => {
            let ws = if is_upgrade(&parts.headers) {
                Some(
                    WebSocketUpgrade::from_request_parts(parts, state)
                        .await
                        .map_err(|e| HttpError::invalid("", e.body_text()))?,
                )
            } else {
                None
            };
            let stream =
                transcode::server_stream(channel, &method, message, Some(&caller.credential))
                    .await?;
            Ok(match ws {
                Some(ws) => ws.on_upgrade(|socket| watch_socket(socket, stream)),
                None => sse(stream),
            })
        }
        _ => {
            let response =
                transcode::unary(channel, &method, message, Some(&caller.credential)).await?;
            Ok(axum::Json(to_json(&response)).into_response())
        }
    }
}

/// Builds the RPC's request from the body, the path and the query.
fn request_message(
    route: &Route,
    input: &prost_reflect::MessageDescriptor,
    params: &HashMap<String, String>,
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, HttpError> {
    let mut message = match route.body {
        Body::None => DynamicMessage::new(input.clone()),
        Body::All => from_json(input.clone(), body)?,
        Body::Field(name) => {
            let field = input
                .get_field_by_name(name)
                .ok_or_else(|| HttpError::not_found("route"))?;
            let prost_reflect::Kind::Message(inner) = field.kind() else {
                return Err(HttpError::not_found("route"));
            };
            let value = from_json(inner, body).map_err(|mut e| {
                e.field = if e.field.is_empty() {
                    name.to_owned()
                } else {
                    format!("{name}.{}", e.field)
                };
                e
            })?;
            let mut message = DynamicMessage::new(input.clone());
            message.set_field(&field, prost_reflect::Value::Message(value));
            message
        }
    };
    if route.body == Body::None
        && let Some(query) = query
    {
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            set_text(&mut message, &key, &value)?;
        }
    }
    for param in route.params() {
        if let Some(value) = params.get(param) {
            set_text(&mut message, route.field_of(param), value)
                .map_err(|e| HttpError::invalid(param, e.message))?;
        }
    }
    Ok(message)
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn sse(stream: tonic::Streaming<DynamicMessage>) -> Response {
    let events = stream.map(|item| {
        Ok::<_, std::convert::Infallible>(match item {
            Ok(message) => Event::default().data(to_json(&message).to_string()),
            Err(status) => Event::default()
                .event("error")
                .data(HttpError::from(status).body().to_string()),
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn watch_socket(
    mut socket: axum::extract::ws::WebSocket,
    mut stream: tonic::Streaming<DynamicMessage>,
) {
    use axum::extract::ws::Message;
    loop {
        tokio::select! {
            item = stream.next() => {
                let text = match item {
                    Some(Ok(message)) => to_json(&message).to_string(),
                    Some(Err(status)) => HttpError::from(status).body().to_string(),
                    None => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

// ---------------------------------------------------------------------------------------------
// Signing in and out.

/// The login routes: call identity, then set or clear the cookies.
async fn login(
    action: LoginAction,
    state: &AppState,
    parts: &mut Parts,
    query: Option<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let want_cookies = !query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .any(|(k, v)| k == "cookie" && (v == "false" || v == "0"))
        })
        .unwrap_or(false);
    let response = match action {
        LoginAction::Login => {
            let addr = parts
                .extensions
                .get::<ClientAddr>()
                .map(|a| a.0.ip().to_string())
                .unwrap_or_default();
            if let Err(wait) = state.login_limit.take(&addr) {
                return Ok(crate::limits::too_many(wait, "sign-in attempts"));
            }
            let request: LoginRequest = parse_proto("atrium.identity.v1.LoginRequest", &body)?;
            state
                .backends
                .identity(None)?
                .login(request)
                .await?
                .into_inner()
        }
        LoginAction::Refresh => {
            let mut request: RefreshRequest =
                parse_proto("atrium.identity.v1.RefreshRequest", &body)?;
            let from_cookie = request.refresh_token.is_empty();
            if from_cookie {
                request.refresh_token = cookie(&parts.headers, REFRESH_COOKIE)
                    .unwrap_or_default()
                    .to_owned();
                // A cookie-borne refresh is a state change: it needs the CSRF header too.
                if !atrium_service_kit::http::csrf_ok(&parts.method, &parts.headers) {
                    return Err(csrf_refused());
                }
            }
            if request.refresh_token.is_empty() {
                return Err(HttpError::invalid(
                    "refresh_token",
                    "required (or the refresh cookie)",
                ));
            }
            state
                .backends
                .identity(None)?
                .refresh(request)
                .await?
                .into_inner()
        }
        LoginAction::Logout => {
            let caller = Authenticated::from_request_parts(parts, state).await?;
            let refresh = cookie(&parts.headers, REFRESH_COOKIE)
                .unwrap_or_default()
                .to_owned();
            let ended = state
                .backends
                .identity(Some(&caller.credential))?
                .logout(LogoutRequest {
                    refresh_token: refresh,
                })
                .await?
                .into_inner()
                .ended;
            let mut response = axum::Json(json!({"ended": ended})).into_response();
            clear_cookies(response.headers_mut(), state.secure_cookies);
            return Ok(response);
        }
        LoginAction::ChangePassword => {
            let caller = Authenticated::from_request_parts(parts, state).await?;
            let request: ChangePasswordRequest =
                parse_proto("atrium.identity.v1.ChangePasswordRequest", &body)?;
            let response = state
                .backends
                .identity(Some(&caller.credential))?
                .change_password(request)
                .await?
                .into_inner();
            return Ok(answer(
                response,
                caller.via == Via::Cookie,
                state.secure_cookies,
            ));
        }
        LoginAction::ConfirmTotp => {
            let caller = Authenticated::from_request_parts(parts, state).await?;
            let request: ConfirmTotpRequest =
                parse_proto("atrium.identity.v1.ConfirmTotpRequest", &body)?;
            let response = state
                .backends
                .identity(Some(&caller.credential))?
                .confirm_totp(request)
                .await?
                .into_inner();
            return Ok(answer(
                response,
                caller.via == Via::Cookie,
                state.secure_cookies,
            ));
        }
    };
    let via_cookie = match action {
        LoginAction::Refresh => presented(&parts.headers)
            .ok()
            .flatten()
            .is_none_or(|(_, via)| via == Via::Cookie),
        _ => want_cookies,
    };
    Ok(answer(response, via_cookie, state.secure_cookies))
}

fn csrf_refused() -> HttpError {
    HttpError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        format!(
            "{}: missing or wrong; send the value of the {CSRF_COOKIE} cookie",
            atrium_service_kit::http::CSRF_HEADER
        ),
    )
}

/// Parses a JSON body through the message's descriptor (errors name the field).
fn parse_proto<M: prost::Message + Default>(name: &str, body: &[u8]) -> Result<M, HttpError> {
    let descriptor = transcode::POOL
        .get_message_by_name(name)
        .ok_or_else(|| HttpError::not_found("message type"))?;
    from_json(descriptor, body)?
        .transcode_to::<M>()
        .map_err(|_| HttpError::invalid("", "body does not fit the request"))
}

/// A login answer: with cookies, the tokens go only into HttpOnly cookies; without, into the
/// body for a program to keep.
fn answer(response: LoginResponse, cookies: bool, secure: bool) -> Response {
    let mut body = login_json(&response);
    if !cookies {
        return axum::Json(body).into_response();
    }
    if let Some(map) = body.as_object_mut() {
        map.remove("access_token");
        map.remove("refresh_token");
    }
    let mut out = axum::Json(body).into_response();
    let headers = out.headers_mut();
    if !response.access_token.is_empty() {
        let max_age = response
            .access_token_expires_at
            .map(|t| (t.seconds - chrono::Utc::now().timestamp()).max(0));
        set_cookie(
            headers,
            ACCESS_COOKIE,
            &response.access_token,
            "/",
            true,
            max_age,
            secure,
        );
        let csrf = uuid::Uuid::new_v4().simple().to_string();
        set_cookie(headers, CSRF_COOKIE, &csrf, "/", false, None, secure);
    }
    if response.status == LoginStatus::Success as i32 && !response.refresh_token.is_empty() {
        let max_age = response
            .refresh_token_expires_at
            .map(|t| (t.seconds - chrono::Utc::now().timestamp()).max(0));
        set_cookie(
            headers,
            REFRESH_COOKIE,
            &response.refresh_token,
            "/api/v1/",
            true,
            max_age,
            secure,
        );
    }
    out
}

fn login_json(response: &LoginResponse) -> Value {
    transcode::POOL
        .get_message_by_name("atrium.identity.v1.LoginResponse")
        .and_then(|d| {
            DynamicMessage::decode(d, prost::Message::encode_to_vec(response).as_slice()).ok()
        })
        .map(|m| to_json(&m))
        .unwrap_or(Value::Null)
}

fn set_cookie(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    http_only: bool,
    max_age: Option<i64>,
    secure: bool,
) {
    let mut text = format!("{name}={value}; Path={path}; SameSite=Strict");
    if http_only {
        text.push_str("; HttpOnly");
    }
    if secure {
        text.push_str("; Secure");
    }
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&text) {
        headers.append(header::SET_COOKIE, v);
    }
}

fn clear_cookies(headers: &mut HeaderMap, secure: bool) {
    for (name, path) in [
        (ACCESS_COOKIE, "/"),
        (CSRF_COOKIE, "/"),
        (REFRESH_COOKIE, "/api/v1/"),
    ] {
        set_cookie(headers, name, "", path, true, Some(0), secure);
    }
}
