//! The server started from the library on port 0, talked to over HTTPS.

use std::collections::HashMap;
use std::net::SocketAddr;

use atrium_workspace::client::{USER, get, send};
use atrium_workspace::notes::MAX_NOTES_BYTES;
use atrium_workspace::{Config, Workspace, serve};
use http::{Method, StatusCode};
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    hostname: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    _home: tempfile::TempDir,
}

async fn start(password: &str) -> Running {
    let home = tempfile::tempdir().expect("tempdir");
    let vars = HashMap::from([
        ("VNC_PW", password.to_owned()),
        ("HOME", home.path().join("kasm-user").display().to_string()),
        ("ATRIUM_SESSION_ID", "sess-42".to_owned()),
        ("KASM_USER", "alice".to_owned()),
    ]);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let workspace = Workspace::new(config).expect("workspace");
    let hostname = workspace.hostname().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, workspace, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        hostname,
        stop: Some(stop),
        done,
        _home: home,
    }
}

#[tokio::test]
async fn healthz_needs_no_auth() {
    let ws = start("pw").await;
    let reply = get(ws.addr, "/healthz", None).await.expect("healthz");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.trim(), "ok");
}

#[tokio::test]
async fn everything_else_needs_kasm_user_and_the_password() {
    let ws = start("pw").await;
    for auth in [None, Some((USER, "wrong")), Some(("root", "pw"))] {
        for path in ["/", "/notes", "/nowhere"] {
            let reply = get(ws.addr, path, auth).await.expect("request");
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
            assert_eq!(
                reply.headers.get(http::header::WWW_AUTHENTICATE),
                Some(&http::HeaderValue::from_static("Basic realm=\"atrium\""))
            );
        }
    }
}

#[tokio::test]
async fn the_page_says_who_and_where() {
    let ws = start("pw").await;
    let reply = get(ws.addr, "/", Some((USER, "pw"))).await.expect("page");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers.get(http::header::CONTENT_TYPE),
        Some(&http::HeaderValue::from_static("text/html; charset=utf-8"))
    );
    for expected in [ws.hostname.as_str(), "sess-42", "alice", "<textarea"] {
        assert!(reply.body.contains(expected), "page lacks {expected:?}");
    }
}

#[tokio::test]
async fn notes_are_saved_and_read_back_and_shown_on_the_page() {
    let ws = start("pw").await;
    let auth = Some((USER, "pw"));
    assert_eq!(get(ws.addr, "/notes", auth).await.expect("get").body, "");
    let saved = send(ws.addr, Method::POST, "/notes", auth, "remember <milk>")
        .await
        .expect("post");
    assert_eq!(saved.status, StatusCode::NO_CONTENT);
    let notes = get(ws.addr, "/notes", auth).await.expect("get");
    assert_eq!(notes.body, "remember <milk>");
    let page = get(ws.addr, "/", auth).await.expect("page");
    assert!(page.body.contains("remember &lt;milk&gt;"));
}

#[tokio::test]
async fn notes_over_a_mebibyte_are_refused() {
    let ws = start("pw").await;
    let auth = Some((USER, "pw"));
    let big = vec![b'a'; MAX_NOTES_BYTES + 1];
    let reply = send(ws.addr, Method::POST, "/notes", auth, big)
        .await
        .expect("post");
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let exact = vec![b'a'; MAX_NOTES_BYTES];
    let reply = send(ws.addr, Method::POST, "/notes", auth, exact)
        .await
        .expect("post");
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn wrong_methods_and_paths_are_told_so() {
    let ws = start("pw").await;
    let auth = Some((USER, "pw"));
    let put = send(ws.addr, Method::PUT, "/notes", auth, "x")
        .await
        .expect("put");
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    let missing = get(ws.addr, "/nowhere", auth).await.expect("get");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let mut ws = start("pw").await;
    let _ = ws.stop.take().map(|s| s.send(()));
    ws.done.await.expect("join").expect("serve");
}
