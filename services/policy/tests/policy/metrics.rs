//! `/metrics`: gRPC calls counted by method and code and timed, and policy's own counters.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Backend, Code, Env, Outcome, group_by_id, pb, stranger};

/// One HTTP/1.1 GET: (status line, body).
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample whose line starts with `series` (name and labels, exactly).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn series(name: &str, method: &str, code: Option<&str>) -> String {
    let code = code.map_or(String::new(), |c| format!(",grpc_code=\"{c}\""));
    format!(
        "{name}{{grpc_service=\"atrium.policy.v1.PolicyService\",grpc_method=\"{method}\"{code}}} "
    )
}

#[tokio::test]
async fn calls_are_counted_by_method_and_code() {
    let env = Env::start(Backend::Sqlite).await;
    let (_, mut user) = env.user().await;
    for _ in 0..3 {
        user.resolve_effective_policy(pb::ResolveEffectivePolicyRequest::default())
            .await
            .must();
    }
    env.anonymous()
        .await
        .resolve_effective_policy(pb::ResolveEffectivePolicyRequest::default())
        .await
        .fails(Code::Unauthenticated);
    env.admin()
        .get_group(group_by_id(&stranger()))
        .await
        .fails(Code::NotFound);

    let (status, text) = get(env.server.metrics_addr, "/metrics").await;
    assert!(status.contains(" 200 "), "{status}");
    let handled = "atrium_grpc_server_handled_total";
    let resolve = "ResolveEffectivePolicy";
    assert_eq!(
        sample(&text, &series(handled, resolve, Some("OK"))),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &series(handled, resolve, Some("Unauthenticated"))),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &series(handled, "GetGroup", Some("NotFound"))),
        Some(1.0),
        "{text}"
    );
    let timed = series("atrium_grpc_server_handling_seconds_count", resolve, None);
    assert_eq!(sample(&text, &timed), Some(4.0), "{text}");
    // Policy's own: the three calls resolved the user's policy once (then from cache).
    let resolutions = sample(&text, "atrium_policy_resolutions_total ").expect("resolutions");
    assert!(resolutions >= 1.0, "{text}");

    let (status, _) = get(env.server.metrics_addr, "/nope").await;
    assert!(status.contains(" 404 "), "{status}");
}
