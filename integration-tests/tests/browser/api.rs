//! The gateway's browser contract, before any UI: a login cookie set by `/api/v1/login` in a
//! real browser, state changes refused without the CSRF header, and another user's session
//! URL answering 404.

use std::time::Duration;

use atrium_integration_tests::{ADMIN_PASSWORD, USER_PASSWORD};
use serde_json::json;

use crate::common::{demo, launch_from_page, user, wait_state};
use crate::driver::{Chrome, browser_enabled};
use crate::stack::Gateway;

#[tokio::test]
async fn a_post_without_the_csrf_header_is_refused_and_with_it_succeeds() {
    let Some(programs) =
        browser_enabled("a_post_without_the_csrf_header_is_refused_and_with_it_succeeds")
    else {
        return;
    };
    let gw = Gateway::start().await;
    let chrome = Chrome::start(&programs, &gw.url).await;
    chrome.api_login("admin", ADMIN_PASSWORD).await;
    // The access token is HttpOnly; the page sees only the CSRF value.
    let cookies = chrome.js("return document.cookie", vec![]).await;
    let cookies = cookies.as_str().unwrap_or_default();
    assert!(cookies.contains("atrium_csrf="), "{cookies}");
    assert!(!cookies.contains("atrium_access"), "{cookies}");
    let (status, me) = chrome.fetch("GET", "/api/v1/me", None, false).await;
    assert_eq!(status, 200, "a GET needs no CSRF header: {me}");

    let group = json!({"name": "browser-csrf", "priority": 50});
    let (status, body) = chrome
        .fetch("POST", "/api/v1/groups", Some(group.clone()), false)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "csrf", "{body}");
    let (_, groups) = chrome
        .fetch(
            "GET",
            "/api/v1/groups?name_contains=browser-csrf",
            None,
            false,
        )
        .await;
    assert_eq!(
        groups["groups"].as_array().map(Vec::len),
        Some(0),
        "{groups}"
    );

    let (status, body) = chrome
        .fetch("POST", "/api/v1/groups", Some(group), true)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "browser-csrf", "{body}");
    chrome.close().await;
}

#[tokio::test]
async fn another_user_gets_404_on_a_session_url_in_the_browser() {
    let test = "another_user_gets_404_on_a_session_url_in_the_browser";
    let Some(programs) = browser_enabled(test) else {
        return;
    };
    if !atrium_integration_tests::docker_enabled(test) {
        return;
    }
    let gw = Gateway::start().await;
    let (workspace, _) = demo(&gw).await;
    let alice = user(&gw, "alice", &[]).await;
    let bob = user(&gw, "bob", &[]).await;

    let chrome = Chrome::start(&programs, &gw.url).await;
    chrome.api_login(&alice.username, USER_PASSWORD).await;
    let id = launch_from_page(&chrome, &workspace).await;
    // The owner sees the workspace's own page through the gateway.
    chrome.goto(&format!("/session/{id}/")).await;
    assert_eq!(chrome.navigation_status().await, 200);
    let text = chrome.body_text().await;
    assert!(text.contains("Atrium demo workspace"), "{text}");

    // Bob, in a browser of his own, gets a 404 that says no more than for a made-up id.
    let other = Chrome::start(&programs, &gw.url).await;
    other.api_login(&bob.username, USER_PASSWORD).await;
    other.goto(&format!("/session/{id}/")).await;
    assert_eq!(other.navigation_status().await, 404);
    let seen = other.body_text().await;
    assert!(!seen.contains("Atrium demo workspace"), "{seen}");
    other
        .goto(&format!("/session/{}/", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(other.navigation_status().await, 404);
    assert_eq!(other.body_text().await, seen, "no existence oracle");
    // Nor can his page's scripts reach it.
    let (status, _) = other
        .fetch("GET", &format!("/session/{id}/"), None, false)
        .await;
    assert_eq!(status, 404);
    other.close().await;

    let (status, body) = chrome
        .fetch("DELETE", &format!("/api/v1/sessions/{id}"), None, true)
        .await;
    assert_eq!(status, 200, "{body}");
    wait_state(
        &chrome,
        &id,
        "OBSERVED_STATE_DELETED",
        Duration::from_secs(60),
    )
    .await;
    chrome.close().await;
}
