//! The browser UI as the whole gateway serves it: the shell at `/`, `/go` and deep links with
//! its security headers, beside `/api/v1` (which the UI's paths never shadow), and a running
//! session's proxied page, which the session view frames, carrying nothing that forbids
//! framing by the gateway's own pages.

use std::time::Duration;

use atrium_gateway::ui::{CONTENT_SECURITY_POLICY, UI};
use atrium_integration_tests::{USER_PASSWORD, user_with_settings};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::Gateway;

fn docker(test: &str) -> bool {
    atrium_service_kit::testing::docker_enabled(test)
}

#[tokio::test]
async fn the_gateway_serves_the_shell_beside_the_api() {
    let gw = Gateway::start().await;
    let client = reqwest::Client::new();
    for path in [
        "/",
        "/go?kasm_id=0b1c2d3e-aaaa-bbbb-cccc-123456789abc",
        "/go?workspace_id=x",
        "/login?next=%2Fprofile",
        "/connect/0b1c2d3e-aaaa-bbbb-cccc-123456789abc",
        "/launch/abc",
        "/profile",
        "/admin/users/1",
    ] {
        let response = client
            .get(format!("{}{path}", gw.url))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(
            headers["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let body = response.bytes().await.expect("body");
        assert!(!body.is_empty(), "{path}");
    }
    // An asset, compressed.
    let response = client
        .get(format!("{}/ui/{}/js/app.js", gw.url, UI.version))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("asset");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    // The API keeps its JSON answers; unknown paths keep the JSON 404.
    let response = client
        .get(format!("{}/api/v1/me", gw.url))
        .send()
        .await
        .expect("me");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("content-security-policy").is_none());
    let response = client
        .get(format!("{}/no/such/page", gw.url))
        .send()
        .await
        .expect("404");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(response.text().await.expect("text"), "ok");
}

#[tokio::test]
async fn the_session_page_may_be_framed_by_the_gateway() {
    if !docker("the_session_page_may_be_framed_by_the_gateway") {
        return;
    }
    let gw = Gateway::start().await;
    let running = gw.sandbox.running();
    let admin = gw.sandbox.admin().expect("admin").clone();
    let image = atrium_integration_tests::demo_image().expect("demo image");
    let workspace = atrium_integration_tests::demo_workspace(running, &admin, &image, 0.25, 128)
        .await
        .expect("workspace");
    let user = user_with_settings(running, &admin, "framer", &[])
        .await
        .expect("user");
    let browser = gw.browser(&user.username, USER_PASSWORD).await;
    let (status, session) = browser
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"workspace_id": workspace})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let id = session["id"].as_str().expect("id").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, s) = browser
            .call(Method::GET, &format!("/api/v1/sessions/{id}"), None)
            .await;
        if s["observed_state"] == "OBSERVED_STATE_RUNNING" {
            break;
        }
        assert!(
            s["observed_state"] != "OBSERVED_STATE_FAILED",
            "the session failed: {s}"
        );
        assert!(tokio::time::Instant::now() < deadline, "never ran: {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // What the session view's iframe loads, as the browser loads it (cookies, same origin).
    let response = browser
        .client
        .get(format!("{}/session/{id}/", gw.url))
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .expect("session page");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    if let Some(xfo) = headers.get("x-frame-options") {
        let xfo = xfo.to_str().unwrap_or_default().to_ascii_lowercase();
        assert_eq!(xfo, "sameorigin", "the proxied page forbids framing");
    }
    for csp in headers.get_all("content-security-policy") {
        let csp = csp.to_str().unwrap_or_default();
        if let Some(fa) = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("frame-ancestors"))
        {
            assert!(
                fa.contains("'self'") || fa.contains('*'),
                "the proxied page forbids framing: {csp}"
            );
        }
    }
    let (status, _) = browser
        .call(Method::DELETE, &format!("/api/v1/sessions/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
