//! `/api/v1` against the real services: browsers with cookies and CSRF, programs with tokens and
//! API keys, every route's refusal of the anonymous and its answer to bad input, rate limits,
//! and a session's whole life over HTTP.

use std::time::{Duration, Instant};

use atrium_gateway::rest::routes::{ROUTES, Serve};
use atrium_integration_tests::{ADMIN_PASSWORD, USER_PASSWORD, user_with_settings};
use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Gateway, Program, error, raw};

fn docker(test: &str) -> bool {
    atrium_service_kit::testing::docker_enabled(test)
}

#[tokio::test]
async fn a_browser_signs_in_with_cookies_and_every_change_needs_the_csrf_header() {
    let gw = Gateway::start().await;
    let browser = gw.admin_browser().await;
    let (status, me) = browser.call(Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_admin"], true);

    // A state change without the header (a forged cross-site POST) is refused, and nothing
    // is created.
    let group = json!({"name": "csrf-test", "priority": 50});
    let (status, body) = browser
        .forged(Method::POST, "/api/v1/groups", Some(group.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error(&body).0, "csrf");
    let (_, groups) = browser
        .call(Method::GET, "/api/v1/groups?name_contains=csrf-test", None)
        .await;
    assert_eq!(
        groups["groups"].as_array().map(Vec::len),
        Some(0),
        "{groups}"
    );
    // A wrong token is as bad as none.
    let (status, _) = raw(
        &browser.client,
        Method::POST,
        &format!("{}/api/v1/groups", gw.url),
        Some(group.clone()),
        &[("x-csrf-token", "not-the-cookie")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = browser
        .call(Method::POST, "/api/v1/groups", Some(group))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["name"], "csrf-test");

    // The login answer keeps the tokens out of the page's reach.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/login", gw.url))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .collect();
    let body: Value = response.json().await.expect("json");
    assert!(body.get("access_token").is_none(), "{body}");
    assert_eq!(body["status"], "LOGIN_STATUS_SUCCESS");
    let access = cookies
        .iter()
        .find(|c| c.starts_with("atrium_access="))
        .expect("access cookie");
    assert!(
        access.contains("HttpOnly") && access.contains("SameSite=Strict"),
        "{access}"
    );
    assert!(
        !access.contains("Secure"),
        "plain HTTP on loopback: {access}"
    );
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("atrium_csrf="))
        .expect("csrf cookie");
    assert!(!csrf.contains("HttpOnly"), "the page must read it: {csrf}");

    // Refresh from the cookie (with the CSRF header), then log out: the cookie stops working.
    let (status, refreshed) = browser.call(Method::POST, "/api/v1/refresh", None).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, _) = browser.call(Method::POST, "/api/v1/logout", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = browser.call(Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field_and_never_a_5xx() {
    let gw = Gateway::start_with(|c| c.tune_gateway(|g| g.max_body_bytes = 4096)).await;
    let admin = gw.admin_program().await;
    let cases: Vec<(Method, &str, Value, StatusCode, &str)> = vec![
        // Wrong type, deep inside.
        (
            Method::POST,
            "/api/v1/sessions",
            json!({"workspace_id": "x", "options": {"zone_id": 5}}),
            StatusCode::BAD_REQUEST,
            "options.zone_id",
        ),
        // Unknown field.
        (
            Method::POST,
            "/api/v1/groups",
            json!({"name": "g", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "",
        ),
        // Missing field: the service names it.
        (
            Method::POST,
            "/api/v1/users",
            json!({"password": "long enough password"}),
            StatusCode::BAD_REQUEST,
            "username",
        ),
        // An id that is not one.
        (
            Method::GET,
            "/api/v1/users/not-a-uuid",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "user_id",
        ),
        // A bad enum in the query.
        (
            Method::GET,
            "/api/v1/sessions?observed_state=flying",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "observed_state",
        ),
        (
            Method::GET,
            "/api/v1/sessions?page.page_size=lots",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "page.page_size",
        ),
        (
            Method::GET,
            "/api/v1/sessions?nope=1",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "nope",
        ),
    ];
    for (method, path, body, want, field) in cases {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = admin.call(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        let (code, got_field) = error(&answer);
        assert_eq!(code, "invalid_field", "{method} {path}: {answer}");
        if !field.is_empty() {
            assert_eq!(got_field, field, "{method} {path}: {answer}");
        }
    }
    // Malformed JSON, not an object, trailing garbage, oversized.
    let client = reqwest::Client::new();
    for body in ["{", "[1,2]", "{} {}", "\"text\"", "nul"] {
        let response = client
            .post(format!("{}/api/v1/groups", gw.url))
            .header("authorization", &admin.authorization)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let response = client
        .post(format!("{}/api/v1/groups", gw.url))
        .header("authorization", &admin.authorization)
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(10_000)))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = response.json().await.expect("json error");
    assert_eq!(error(&answer).0, "too_large");
    // Unknown ids and routes.
    let (status, answer) = admin
        .call(
            Method::GET,
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = admin.call(Method::GET, "/api/v1/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&answer).0, "not_found");
    // A method the route does not have.
    let (status, _) = admin.call(Method::PATCH, "/api/v1/sessions", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A value for a path parameter that names nothing (so nothing is changed).
fn placeholder(param: &str) -> String {
    match param {
        "name" => "max_kasms_per_user".into(),
        "permission" => "users.view".into(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

#[tokio::test]
async fn every_route_refuses_the_anonymous_and_answers_the_admin_without_a_5xx() {
    let gw = Gateway::start().await;
    let admin = gw.admin_program().await;
    let anonymous = reqwest::Client::new();
    let mut checked = 0;
    for route in ROUTES.iter() {
        let path = route.params().fold(route.path.to_owned(), |p, param| {
            p.replace(&format!("{{{param}}}"), &placeholder(param))
        });
        let body = (route.body != atrium_gateway::rest::routes::Body::None).then(|| json!({}));
        if route.authenticated() {
            let (status, answer) = raw(
                &anonymous,
                route.method.clone(),
                &format!("{}{path}", gw.url),
                body.clone(),
                &[],
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {path}: {answer}",
                route.method
            );
            assert_eq!(
                error(&answer).0,
                "unauthenticated",
                "{} {path}",
                route.method
            );
        }
        // Routes that would end the admin's login or change signing keys are left out here.
        let disruptive = matches!(
            route.rpc.rsplit('/').next(),
            Some("Logout" | "LogoutEverywhere" | "RotateSigningKey")
        );
        if disruptive || route.serve == Serve::Stream {
            continue;
        }
        let (status, answer) = admin.call(route.method.clone(), &path, body).await;
        assert!(
            !status.is_server_error(),
            "{} {path}: {status} {answer}",
            route.method
        );
        if !status.is_success() {
            assert!(
                !error(&answer).0.is_empty(),
                "{} {path}: errors have the JSON shape: {answer}",
                route.method
            );
        }
        checked += 1;
    }
    assert!(checked > 60, "{checked}");
    // The document is served and names every route.
    let (status, doc) = raw(
        &anonymous,
        Method::GET,
        &format!("{}/api/v1/openapi.json", gw.url),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["paths"].as_object().map(|p| p.len()),
        Some(
            ROUTES
                .iter()
                .map(|r| r.path)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        )
    );
}

#[tokio::test]
async fn programs_use_bearer_tokens_and_api_keys_within_their_rights() {
    let gw = Gateway::start().await;
    let admin = gw.admin_program().await;
    let (status, key) = admin
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "reader", "read_only": true, "permissions": ["users.view"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let id = key["api_key"]["id"].as_str().expect("id");
    let secret = key["secret"].as_str().expect("secret");
    let reader = Program::with_api_key(&gw.url, id, secret);
    let (status, users) = reader.call(Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let (status, answer) = reader
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "by-reader", "password": "a long password 123"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    // HTTP Basic id:secret works too.
    let (status, _) = raw(
        &reqwest::Client::new(),
        Method::GET,
        &format!("{}/api/v1/users", gw.url),
        None,
        &[(
            "authorization",
            &format!(
                "Basic {}",
                base64_encode(format!("{id}:{secret}").as_bytes())
            ),
        )],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A wrong secret, a made-up bearer token.
    let wrong = Program::with_api_key(&gw.url, id, "wrong");
    assert_eq!(
        wrong.call(Method::GET, "/api/v1/users", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let forged = Program {
        base: gw.url.clone(),
        authorization: "Bearer eyJhbGciOiJFZERTQSJ9.e30.AAAA".into(),
    };
    assert_eq!(
        forged.call(Method::GET, "/api/v1/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Revoked: refused.
    let (status, _) = admin
        .call(Method::DELETE, &format!("/api/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = reader.call(Method::GET, "/api/v1/users", None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a revoked key still works: {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_address() {
    let gw = Gateway::start_with(|c| c.tune_gateway(|g| g.login_per_minute = 3)).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = client
            .post(format!("{}/api/v1/login", gw.url))
            .json(&json!({"username": "admin", "password": "wrong password"}))
            .send()
            .await
            .expect("send");
        statuses.push((
            response.status(),
            response.headers().get("retry-after").is_some(),
        ));
    }
    assert_eq!(statuses[0].0, StatusCode::UNAUTHORIZED, "{statuses:?}");
    assert_eq!(statuses[2].0, StatusCode::UNAUTHORIZED, "{statuses:?}");
    assert_eq!(
        statuses[3],
        (StatusCode::TOO_MANY_REQUESTS, true),
        "{statuses:?}"
    );
    assert_eq!(statuses[4].0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_forced_password_change_gives_a_restricted_login_until_it_is_done() {
    let gw = Gateway::start().await;
    let admin = gw.admin_program().await;
    let (status, user) = admin
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "newcomer", "password": USER_PASSWORD, "force_password_reset": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let response = client
        .post(format!("{}/api/v1/login", gw.url))
        .json(&json!({"username": "newcomer", "password": USER_PASSWORD}))
        .send()
        .await
        .expect("login");
    let csrf = response
        .cookies()
        .find(|c| c.name() == "atrium_csrf")
        .map(|c| c.value().to_owned())
        .expect("csrf");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["status"], "LOGIN_STATUS_PASSWORD_CHANGE_REQUIRED",
        "{body}"
    );
    let h = [("x-csrf-token", csrf.as_str())];
    let (status, _) = raw(
        &client,
        Method::GET,
        &format!("{}/api/v1/me/workspaces", gw.url),
        None,
        &h,
    )
    .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
    let (status, changed) = raw(
        &client,
        Method::POST,
        &format!("{}/api/v1/me/password", gw.url),
        Some(json!({"old_password": USER_PASSWORD, "new_password": "a brand new passphrase 42"})),
        &h,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["status"], "LOGIN_STATUS_SUCCESS");
    let (status, me) = raw(
        &client,
        Method::GET,
        &format!("{}/api/v1/me", gw.url),
        None,
        &h,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["scope"], "full");
}

/// Reads Server-Sent Events until `done` says so (or the deadline passes).
async fn watch_until(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut request = client.get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("watch");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, stream.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for line in event.lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    let value: Value = serde_json::from_str(data.trim()).expect("json event");
                    let finished = done(&value);
                    seen.push(value);
                    if finished {
                        return seen;
                    }
                }
            }
        }
    }
    panic!("the watch ended without reaching the state: {seen:?}");
}

#[tokio::test]
async fn a_session_lives_its_life_over_http_and_stays_private() {
    if !docker("a_session_lives_its_life_over_http_and_stays_private") {
        return;
    }
    let gw = Gateway::start().await;
    let running = gw.sandbox.running();
    let admin_cred = gw.sandbox.admin().expect("admin").clone();
    let image = atrium_integration_tests::demo_image().expect("demo image");
    let workspace =
        atrium_integration_tests::demo_workspace(running, &admin_cred, &image, 0.25, 128)
            .await
            .expect("workspace");
    let alice = user_with_settings(running, &admin_cred, "alice", &[])
        .await
        .expect("alice");
    let bob = user_with_settings(running, &admin_cred, "bob", &[])
        .await
        .expect("bob");
    let browser = gw.browser(&alice.username, USER_PASSWORD).await;
    let (status, launchable) = browser
        .call(Method::GET, "/api/v1/me/workspaces", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        launchable["workspaces"]
            .as_array()
            .expect("list")
            .iter()
            .any(|w| w["id"] == workspace.as_str()),
        "{launchable}"
    );
    let (status, session) = browser
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"workspace_id": workspace})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let id = session["id"].as_str().expect("id").to_owned();
    let csrf = browser.csrf();
    let events = watch_until(
        &browser.client,
        &format!("{}/api/v1/sessions/{id}/watch", gw.url),
        &[("x-csrf-token", csrf.as_str())],
        |s| s["observed_state"] == "OBSERVED_STATE_RUNNING",
    )
    .await;
    assert!(events.len() >= 2, "progress is pushed: {events:?}");
    let (status, kept) = browser
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{id}/keepalive"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    let (status, explained) = browser
        .call(Method::GET, &format!("/api/v1/sessions/{id}/explain"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{explained}");
    assert_eq!(explained["ending_rule"], "keepalive");

    // Another user: the session does not exist for them, whatever they try.
    let other = gw.browser(&bob.username, USER_PASSWORD).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/sessions/{id}")),
        (Method::POST, format!("/api/v1/sessions/{id}/keepalive")),
        (Method::POST, format!("/api/v1/sessions/{id}/stop")),
        (Method::DELETE, format!("/api/v1/sessions/{id}")),
        (Method::GET, format!("/api/v1/sessions/{id}/explain")),
    ] {
        let (status, answer) = other.call(method.clone(), &path, None).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "{method} {path}: {status} {answer}"
        );
    }
    let (status, listed) = other.call(Method::GET, "/api/v1/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed["sessions"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let (status, listed) = other
        .call(Method::GET, "/api/v1/sessions?all_users=true", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{listed}");

    // Delete: the watch ends with the session gone.
    let (status, deleting) = browser
        .call(Method::DELETE, &format!("/api/v1/sessions/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deleting}");
    watch_until(
        &browser.client,
        &format!("{}/api/v1/sessions/{id}/watch", gw.url),
        &[],
        |s| s["observed_state"] == "OBSERVED_STATE_DELETED",
    )
    .await;
}

#[tokio::test]
async fn a_watch_is_also_a_websocket_of_json_frames() {
    if !docker("a_watch_is_also_a_websocket_of_json_frames") {
        return;
    }
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let gw = Gateway::start().await;
    let running = gw.sandbox.running();
    let admin_cred = gw.sandbox.admin().expect("admin").clone();
    let image = atrium_integration_tests::demo_image().expect("demo image");
    let workspace =
        atrium_integration_tests::demo_workspace(running, &admin_cred, &image, 0.25, 128)
            .await
            .expect("workspace");
    let carol = user_with_settings(running, &admin_cred, "carol", &[])
        .await
        .expect("carol");
    let program = gw.program(&carol.username, USER_PASSWORD).await;
    let (status, session) = program
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"workspace_id": workspace})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let id = session["id"].as_str().expect("id");
    let ws_url = format!(
        "{}/api/v1/sessions/{id}/watch",
        gw.url.replacen("http://", "ws://", 1)
    );
    let mut request = ws_url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        program.authorization.parse().expect("header"),
    );
    let host = gw.url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    let (mut socket, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("upgrade");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut states = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a running state in time")
            .expect("frame")
            .expect("frame ok");
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).expect("json frame");
            states.push(
                value["observed_state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            if value["observed_state"] == "OBSERVED_STATE_RUNNING" {
                break;
            }
        }
    }
    assert!(states.len() >= 2, "{states:?}");
    let (status, _) = program
        .call(Method::DELETE, &format!("/api/v1/sessions/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn agents_are_listed_and_drained_only_with_their_permissions() {
    if !docker("agents_are_listed_and_drained_only_with_their_permissions") {
        return;
    }
    let gw = Gateway::start().await;
    let admin = gw.admin_program().await;
    let agent_id = gw.sandbox.agent_id().expect("agent").to_owned();
    let (status, listed) = admin.call(Method::GET, "/api/v1/agents", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let agent = listed["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent_id"] == agent_id.as_str())
        .cloned()
        .expect("the sandbox's agent");
    assert_eq!(agent["state"], "active", "{agent}");
    assert!(
        agent["capacity"]["cores"].as_f64().unwrap_or_default() > 0.0,
        "{agent}"
    );

    let running = gw.sandbox.running();
    let admin_cred = gw.sandbox.admin().expect("admin").clone();
    let dave = user_with_settings(running, &admin_cred, "dave", &[])
        .await
        .expect("dave");
    let user = gw.program(&dave.username, USER_PASSWORD).await;
    let (status, _) = user.call(Method::GET, "/api/v1/agents", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = user
        .call(
            Method::POST,
            &format!("/api/v1/agents/{agent_id}/drain"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = admin
        .call(
            Method::POST,
            "/api/v1/agents/no-such-agent/drain",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, drained) = admin
        .call(
            Method::POST,
            &format!("/api/v1/agents/{agent_id}/drain"),
            Some(json!({"deadline_secs": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{drained}");
    assert_eq!(drained["state"], "draining", "{drained}");
}
