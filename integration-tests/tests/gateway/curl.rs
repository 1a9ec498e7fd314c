//! The issue's "done means", with the real `curl`: a cookie from `/api/v1/login` launches a
//! session and opens `/session/<id>/` through the gateway; another user gets 404 on that URL.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use atrium_integration_tests::{USER_PASSWORD, demo_image, demo_workspace, user_with_settings};
use serde_json::Value;

use crate::common::Gateway;

/// Runs curl with a cookie jar; the status code and the body.
fn curl(jar: &Path, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The value of `name` in a Netscape cookie jar.
fn jar_cookie(jar: &Path, name: &str) -> String {
    std::fs::read_to_string(jar)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.trim_start_matches("#HttpOnly_").split('\t').collect();
            (fields.len() == 7 && fields[5] == name).then(|| fields[6].to_owned())
        })
        .next()
        .unwrap_or_default()
}

fn login(url: &str, jar: &Path, username: &str) {
    let body = format!(r#"{{"username":"{username}","password":"{USER_PASSWORD}"}}"#);
    let (code, answer) = curl(
        jar,
        &[
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &format!("{url}/api/v1/login"),
        ],
    );
    assert_eq!(code, 200, "{answer}");
}

#[tokio::test]
async fn curl_with_a_login_cookie_launches_and_opens_a_session_another_user_gets_404() {
    if !atrium_service_kit::testing::docker_enabled(
        "curl_with_a_login_cookie_launches_and_opens_a_session_another_user_gets_404",
    ) {
        return;
    }
    let gw = Gateway::start().await;
    let running = gw.sandbox.running();
    let admin = gw.sandbox.admin().expect("admin").clone();
    let image = demo_image().expect("demo image");
    let workspace = demo_workspace(running, &admin, &image, 0.25, 128)
        .await
        .expect("workspace");
    let alice = user_with_settings(running, &admin, "alice", &[])
        .await
        .expect("alice");
    let bob = user_with_settings(running, &admin, "bob", &[])
        .await
        .expect("bob");
    let dir = tempfile::tempdir().expect("dir");
    let (alice_jar, bob_jar) = (dir.path().join("alice"), dir.path().join("bob"));
    let url = gw.url.clone();
    let (session, page, bob_sees, unknown) = tokio::task::spawn_blocking(move || {
        login(&url, &alice_jar, &alice.username);
        let csrf = jar_cookie(&alice_jar, "atrium_csrf");
        assert!(!csrf.is_empty());
        let (code, answer) = curl(
            &alice_jar,
            &[
                "-H",
                "content-type: application/json",
                "-H",
                &format!("x-csrf-token: {csrf}"),
                "-d",
                &format!(r#"{{"workspace_id":"{workspace}"}}"#),
                &format!("{url}/api/v1/sessions"),
            ],
        );
        assert_eq!(code, 200, "{answer}");
        let session: Value = serde_json::from_str(&answer).expect("json");
        let id = session["id"].as_str().expect("id").to_owned();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (_, answer) = curl(&alice_jar, &[&format!("{url}/api/v1/sessions/{id}")]);
            let now: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
            if now["observed_state"] == "OBSERVED_STATE_RUNNING" {
                break;
            }
            assert!(Instant::now() < deadline, "never running: {answer}");
            std::thread::sleep(Duration::from_millis(250));
        }
        // The container's page needs its basic-auth secret: the gateway adds it.
        let (code, page) = curl(&alice_jar, &[&format!("{url}/session/{id}/")]);
        assert_eq!(code, 200, "{page}");
        login(&url, &bob_jar, &bob.username);
        let bob_sees = curl(&bob_jar, &[&format!("{url}/session/{id}/")]);
        let unknown = curl(
            &bob_jar,
            &[&format!("{url}/session/{}/", uuid::Uuid::new_v4())],
        );
        (id, page, bob_sees, unknown)
    })
    .await
    .expect("join");
    assert!(page.contains("Atrium demo workspace"), "{page}");
    assert_eq!(bob_sees.0, 404, "{}", bob_sees.1);
    // No existence oracle: the same answer as for a session that never existed.
    assert_eq!(bob_sees, unknown);
    assert!(!session.is_empty());
}
