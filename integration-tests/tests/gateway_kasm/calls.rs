//! The user, attribute, group and image calls; keys and their refusals; bad input; the rate
//! limit. No containers are needed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Gateway, raw};
use crate::{FULL, Kasm, api_key};

fn dashless(id: &str) -> String {
    id.replace('-', "")
}

#[tokio::test]
async fn users_groups_attributes_and_images_with_every_refusal() {
    let gw = Gateway::start().await;
    let admin_cred = gw.sandbox.admin().expect("admin").clone();
    let workspace = atrium_integration_tests::demo_workspace(
        gw.sandbox.running(),
        &admin_cred,
        "atrium/workspace-demo:latest",
        0.5,
        256,
    )
    .await
    .expect("workspace");
    let full = api_key(&gw, "kasm-full", false, FULL, None).await;

    // create_user: nulls for optional fields, extras ignored, the user object back.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let username = format!("kasm-{suffix}@example.test");
    let created = full
        .ok(
            "create_user",
            json!({"target_user": {
                "username": username, "password": "a long password 123",
                "first_name": "Kasm", "last_name": null, "phone": null, "organization": null,
                "locked": false, "disabled": false, "favourite_colour": "teal"},
                "client_extra": {"x": 1}}),
        )
        .await;
    let user = &created["user"];
    let user_id = user["user_id"].as_str().expect("user_id").to_owned();
    assert_eq!(user["username"], username);
    assert_eq!(user["first_name"], "Kasm");
    assert_eq!(user["last_name"], Value::Null);
    assert_eq!(user["realm"], "local");
    let created_at = user["created"].as_str().expect("created date");
    assert!(
        chrono::NaiveDateTime::parse_from_str(created_at, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{created_at}"
    );
    assert_eq!(user["last_session"], Value::Null);
    assert!(
        user["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "All Users"),
        "{user}"
    );

    // Refusals of create_user.
    let message = full
        .fails(
            "create_user",
            json!({"target_user": {"username": username, "password": "a long password 123"}}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(message.contains("exist"), "{message}");
    let message = full
        .fails(
            "create_user",
            json!({"target_user": {"password": "x"}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("target_user.username"), "{message}");
    let message = full
        .fails(
            "create_user",
            json!({"target_user": {"username": "typed", "locked": "yes"}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("target_user.locked"), "{message}");
    let message = full
        .fails("create_user", json!({}), StatusCode::BAD_REQUEST)
        .await;
    assert!(message.starts_with("target_user"), "{message}");
    let message = full
        .fails(
            "create_user",
            json!({"target_user": {"username": "nopass"}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("target_user.password"), "{message}");

    // get_user by dashless id and by username; get_users.
    let got = full
        .ok(
            "get_user",
            json!({"target_user": {"user_id": dashless(&user_id)}}),
        )
        .await;
    assert_eq!(got["user"]["user_id"], user_id.as_str());
    assert_eq!(got["user"]["kasms"], json!([]));
    let got = full
        .ok("get_user", json!({"target_user": {"username": username}}))
        .await;
    assert_eq!(got["user"]["user_id"], user_id.as_str());
    let missing = uuid::Uuid::new_v4().to_string();
    let message = full
        .fails(
            "get_user",
            json!({"target_user": {"user_id": missing}}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");
    let message = full
        .fails(
            "get_user",
            json!({"target_user": {"user_id": "not-an-id"}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("target_user.user_id"), "{message}");
    let users = full.ok("get_users", json!({})).await;
    assert!(
        users["users"]
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["user_id"] == user_id.as_str()),
        "{users}"
    );

    // update_user, with a new password.
    let updated = full
        .ok(
            "update_user",
            json!({"target_user": {"user_id": user_id, "first_name": "Renamed",
                "organization": "Atrium", "password": "another long password 456"}}),
        )
        .await;
    assert_eq!(updated["user"]["first_name"], "Renamed");
    assert_eq!(updated["user"]["organization"], "Atrium");
    assert!(
        gw.sandbox
            .login(&username, "another long password 456")
            .await
            .is_ok()
    );
    let message = full
        .fails(
            "update_user",
            json!({"target_user": {"user_id": missing, "first_name": "x"}}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");

    // Attributes: every key; a change; bad values named.
    let attrs = full
        .ok(
            "get_attributes",
            json!({"target_user": {"user_id": user_id}}),
        )
        .await;
    let a = &attrs["user_attributes"];
    for key in [
        "user_attributes_id",
        "ssh_public_key",
        "show_tips",
        "theme",
        "preferred_language",
        "preferred_timezone",
        "toggle_control_panel",
        "default_image",
        "auto_login_kasm",
    ] {
        assert!(a.get(key).is_some(), "{key} missing: {attrs}");
    }
    full.ok(
        "update_user_attributes",
        json!({"target_user_attributes": {"user_id": user_id, "theme": "Dark",
            "show_tips": false, "default_image": dashless(&workspace),
            "preferred_language": null, "ssh_public_key": null}}),
    )
    .await;
    let attrs = full
        .ok(
            "get_attributes",
            json!({"target_user": {"user_id": user_id}}),
        )
        .await;
    assert_eq!(attrs["user_attributes"]["theme"], "Dark");
    assert_eq!(attrs["user_attributes"]["show_tips"], false);
    assert_eq!(
        attrs["user_attributes"]["default_image"],
        workspace.as_str()
    );
    let message = full
        .fails(
            "update_user_attributes",
            json!({"target_user_attributes": {"user_id": user_id, "theme": "Pink"}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        message.starts_with("target_user_attributes.theme"),
        "{message}"
    );
    let message = full
        .fails(
            "update_user_attributes",
            json!({"target_user_attributes": {"user_id": user_id, "show_tips": "no"}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        message.starts_with("target_user_attributes.show_tips"),
        "{message}"
    );

    // Groups.
    let group = full
        .ok(
            "create_group",
            json!({"target_group": {"name": format!("kasm-group-{suffix}"),
                "description": "made over the Developer API", "priority": 50}}),
        )
        .await;
    let group_id = group["group"]["group_id"]
        .as_str()
        .expect("group id")
        .to_owned();
    let groups = full.ok("get_groups", json!({})).await;
    assert!(
        groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["group_id"] == group_id.as_str()),
        "{groups}"
    );
    full.ok(
        "add_user_group",
        json!({"target_user": {"user_id": user_id}, "target_group": {"group_id": dashless(&group_id)}}),
    )
    .await;
    let got = full
        .ok("get_user", json!({"target_user": {"user_id": user_id}}))
        .await;
    assert!(
        got["user"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["group_id"] == group_id.as_str()),
        "{got}"
    );
    full.ok(
        "remove_user_group",
        json!({"target_user": {"user_id": user_id}, "target_group": {"group_id": group_id}}),
    )
    .await;
    let message = full
        .fails(
            "add_user_group",
            json!({"target_user": {"user_id": user_id}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("target_group"), "{message}");
    let renamed = full
        .ok(
            "update_group",
            json!({"target_group": {"group_id": group_id, "description": "renamed"}}),
        )
        .await;
    assert_eq!(renamed["group"]["description"], "renamed");
    full.ok(
        "delete_group",
        json!({"target_group": {"group_id": group_id}}),
    )
    .await;
    let message = full
        .fails(
            "delete_group",
            json!({"target_group": {"group_id": group_id}}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");

    // Images.
    let images = full.ok("get_images", json!({})).await;
    let image = images["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["image_id"] == workspace.as_str())
        .unwrap_or_else(|| panic!("workspace missing: {images}"))
        .clone();
    assert_eq!(image["name"], "atrium/workspace-demo:latest");
    assert_eq!(image["cores"], 0.5);
    assert_eq!(image["memory"], 256_i64 << 20);
    assert_eq!(image["image_type"], "Container");

    // Sessions that do not exist; sharing.
    let message = full
        .fails(
            "get_kasm_status",
            json!({"user_id": user_id, "kasm_id": dashless(&missing)}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");
    let message = full
        .fails(
            "get_kasm_status",
            json!({"kasm_id": 42}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("kasm_id"), "{message}");
    let message = full
        .fails(
            "destroy_kasm",
            json!({"user_id": user_id}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("kasm_id"), "{message}");
    let message = full
        .fails(
            "keepalive",
            json!({"kasm_id": missing}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");
    let message = full
        .fails(
            "join_kasm",
            json!({"user_id": user_id, "share_id": "abc"}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(message.contains("sharing"), "{message}");
    let message = full
        .fails(
            "request_kasm",
            json!({"user_id": user_id, "image_id": workspace, "enable_sharing": true}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("enable_sharing"), "{message}");
    let message = full
        .fails(
            "request_kasm",
            json!({"user_id": user_id, "image_id": workspace, "environment": {"A": 1}}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(message.starts_with("environment.A"), "{message}");
    let kasms = full.ok("get_kasms", json!({})).await;
    assert!(kasms["kasms"].is_array(), "{kasms}");

    // Keys: wrong, unknown, HTTP Basic, read-only, lacking a permission, expired.
    let wrong = Kasm {
        secret: "wrong".into(),
        ..clone_key(&full)
    };
    let message = wrong
        .fails("get_users", json!({}), StatusCode::UNAUTHORIZED)
        .await;
    assert!(message.contains("API key"), "{message}");
    let unknown = Kasm {
        id: "ak_unknown".into(),
        ..clone_key(&full)
    };
    unknown
        .fails("get_users", json!({}), StatusCode::UNAUTHORIZED)
        .await;
    let (status, answer) = raw(
        &reqwest::Client::new(),
        Method::POST,
        &format!("{}/api/public/get_users", gw.url),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(answer["error_message"].is_string(), "{answer}");
    let basic = base64_encode(format!("{}:{}", full.id, full.secret).as_bytes());
    let (status, answer) = raw(
        &reqwest::Client::new(),
        Method::POST,
        &format!("{}/api/public/get_users", gw.url),
        Some(json!({})),
        &[("authorization", &format!("Basic {basic}"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["users"].is_array());

    let reader = api_key(
        &gw,
        "kasm-reader",
        true,
        &[
            "users.view",
            "sessions.view",
            "workspaces.view",
            "groups.view",
        ],
        None,
    )
    .await;
    reader.ok("get_users", json!({})).await;
    reader.ok("get_images", json!({})).await;
    reader.ok("get_kasms", json!({})).await;
    let message = reader
        .fails(
            "create_user",
            json!({"target_user": {"username": "by-reader", "password": "a long password 123"}}),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(message.contains("users.create"), "{message}");
    let message = reader
        .fails(
            "request_kasm",
            json!({"user_id": user_id, "image_id": workspace}),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(message.contains("sessions.modify"), "{message}");

    let users_only = api_key(&gw, "kasm-users", false, &["users.view"], None).await;
    let message = users_only
        .fails("get_kasms", json!({}), StatusCode::FORBIDDEN)
        .await;
    assert!(message.contains("sessions.view"), "{message}");
    let message = users_only
        .fails("get_images", json!({}), StatusCode::FORBIDDEN)
        .await;
    assert!(message.contains("workspaces.view"), "{message}");
    let message = users_only
        .fails(
            "delete_user",
            json!({"target_user": {"user_id": user_id}}),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(message.contains("users.delete"), "{message}");
    // Without groups.view, users come without their groups rather than failing.
    let got = users_only
        .ok("get_user", json!({"target_user": {"user_id": user_id}}))
        .await;
    assert!(got["user"].get("groups").is_none(), "{got}");

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let expiring = api_key(&gw, "kasm-expiring", false, FULL, Some(soon)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let message = expiring
        .fails("get_users", json!({}), StatusCode::UNAUTHORIZED)
        .await;
    assert!(message.contains("expired"), "{message}");

    // logout_user, delete_user.
    full.ok("logout_user", json!({"target_user": {"user_id": user_id}}))
        .await;
    full.ok(
        "delete_user",
        json!({"target_user": {"user_id": user_id}, "force": false}),
    )
    .await;
    let message = full
        .fails(
            "delete_user",
            json!({"target_user": {"user_id": user_id}}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(message.contains("not found"), "{message}");
    gw.sandbox.stop().await.expect("stop");
}

fn clone_key(k: &Kasm) -> Kasm {
    Kasm {
        url: k.url.clone(),
        id: k.id.clone(),
        secret: k.secret.clone(),
    }
}

#[tokio::test]
async fn the_developer_api_is_rate_limited_per_key() {
    let gw = Gateway::start_with(|c| c.tune_gateway(|g| g.public_api_per_second = 1)).await;
    let a = api_key(&gw, "kasm-a", true, &["users.view"], None).await;
    let b = api_key(&gw, "kasm-b", true, &["users.view"], None).await;
    // A burst of two, then 429 with Retry-After in Kasm's shape.
    a.ok("get_users", json!({})).await;
    a.ok("get_users", json!({})).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/public/get_users", gw.url))
        .json(&json!({"api_key": a.id, "api_key_secret": a.secret}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{body}"
    );
    // Wrong secrets spend the same key's tokens (no guessing past the limit).
    let guess = Kasm {
        secret: "guess".into(),
        ..clone_key(&a)
    };
    guess
        .fails("get_users", json!({}), StatusCode::TOO_MANY_REQUESTS)
        .await;
    // Another key is unaffected; the first refills.
    b.ok("get_users", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.ok("get_users", json!({})).await;
    gw.sandbox.stop().await.expect("stop");
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
