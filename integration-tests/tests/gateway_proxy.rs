//! The gateway's session proxy end to end: every role in this process (identity, policy,
//! billing-usage, the session-manager, an agent on the local Docker engine, the gateway on plain
//! HTTP on loopback) and a real session of the demo workspace image, reached through
//! `/session/<id>/…` as a browser or a program would. Runs only with `ATRIUM_TEST_DOCKER=1`
//! (required under CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_integration_tests::{Sandbox, TestUser};
use atrium_launcher::{Caller, Role};
use atrium_proto::session::v1 as pb;
use atrium_service_kit::auth::Credential;
use futures::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

struct Stack {
    sandbox: Sandbox,
    /// `http://127.0.0.1:<port>`
    url: String,
    workspace_id: String,
}

impl Stack {
    async fn start() -> Stack {
        let image = atrium_integration_tests::demo_image().expect("the demo image");
        let sandbox = Sandbox::start(&[
            Role::Identity,
            Role::Policy,
            Role::BillingUsage,
            Role::SessionManager,
            Role::Agent,
            Role::Gateway,
        ])
        .await
        .expect("start the stack");
        let url = sandbox.endpoint(Role::Gateway).expect("gateway");
        let workspace_id = atrium_integration_tests::demo_workspace(
            sandbox.running(),
            sandbox.admin().expect("admin"),
            &image,
            0.25,
            128,
        )
        .await
        .expect("workspace");
        Stack {
            sandbox,
            url,
            workspace_id,
        }
    }

    async fn user(&self, name: &str, settings: &[(&str, &str)]) -> TestUser {
        atrium_integration_tests::user_with_settings(
            self.sandbox.running(),
            self.sandbox.admin().expect("admin"),
            name,
            settings,
        )
        .await
        .expect("user")
    }

