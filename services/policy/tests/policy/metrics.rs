//! `/metrics`: gRPC calls counted by method and code and timed, and policy's own counters.

use atrium_service_kit::testing::{http_get, metric_sample};

use crate::common::{Backend, Code, Env, Outcome, group_by_id, pb, stranger};

fn series(name: &str, method: &str, code: Option<&str>) -> String {
    let code = code.map_or(String::new(), |c| format!(",grpc_code=\"{c}\""));
    format!(
        "{name}{{grpc_service=\"atrium.policy.v1.PolicyService\",grpc_method=\"{method}\"{code}}}"
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

    let (status, text) = http_get(env.server.metrics_addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let handled = "atrium_grpc_server_handled_total";
    let resolve = "ResolveEffectivePolicy";
    assert_eq!(
        metric_sample(&text, &series(handled, resolve, Some("OK"))),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric_sample(&text, &series(handled, resolve, Some("Unauthenticated"))),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_sample(&text, &series(handled, "GetGroup", Some("NotFound"))),
        Some(1.0),
        "{text}"
    );
    let timed = series("atrium_grpc_server_handling_seconds_count", resolve, None);
    assert_eq!(metric_sample(&text, &timed), Some(4.0), "{text}");
    // Policy's own: the three calls resolved the user's policy once (then from cache).
    let resolutions = metric_sample(&text, "atrium_policy_resolutions_total").expect("resolutions");
    assert!(resolutions >= 1.0, "{text}");

    let (status, _) = http_get(env.server.metrics_addr, "/nope").await.unwrap();
    assert_eq!(status, 404);
}
