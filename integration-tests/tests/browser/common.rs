//! What the browser scenarios share: the stack with a browser on it, users, the demo
//! workspace, and a session launched over the API and waited on.

use std::time::{Duration, Instant};

use atrium_integration_tests::{TestUser, demo_image, demo_workspace, user_with_settings};
use serde_json::{Value, json};

use crate::driver::Chrome;
use crate::stack::Gateway;

/// A user of the stack with `settings` in a group of their own.
pub async fn user(gw: &Gateway, name: &str, settings: &[(&str, &str)]) -> TestUser {
    let admin = gw.sandbox.admin().expect("admin").clone();
    user_with_settings(gw.sandbox.running(), &admin, name, settings)
        .await
        .expect("create the user")
}

/// The demo workspace (built once per checkout), assigned to All Users: its id and its name
/// (the image, which the dashboard's cards carry in `data-workspace`).
pub async fn demo(gw: &Gateway) -> (String, String) {
    let admin = gw.sandbox.admin().expect("admin").clone();
    let image = tokio::task::spawn_blocking(demo_image)
        .await
        .expect("join")
        .expect("demo image");
    let id = demo_workspace(gw.sandbox.running(), &admin, &image, 0.25, 128)
        .await
        .expect("workspace");
    (id, image)
}

/// Requests a session of `workspace` from the page (cookie and CSRF header) and waits until
/// it runs; its id.
pub async fn launch_from_page(chrome: &Chrome, workspace: &str) -> String {
    let (status, session) = chrome
        .fetch(
            "POST",
            "/api/v1/sessions",
            Some(json!({"workspace_id": workspace})),
            true,
        )
        .await;
    assert_eq!(status, 200, "{session}");
    let id = session["id"].as_str().expect("session id").to_owned();
    wait_state(
        chrome,
        &id,
        "OBSERVED_STATE_RUNNING",
        Duration::from_secs(120),
    )
    .await;
    id
}

/// Deletes the session from the page (with the CSRF header) and waits until it is deleted.
pub async fn delete_and_wait(chrome: &Chrome, id: &str, timeout: Duration) {
    let (status, body) = chrome
        .fetch("DELETE", &format!("/api/v1/sessions/{id}"), None, true)
        .await;
    assert_eq!(status, 200, "{body}");
    wait_state(chrome, id, "OBSERVED_STATE_DELETED", timeout).await;
}

/// Polls the session from the page until its observed state is `state`.
pub async fn wait_state(chrome: &Chrome, id: &str, state: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, now) = chrome
            .fetch("GET", &format!("/api/v1/sessions/{id}"), None, false)
            .await;
        if now["observed_state"] == state {
            return now;
        }
        assert!(Instant::now() < deadline, "never {state}: {now}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
