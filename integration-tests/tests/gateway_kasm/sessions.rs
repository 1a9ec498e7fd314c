//! Sessions through the Developer API, on real containers: request for a user, poll to running,
//! keepalive, list, other users' sessions, keys without the rights, anonymous users, the
//! user's default image, destroy, and deleting a user with sessions.

use std::time::{Duration, Instant};

use atrium_integration_tests::{demo_image, demo_workspace, user_with_settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::Gateway;
use crate::{FULL, Kasm, api_key, docker};

fn dashless(id: &str) -> String {
    id.replace('-', "")
}

/// Polls get_kasm_status until the session is running; the last answer.
async fn until_running(k: &Kasm, user_id: &str, kasm_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = k
            .ok(
                "get_kasm_status",
                json!({"user_id": user_id, "kasm_id": kasm_id, "skip_agent_check": false}),
            )
            .await;
        assert_eq!(answer["kasm_id"], kasm_id, "{answer}");
        if answer["operational_status"] == "running" {
            return answer;
        }
        assert!(
            !["failed", "deleted", "deleting"]
                .contains(&answer["operational_status"].as_str().unwrap_or_default()),
            "{answer}"
        );
        assert!(Instant::now() < deadline, "not running in time: {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls until get_kasm_status says the session is gone (404).
async fn until_gone(k: &Kasm, kasm_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = k.call("get_kasm_status", json!({"kasm_id": kasm_id})).await;
        if status == StatusCode::NOT_FOUND {
            return;
        }
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            ["deleting", "deleted"]
                .contains(&answer["operational_status"].as_str().unwrap_or_default()),
            "{answer}"
        );
        assert!(Instant::now() < deadline, "not gone in time: {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn sessions_for_users_over_the_developer_api() {
    if !docker("sessions_for_users_over_the_developer_api") {
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
    let full = api_key(&gw, "kasm-sessions", false, FULL, None).await;
    let reader = api_key(&gw, "kasm-watcher", true, &["sessions.view"], None).await;

    // request_kasm for alice (ids without dashes, as Kasm prints them).
    let requested = full
        .ok(
            "request_kasm",
            json!({"user_id": dashless(&alice.id), "image_id": dashless(&workspace),
                "enable_sharing": false, "environment": {"GREETING": "hello"},
                "client_language": "en-US", "connection_info": null}),
        )
        .await;
    let kasm_id = requested["kasm_id"].as_str().expect("kasm_id").to_owned();
    assert_eq!(requested["user_id"], alice.id.as_str());
    assert_eq!(requested["username"], alice.username.as_str());
    assert!(requested["status"].is_string(), "{requested}");
    assert_eq!(requested["share_id"], Value::Null);
    assert_eq!(requested["kasm_url"], format!("/session/{kasm_id}/"));

    let status = until_running(&full, &alice.id, &kasm_id).await;
    let kasm = &status["kasm"];
    assert_eq!(kasm["kasm_id"], kasm_id.as_str());
    assert_eq!(kasm["user_id"], alice.id.as_str());
    assert_eq!(kasm["image_id"], workspace.as_str());
    assert_eq!(kasm["operational_status"], "running");
    assert_eq!(kasm["cores"], 0.25);
    assert_eq!(kasm["memory"], 128_i64 << 20);
    assert!(kasm["start_date"].is_string(), "{status}");
    assert!(kasm["expiration_date"].is_string(), "{status}");
    assert_eq!(status["kasm_url"], format!("/session/{kasm_id}/"));
    assert!(status["current_time"].is_string());

    // Other users' sessions are not theirs.
    let message = full
        .fails(
            "get_kasm_status",
            json!({"user_id": bob.id, "kasm_id": kasm_id}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");
    let message = full
        .fails(
            "destroy_kasm",
            json!({"user_id": bob.id, "kasm_id": kasm_id}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");

    // A key that may only look.
    reader
        .ok("get_kasm_status", json!({"kasm_id": kasm_id}))
        .await;
    let message = reader
        .fails(
            "keepalive",
            json!({"kasm_id": kasm_id}),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(message.contains("sessions.modify"), "{message}");
    let message = reader
        .fails(
            "destroy_kasm",
            json!({"user_id": alice.id, "kasm_id": kasm_id}),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(message.contains("read-only"), "{message}");

    // keepalive, get_kasms, get_user's kasms.
    full.ok("keepalive", json!({"kasm_id": dashless(&kasm_id)}))
        .await;
    full.ok(
        "keepalive",
        json!({"kasm_id": kasm_id, "user_id": alice.id}),
    )
    .await;
    let kasms = full.ok("get_kasms", json!({})).await;
    let listed = kasms["kasms"]
        .as_array()
        .expect("kasms")
        .iter()
        .find(|k| k["kasm_id"] == kasm_id.as_str())
        .unwrap_or_else(|| panic!("missing from get_kasms: {kasms}"))
        .clone();
    assert_eq!(listed["user_id"], alice.id.as_str());
    assert_eq!(listed["image_id"], workspace.as_str());
    assert!(listed["keepalive_date"].is_string(), "{listed}");
    let got = full
        .ok("get_user", json!({"target_user": {"user_id": alice.id}}))
        .await;
    assert!(
        got["user"]["kasms"]
            .as_array()
            .expect("kasms")
            .iter()
            .any(|k| k["kasm_id"] == kasm_id.as_str()),
        "{got}"
    );

    // exec_command_kasm: a key holding sessions.exec runs a command in the container; one
    // without it is refused, naming the permission.
    let exec = json!({"user_id": alice.id, "kasm_id": kasm_id,
        "exec_config": {"cmd": "true", "workdir": "/tmp", "privileged": false,
            "environment": null, "user": null}});
    let ran = full.ok("exec_command_kasm", exec.clone()).await;
    assert_eq!(ran["kasm_id"], kasm_id.as_str(), "{ran}");
    let no_exec: Vec<&str> = FULL
        .iter()
        .copied()
        .filter(|p| *p != "sessions.exec")
        .collect();
    let without = api_key(&gw, "kasm-no-exec", false, &no_exec, None).await;
    let (status, answer) = without.call("exec_command_kasm", exec).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        answer["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("sessions.exec")),
        "{answer}"
    );
    let message = full
        .fails(
            "exec_command_kasm",
            json!({"user_id": alice.id, "kasm_id": kasm_id, "exec_config": {"cmd": 5}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("exec_config.cmd"), "{message}");

    // A user with a session is deleted only with force.
    let message = full
        .fails(
            "delete_user",
            json!({"target_user": {"user_id": alice.id}, "force": false}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(message.contains("force"), "{message}");

    // destroy_kasm: {} at once, then deleting, then not found.
    full.ok(
        "destroy_kasm",
        json!({"user_id": dashless(&alice.id), "kasm_id": dashless(&kasm_id)}),
    )
    .await;
    until_gone(&full, &kasm_id).await;

    // Without image_id: the user's default image (none yet: refused, saying so).
    let (status, answer) = full.call("request_kasm", json!({"user_id": bob.id})).await;
    assert!(status.is_client_error(), "{status} {answer}");
    assert!(
        answer["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("default")),
        "{answer}"
    );
    full.ok(
        "update_user_attributes",
        json!({"target_user_attributes": {"user_id": bob.id, "default_image": workspace}}),
    )
    .await;
    let bobs = full.ok("request_kasm", json!({"user_id": bob.id})).await;
    let bobs_id = bobs["kasm_id"].as_str().expect("kasm_id").to_owned();

    // Without user_id: an anonymous user is made for the session.
    let anon = full
        .ok("request_kasm", json!({"image_id": workspace}))
        .await;
    let anon_id = anon["kasm_id"].as_str().expect("kasm_id").to_owned();
    assert!(
        anon["username"]
            .as_str()
            .is_some_and(|u| u.starts_with("anon-")),
        "{anon}"
    );
    let anon_user = anon["user_id"].as_str().expect("user_id").to_owned();
    until_running(&full, &anon_user, &anon_id).await;
    full.ok(
        "delete_user",
        json!({"target_user": {"user_id": anon_user}, "force": true}),
    )
    .await;
    until_gone(&full, &anon_id).await;

    // delete_user with force ends the user's sessions too.
    full.ok(
        "delete_user",
        json!({"target_user": {"user_id": bob.id}, "force": true}),
    )
    .await;
    until_gone(&full, &bobs_id).await;
    full.fails(
        "get_user",
        json!({"target_user": {"user_id": bob.id}}),
        StatusCode::NOT_FOUND,
    )
    .await;
    gw.sandbox.stop().await.expect("stop");
}
