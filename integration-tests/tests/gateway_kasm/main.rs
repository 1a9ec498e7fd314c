//! Kasm's Developer API (`/api/public/*`) against the real services through the gateway: every
//! call, wrong and expired keys, read-only keys, keys lacking a permission, missing and
//! ill-typed fields, other users' sessions, the per-key rate limit, and the third-party `kasm`
//! Python client (PyPI `kasm`, Codoc-os/pykasm) driving a whole session lifecycle.

#[allow(dead_code)]
#[path = "../gateway/common.rs"]
mod common;

mod calls;
mod python;
mod sessions;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Gateway, Program, raw};

/// A Developer API client with one key: the key goes into the body, as Kasm clients send it.
pub struct Kasm {
    pub url: String,
    pub id: String,
    pub secret: String,
}

impl Kasm {
    pub async fn call(&self, name: &str, body: Value) -> (StatusCode, Value) {
        let mut body = body;
        if let Some(map) = body.as_object_mut() {
            map.insert("api_key".into(), json!(self.id));
            map.insert("api_key_secret".into(), json!(self.secret));
        }
        raw(
            &reqwest::Client::new(),
            Method::POST,
            &format!("{}/api/public/{name}", self.url),
            Some(body),
            &[],
        )
        .await
    }

    /// A call that must succeed; its answer.
    pub async fn ok(&self, name: &str, body: Value) -> Value {
        let (status, answer) = self.call(name, body).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        assert!(answer.get("error_message").is_none(), "{name}: {answer}");
        answer
    }

    /// A call that must fail with `status`; its error_message.
    pub async fn fails(&self, name: &str, body: Value, status: StatusCode) -> String {
        let (got, answer) = self.call(name, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        let message = answer["error_message"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no error_message in {answer}"))
            .to_owned();
        assert!(!message.is_empty(), "{name}: empty error_message");
        message
    }
}

/// Creates an API key as the administrator (over /api/v1).
pub async fn api_key(
    gw: &Gateway,
    name: &str,
    read_only: bool,
    permissions: &[&str],
    expires_at: Option<String>,
) -> Kasm {
    let admin = gw.admin_program().await;
    let mut body = json!({"name": name, "read_only": read_only, "permissions": permissions});
    if let Some(at) = expires_at {
        body["expires_at"] = json!(at);
    }
    let (status, key) = admin
        .call(Method::POST, "/api/v1/api-keys", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "create key {name}: {key}");
    Kasm {
        url: gw.url.clone(),
        id: key["api_key"]["id"].as_str().expect("id").to_owned(),
        secret: key["secret"].as_str().expect("secret").to_owned(),
    }
}

/// Every permission a Kasm integration uses.
pub const FULL: &[&str] = &[
    "sessions.exec",
    "users.view",
    "users.create",
    "users.modify",
    "users.delete",
    "users.auth_session",
    "groups.view",
    "groups.create",
    "groups.modify",
    "groups.delete",
    "workspaces.view",
    "sessions.view",
    "sessions.modify",
    "sessions.delete",
];

/// The admin over /api/v1 (for setting things up).
pub async fn admin(gw: &Gateway) -> Program {
    gw.admin_program().await
}

pub fn docker(test: &str) -> bool {
    atrium_service_kit::testing::docker_enabled(test)
}