    /// A running session of `user`'s.
    async fn running_session(&self, user: &TestUser) -> String {
        let mut sessions = self
            .sandbox
            .running()
            .session(&Caller::User(user.credential.clone()))
            .await
            .expect("session client");
        let session = sessions
            .request_session(pb::RequestSessionRequest {
                workspace_id: self.workspace_id.clone(),
                ..Default::default()
            })
            .await
            .expect("request a session")
            .into_inner();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = sessions
                .get_session(pb::GetSessionRequest {
                    session_id: session.id.clone(),
                })
                .await
                .expect("get session")
                .into_inner();
            if s.observed_state == pb::ObservedState::Running as i32 {
                return s.id;
            }
            assert!(Instant::now() < deadline, "not running in 90 s: {s:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn delete(&self, credential: &Credential, id: &str) {
        self.sandbox
            .running()
            .session(&Caller::User(credential.clone()))
            .await
            .expect("session client")
            .delete(pb::SessionRef {
                session_id: id.into(),
            })
            .await
            .expect("delete");
    }

    fn session_url(&self, id: &str, path: &str) -> String {
        format!("{}/session/{id}{path}", self.url)
    }

    /// A WebSocket to `path` of the session through the gateway, offering `binary`.
    async fn websocket(
        &self,
        credential: &Credential,
        id: &str,
        path: &str,
    ) -> Result<(WebSocketStream<TcpStream>, Option<String>), String> {
        let ws_url = self.session_url(id, path).replacen("http://", "ws://", 1);
        let mut request = ws_url.into_client_request().expect("request");
        request.headers_mut().insert(
            "authorization",
            credential.header_value().parse().expect("header"),
        );
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "binary".parse().expect("header"));
        let addr = self.url.trim_start_matches("http://").to_owned();
        let tcp = TcpStream::connect(addr).await.expect("connect");
        match tokio_tungstenite::client_async(request, tcp).await {
            Ok((socket, response)) => {
                let protocol = response
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Ok((socket, protocol))
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

async fn get(client: &reqwest::Client, url: &str, credential: Option<&Credential>) -> Answer {
    let mut request = client.get(url);
    if let Some(c) = credential {
        request = request.header("authorization", c.header_value());
    }
    Answer::of(request.send().await.expect("send")).await
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// How many echo sockets the container has open, read through the proxy.
async fn open_sockets(stack: &Stack, credential: &Credential, id: &str) -> usize {
    let answer = get(
        &no_redirects(),
        &stack.session_url(id, "/ws/open"),
        Some(credential),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.body.trim().parse().expect("a count")
}

async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_and_an_administrator_reach_the_workspace_and_no_one_else_learns_it_exists() {
    if !atrium_integration_tests::docker_enabled("gateway proxy") {
        return;
    }
    let stack = Stack::start().await;
    let owner = stack.user("owner", &[("allow_kasm_pause", "true")]).await;
    let stranger = stack.user("stranger", &[]).await;
    let id = stack.running_session(&owner).await;
    let client = no_redirects();

    // The owner sees the workspace's page: the container demands basic auth, the gateway
    // supplied it.
    let page = get(
        &client,
        &stack.session_url(&id, "/"),
        Some(&owner.credential),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(page.body.contains("Atrium demo workspace"), "{}", page.body);
    // Its script saves notes relative to the page (under the session's prefix).
    assert!(page.body.contains("fetch(\"notes\""), "{}", page.body);
    assert!(page.headers.get("www-authenticate").is_none());

    // Without the slash: a redirect to it (relative URLs of the workspace resolve).
    let bare = get(
        &client,
        &stack.session_url(&id, "?a=1"),
        Some(&owner.credential),
    )
    .await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers["location"], format!("/session/{id}/?a=1"));

    // A request body reaches the container, and its answer comes back.
    let saved = client
        .post(stack.session_url(&id, "/notes"))
        .header("authorization", owner.credential.header_value())
        .body("through the gateway")
        .send()
        .await
        .expect("post notes");
    assert_eq!(saved.status(), StatusCode::NO_CONTENT);
    let notes = get(
        &client,
        &stack.session_url(&id, "/notes"),
        Some(&owner.credential),
    )
    .await;
    assert_eq!(notes.body, "through the gateway");

    // Another user: exactly what a session that never existed answers.
    let theirs = get(
        &client,
        &stack.session_url(&id, "/"),
        Some(&stranger.credential),
    )
    .await;
    let random = uuid::Uuid::new_v4();
    let none = get(
        &client,
        &stack.session_url(&random.to_string(), "/"),
        Some(&stranger.credential),
    )
    .await;
    let malformed = get(
        &client,
        &stack.session_url("not-a-session", "/"),
        Some(&stranger.credential),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!((theirs.status, &theirs.body), (none.status, &none.body));
    assert_eq!(
        (theirs.status, &theirs.body),
        (malformed.status, &malformed.body)
    );
    // Their WebSocket too.
    let refused = stack
        .websocket(&stranger.credential, &id, "/ws/echo")
        .await
        .expect_err("refused");
    assert!(refused.contains("404"), "{refused}");

    // No credential at all.
    let anonymous = get(&client, &stack.session_url(&id, "/"), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // An administrator (sessions.view) opens it.
    let admin = stack.sandbox.admin().expect("admin").clone();
    let as_admin = get(&client, &stack.session_url(&id, "/"), Some(&admin)).await;
    assert_eq!(as_admin.status, StatusCode::OK, "{as_admin:?}");

    // A browser with the login cookie: pages load; a state change from another site's page is
    // refused, one from the gateway's own origin passes without a CSRF header.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = browser
        .post(format!("{}/api/v1/login", stack.url))
        .json(&serde_json::json!({
            "username": owner.username,
            "password": atrium_integration_tests::USER_PASSWORD,
        }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    let page = Answer::of(
        browser
            .get(stack.session_url(&id, "/"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    let forged = browser
        .post(stack.session_url(&id, "/notes"))
        .header("origin", "https://elsewhere.example")
        .body("forged")
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let own = browser
        .post(stack.session_url(&id, "/notes"))
        .header("origin", stack.url.clone())
        .body("from the page")
        .send()
        .await
        .expect("post");
    assert_eq!(own.status(), StatusCode::NO_CONTENT);

    // Paused: those who may see it are told; it is not proxied.
    let mut sessions = stack
        .sandbox
        .running()
        .session(&Caller::User(owner.credential.clone()))
        .await
        .expect("client");
    sessions
        .pause(pb::SessionRef {
            session_id: id.clone(),
        })
        .await
        .expect("pause");
    eventually("paused session refused", Duration::from_secs(5), || async {
        let a = get(
            &client,
            &stack.session_url(&id, "/"),
            Some(&owner.credential),
        )
        .await;
        a.status == StatusCode::CONFLICT
    })
    .await;
    let stranger_paused = get(
        &client,
        &stack.session_url(&id, "/"),
        Some(&stranger.credential),
    )
    .await;
    assert_eq!(
        (stranger_paused.status, &stranger_paused.body),
        (none.status, &none.body)
    );
    stack.delete(&owner.credential, &id).await;
    stack.sandbox.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_echo_large_frames_close_both_ways_and_end_with_the_session() {
    if !atrium_integration_tests::docker_enabled("gateway proxy websockets") {
        return;
    }
    let stack = Stack::start().await;
    let owner = stack.user("ws-owner", &[]).await;
    let id = stack.running_session(&owner).await;
    let cred = &owner.credential;

    // Text and a 4 MiB binary frame round trip; the subprotocol is the container's choice.
    let (mut socket, protocol) = stack.websocket(cred, &id, "/ws/echo").await.expect("open");
    assert_eq!(protocol.as_deref(), Some("binary"));
    socket.send(Message::text("hello")).await.expect("send");
    assert_eq!(
        socket.next().await.expect("reply").expect("ok"),
        Message::text("hello")
    );
    let big: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    socket
        .send(Message::binary(big.clone()))
        .await
        .expect("send 4 MiB");
    match socket.next().await.expect("reply").expect("ok") {
        Message::Binary(data) => assert!(data == big, "the 4 MiB frame came back changed"),
        other => panic!("expected binary, got {other:?}"),
    }
    socket.send(Message::Ping("p".into())).await.expect("ping");
    assert_eq!(open_sockets(&stack, cred, &id).await, 1);

    // The client closes: the container's socket closes too.
    socket.close(None).await.expect("close");
    eventually(
        "the container's socket closed",
        Duration::from_secs(5),
        || async { open_sockets(&stack, cred, &id).await == 0 },
    )
    .await;

    // The client just goes away (no close frame): the container's socket closes too.
    let (socket, _) = stack.websocket(cred, &id, "/ws/echo").await.expect("open");
    assert_eq!(open_sockets(&stack, cred, &id).await, 1);
    drop(socket);
    eventually(
        "the container's socket closed",
        Duration::from_secs(5),
        || async { open_sockets(&stack, cred, &id).await == 0 },
    )
    .await;

    // The session is deleted: its URL answers 404 at once, an open socket is closed.
    let (mut socket, _) = stack.websocket(cred, &id, "/ws/echo").await.expect("open");
    socket
        .send(Message::text("still here"))
        .await
        .expect("send");
    assert_eq!(
        socket.next().await.expect("reply").expect("ok"),
        Message::text("still here")
    );
    let never = uuid::Uuid::new_v4().to_string();
    let none = get(&no_redirects(), &stack.session_url(&never, "/"), Some(cred)).await;
    let deleted_at = Instant::now();
    stack.delete(cred, &id).await;
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket stayed open after the delete");
    let after = get(&no_redirects(), &stack.session_url(&id, "/"), Some(cred)).await;
    assert_eq!(
        (after.status, &after.body),
        (none.status, &none.body),
        "answered {:?} after the delete",
        deleted_at.elapsed()
    );
    assert!(
        deleted_at.elapsed() < Duration::from_secs(2),
        "took {:?}",
        deleted_at.elapsed()
    );

    // A user whose idle_disconnect is 0.03 minutes (1.8 s): their socket with no traffic either
    // way is closed soon after; another user's (the default 20 minutes) stays open meanwhile.
    let idler = stack.user("ws-idler", &[("idle_disconnect", "0.03")]).await;
    let idle_id = stack.running_session(&idler).await;
    let other = stack.user("ws-awake", &[]).await;
    let other_id = stack.running_session(&other).await;
    let (mut idle_socket, _) = stack
        .websocket(&idler.credential, &idle_id, "/ws/echo")
        .await
        .expect("open");
    let (mut awake_socket, _) = stack
        .websocket(&other.credential, &other_id, "/ws/echo")
        .await
        .expect("open");
    idle_socket.send(Message::text("hi")).await.expect("send");
    assert_eq!(
        idle_socket.next().await.expect("reply").expect("ok"),
        Message::text("hi")
    );
    let quiet_from = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match idle_socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle socket outlived idle_disconnect");
    assert!(
        quiet_from.elapsed() >= Duration::from_millis(1500),
        "closed after {:?}, before idle_disconnect",
        quiet_from.elapsed()
    );
    awake_socket
        .send(Message::text("still awake"))
        .await
        .expect("send");
    assert_eq!(
        awake_socket.next().await.expect("reply").expect("ok"),
        Message::text("still awake"),
        "a socket without a short idle_disconnect was closed"
    );
    stack.sandbox.stop().await.expect("clean stop");
}
