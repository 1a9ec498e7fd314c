//! The stack the gateway's API tests run on: every role in this process (the sandbox), the
//! gateway on plain HTTP on loopback, and HTTP clients that behave like a browser (cookie jar,
//! CSRF header) or a program (bearer token, API key).

use atrium_integration_tests::{ADMIN_PASSWORD, Sandbox};
use atrium_launcher::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Gateway {
    pub sandbox: Sandbox,
    pub url: String,
}

pub fn all_roles() -> Vec<Role> {
    vec![
        Role::Identity,
        Role::Policy,
        Role::BillingUsage,
        Role::SessionManager,
        Role::Agent,
        Role::Gateway,
    ]
}

impl Gateway {
    pub async fn start() -> Gateway {
        Self::start_with(|c| c).await
    }

    pub async fn start_with(
        adjust: impl FnOnce(atrium_launcher::LaunchConfig) -> atrium_launcher::LaunchConfig
        + Send
        + 'static,
    ) -> Gateway {
        let sandbox = Sandbox::builder(&all_roles())
            .configure(adjust)
            .start()
            .await
            .expect("start the stack");
        let url = sandbox.endpoint(Role::Gateway).expect("gateway endpoint");
        assert!(
            url.starts_with("http://"),
            "loopback serves plain HTTP: {url}"
        );
        Gateway { sandbox, url }
    }

    /// A browser: signs in with a password and keeps the cookies.
    pub async fn browser(&self, username: &str, password: &str) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .expect("client");
        let response = client
            .post(format!("{}/api/v1/login", self.url))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), StatusCode::OK, "login {username}");
        assert!(response.cookies().any(|c| c.name() == "atrium_csrf"));
        Browser {
            client,
            jar,
            base: self.url.clone(),
        }
    }

    pub async fn admin_browser(&self) -> Browser {
        self.browser("admin", ADMIN_PASSWORD).await
    }

    /// A program with a bearer token from `/api/v1/login?cookie=false`.
    pub async fn program(&self, username: &str, password: &str) -> Program {
        let (status, body) = raw(
            &reqwest::Client::new(),
            Method::POST,
            &format!("{}/api/v1/login?cookie=false", self.url),
            Some(json!({"username": username, "password": password})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().expect("token").to_owned();
        Program {
            base: self.url.clone(),
            authorization: format!("Bearer {token}"),
        }
    }

    pub async fn admin_program(&self) -> Program {
        self.program("admin", ADMIN_PASSWORD).await
    }
}

/// One request; the answer's status and JSON body (Null when not JSON).
pub async fn raw(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = client.request(method, url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub struct Browser {
    pub client: reqwest::Client,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
    pub base: String,
}

impl Browser {
    /// The CSRF cookie's current value, as the page's script reads it.
    pub fn csrf(&self) -> String {
        use reqwest::cookie::CookieStore as _;
        let url: reqwest::Url = self.base.parse().expect("url");
        let header = self
            .jar
            .cookies(&url)
            .unwrap_or(reqwest::header::HeaderValue::from_static(""));
        header
            .to_str()
            .unwrap_or_default()
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == "atrium_csrf")
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let csrf = self.csrf();
        raw(
            &self.client,
            method,
            &format!("{}{path}", self.base),
            body,
            &[("x-csrf-token", csrf.as_str())],
        )
        .await
    }

    /// Without the CSRF header (what a forged cross-site request looks like).
    pub async fn forged(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        raw(
            &self.client,
            method,
            &format!("{}{path}", self.base),
            body,
            &[],
        )
        .await
    }
}

pub struct Program {
    pub base: String,
    pub authorization: String,
}

impl Program {
    pub fn with_api_key(base: &str, id: &str, secret: &str) -> Program {
        Program {
            base: base.to_owned(),
            authorization: format!("ApiKey {id}:{secret}"),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        raw(
            &reqwest::Client::new(),
            method,
            &format!("{}{path}", self.base),
            body,
            &[("authorization", self.authorization.as_str())],
        )
        .await
    }
}

/// The error body's parts.
pub fn error(body: &Value) -> (String, String) {
    (
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}
