//! usage_limit end to end: billing-usage fed by the session-manager's outbox, over real
//! PostgreSQL, Redis and Docker. A per_group allowance worth a few seconds, shared by two users,
//! is spent by the first user's running session: the second user's launch is refused with the
//! reason, the running session's keepalive stops extending, ExplainSession says so, the
//! session ends at its keepalive deadline and cannot be resumed. Then the rights of the service
//! (each held alone), bad input, and reports with costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atrium_launcher::{Caller, Role};
use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as pb;
use atrium_proto::usage::v1 as usage_pb;
use tonic::Code;

use crate::common::{Opts, Stack, docker, eventually, is, reach};

fn with_billing() -> Opts {
    Opts {
        roles: vec![
            Role::Identity,
            Role::Policy,
            Role::BillingUsage,
            Role::SessionManager,
            Role::Agent,
        ],
        tune: Some(Arc::new(|c| {
            c.usage.check_cache_ms = 200;
            c.usage.delivery_interval_ms = 100;
        })),
        ..Opts::default()
    }
}

/// A group of priority 5 with `usage_limit` = `limit` (JSON), with `members`.
async fn metered_group(stack: &Stack, limit: &str, members: &[&str]) -> String {
    let mut policy = stack.policy().await;
    let group = policy
        .create_group(pol::CreateGroupRequest {
            name: format!(
                "metered-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ),
            description: "shares a usage allowance".into(),
            priority: 5,
        })
        .await
        .expect("create group")
        .into_inner();
    policy
        .set_group_setting(pol::SetGroupSettingRequest {
            group_id: group.id.clone(),
            name: "usage_limit".into(),
            value: None,
            raw_value: limit.into(),
        })
        .await
        .expect("set usage_limit");
    for user_id in members {
        policy
            .add_group_member(pol::GroupMemberRequest {
                group_id: group.id.clone(),
                user_id: (*user_id).into(),
            })
            .await
            .expect("add member");
    }
    group.id
}

async fn check(stack: &Stack, user_id: &str) -> usage_pb::UsageCheck {
    stack
        .sandbox
        .running()
        .usage(&Caller::User(stack.admin.clone()))
        .await
        .expect("usage client")
        .check_usage(usage_pb::CheckUsageRequest {
            user_id: user_id.into(),
        })
        .await
        .expect("check usage")
        .into_inner()
}

#[tokio::test]
async fn a_shared_allowance_refuses_the_second_user_and_stops_keepalives() {
    if !docker("a_shared_allowance_refuses_the_second_user_and_stops_keepalives") {
        return;
    }
    let stack = Stack::start(with_billing()).await;
    let settings = [
        ("keepalive_expiration", "15"),
        ("keepalive_expiration_action", "stop"),
    ];
    let first = stack.user("spender", &settings).await;
    let second = stack.user("sharer", &settings).await;
    // 0.002 h = 7.2 s a day, shared by both.
    let group = metered_group(
        &stack,
        r#"{"type": "per_group", "interval": "daily", "hours": 0.002}"#,
        &[&first.id, &second.id],
    )
    .await;
    let before = check(&stack, &second.id).await;
    assert!(before.limited && before.allowed, "{before:#?}");
    assert_eq!(before.group_id, group);

    let mut sessions = stack.sessions(&first.credential).await;
    let session = stack.launch(&first).await;
    reach(&mut sessions, &session.id, pb::ObservedState::Running).await;
    sessions
        .keepalive(pb::SessionRef {
            session_id: session.id.clone(),
        })
        .await
        .expect("a keepalive while the allowance lasts");

    // The running session spends the shared allowance; the second user sees it spent too.
    let started = Instant::now();
    let spent = loop {
        let c = check(&stack, &second.id).await;
        if !c.allowed {
            break c;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the allowance was never spent: {c:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(spent.used_seconds >= 7.2, "{spent:#?}");
    assert_eq!(spent.remaining_seconds, 0.0);
    assert_eq!(spent.open_sessions, 1, "{spent:#?}");
    assert!(spent.summary.contains("shared"), "{}", spent.summary);

    // The second user's launch is refused, with the reason.
    let refused = stack
        .sessions(&second.credential)
        .await
        .request_session(pb::RequestSessionRequest {
            workspace_id: stack.workspace_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("a launch with the allowance spent");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("usage limit"),
        "{}",
        refused.message()
    );

    // The running session's keepalive no longer extends its deadline.
    let deadline_before = eventually(&mut sessions, &session.id, Duration::from_secs(5), |_| true)
        .await
        .expires_at;
    let refused = sessions
        .keepalive(pb::SessionRef {
            session_id: session.id.clone(),
        })
        .await
        .expect_err("a keepalive with the allowance spent");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let after = eventually(&mut sessions, &session.id, Duration::from_secs(5), |_| true).await;
    assert_eq!(
        after.expires_at, deadline_before,
        "the deadline did not move"
    );
    let explained = sessions
        .explain_session(pb::SessionRef {
            session_id: session.id.clone(),
        })
        .await
        .expect("explain")
        .into_inner();
    let text = format!("{explained:?}");
    assert!(text.contains("spent"), "{text}");

    // It ends at its keepalive deadline (here the action stops it), and resuming it is
    // refused like a launch.
    eventually(
        &mut sessions,
        &session.id,
        Duration::from_secs(60),
        is(pb::ObservedState::Stopped),
    )
    .await;
    let resume = sessions
        .resume(pb::SessionRef {
            session_id: session.id.clone(),
        })
        .await
        .expect_err("a resume with the allowance spent");
    assert_eq!(resume.code(), Code::FailedPrecondition, "{resume:?}");
    assert!(
        resume.message().contains("usage limit"),
        "{}",
        resume.message()
    );
    crate::common::delete_and_wait(&mut sessions, &session.id).await;

    // The first user's dashboard: used and remaining, and today's history.
    let summary = stack
        .sandbox
        .running()
        .usage(&Caller::User(first.credential.clone()))
        .await
        .expect("usage client")
        .get_usage(usage_pb::GetUsageRequest {
            user_id: first.id.clone(),
            days: 7,
        })
        .await
        .expect("own usage")
        .into_inner();
    assert_eq!(summary.history.len(), 7);
    let today = summary.history.last().expect("today");
    assert!(today.seconds >= 7.2, "{summary:#?}");
    let current = summary.current.expect("current");
    assert!(!current.allowed);
}

/// The call was refused as not permitted.
fn denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) {
    let e = result.expect_err(what);
    assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
}

fn billing_only() -> Opts {
    Opts {
        roles: vec![Role::Identity, Role::Policy, Role::BillingUsage],
        ..Opts::default()
    }
}

/// A usage client acting as `caller`.
async fn usage_as(stack: &Stack, caller: Caller) -> atrium_launcher::UsageClient {
    stack
        .sandbox
        .running()
        .usage(&caller)
        .await
        .expect("usage client")
}

/// A user whose own group grants exactly `permission` (or nothing).
async fn user_holding(stack: &Stack, name: &str, permission: Option<&str>) -> crate::common::User {
    let user = stack.user(name, &[]).await;
    if let Some(permission) = permission {
        stack
            .policy()
            .await
            .grant_permission(pol::GroupPermissionRequest {
                group_id: user.group_id.clone(),
                permission: permission.into(),
            })
            .await
            .expect("grant");
    }
    user
}

fn event_for(user_id: &str) -> usage_pb::SessionEvent {
    usage_pb::SessionEvent {
        id: uuid::Uuid::now_v7().to_string(),
        session_id: uuid::Uuid::new_v4().to_string(),
        kind: "created".into(),
        at: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp(),
            nanos: 0,
        }),
        user_id: user_id.into(),
        ..Default::default()
    }
}

fn report_request() -> usage_pb::UsageReportRequest {
    usage_pb::UsageReportRequest {
        by: usage_pb::ReportBy::User.into(),
        from: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() - 86_400,
            nanos: 0,
        }),
        to: None,
        page: None,
    }
}

/// Each right of billing-usage, held alone, tries every path to more and is refused.
#[tokio::test]
async fn each_right_grants_exactly_itself() {
    use atrium_service_kit::auth::ServiceId;
    let stack = Stack::start(billing_only()).await;
    let plain = user_holding(&stack, "plain", None).await;
    let viewer = user_holding(&stack, "viewer", Some("reports.view")).await;
    let biller = user_holding(&stack, "biller", Some("billing.modify")).await;
    let workspace = stack.workspace_id.clone();
    let rate = || usage_pb::WorkspaceRate {
        workspace_id: workspace.clone(),
        per_hour: 1.5,
        currency: "EUR".into(),
    };

    // A plain user: their own usage only.
    let mut c = usage_as(&stack, Caller::User(plain.credential.clone())).await;
    c.check_usage(usage_pb::CheckUsageRequest {
        user_id: plain.id.clone(),
    })
    .await
    .expect("own check");
    c.get_usage(usage_pb::GetUsageRequest {
        user_id: plain.id.clone(),
        days: 3,
    })
    .await
    .expect("own usage");
    let own = c
        .get_usage(usage_pb::GetUsageRequest {
            user_id: String::new(),
            days: 3,
        })
        .await
        .expect("own usage, the user left empty")
        .into_inner();
    assert_eq!(
        own.current.map(|c| c.user_id),
        Some(plain.id.clone()),
        "empty means the caller"
    );
    let other = viewer.id.clone();
    denied(
        c.check_usage(usage_pb::CheckUsageRequest {
            user_id: other.clone(),
        })
        .await,
        "plain: another's check",
    );
    denied(
        c.get_usage(usage_pb::GetUsageRequest {
            user_id: other.clone(),
            days: 0,
        })
        .await,
        "plain: another's usage",
    );
    denied(c.usage_report(report_request()).await, "plain: report");
    denied(c.set_workspace_rate(rate()).await, "plain: set rate");
    denied(
        c.list_workspace_rates(usage_pb::ListWorkspaceRatesRequest {})
            .await,
        "plain: list rates",
    );
    denied(
        c.ingest_events(usage_pb::IngestEventsRequest {
            events: vec![event_for(&plain.id)],
        })
        .await,
        "plain: forge events",
    );

    // reports.view: reads anyone's usage and the reports; changes nothing.
    let mut c = usage_as(&stack, Caller::User(viewer.credential.clone())).await;
    c.check_usage(usage_pb::CheckUsageRequest {
        user_id: plain.id.clone(),
    })
    .await
    .expect("viewer: another's check");
    c.usage_report(report_request())
        .await
        .expect("viewer: report");
    c.list_workspace_rates(usage_pb::ListWorkspaceRatesRequest {})
        .await
        .expect("viewer: rates");
    denied(c.set_workspace_rate(rate()).await, "viewer: set rate");
    denied(
        c.delete_workspace_rate(usage_pb::DeleteWorkspaceRateRequest {
            workspace_id: workspace.clone(),
        })
        .await,
        "viewer: delete rate",
    );
    denied(
        c.ingest_events(usage_pb::IngestEventsRequest {
            events: vec![event_for(&viewer.id)],
        })
        .await,
        "viewer: forge events",
    );

    // billing.modify: sets rates; reads nobody's usage.
    let mut c = usage_as(&stack, Caller::User(biller.credential.clone())).await;
    c.set_workspace_rate(rate())
        .await
        .expect("biller: set rate");
    denied(
        c.check_usage(usage_pb::CheckUsageRequest {
            user_id: plain.id.clone(),
        })
        .await,
        "biller: another's check",
    );
    denied(c.usage_report(report_request()).await, "biller: report");
    denied(
        c.ingest_events(usage_pb::IngestEventsRequest {
            events: vec![event_for(&biller.id)],
        })
        .await,
        "biller: forge events",
    );

    // Services: the session-manager delivers and checks, and reads nothing else; an agent or
    // the gateway does none of it.
    let mut c = usage_as(&stack, Caller::Service(ServiceId::SessionManager)).await;
    c.check_usage(usage_pb::CheckUsageRequest {
        user_id: plain.id.clone(),
    })
    .await
    .expect("session-manager: check");
    c.ingest_events(usage_pb::IngestEventsRequest {
        events: vec![event_for(&plain.id)],
    })
    .await
    .expect("session-manager: deliver");
    denied(
        c.usage_report(report_request()).await,
        "session-manager: report",
    );
    denied(
        c.get_usage(usage_pb::GetUsageRequest {
            user_id: plain.id.clone(),
            days: 0,
        })
        .await,
        "session-manager: dashboard",
    );
    denied(
        c.set_workspace_rate(rate()).await,
        "session-manager: set rate",
    );
    for service in [ServiceId::Agent, ServiceId::Gateway, ServiceId::Policy] {
        let mut c = usage_as(&stack, Caller::Service(service)).await;
        denied(
            c.check_usage(usage_pb::CheckUsageRequest {
                user_id: plain.id.clone(),
            })
            .await,
            &format!("{service}: check"),
        );
        denied(
            c.ingest_events(usage_pb::IngestEventsRequest {
                events: vec![event_for(&plain.id)],
            })
            .await,
            &format!("{service}: deliver"),
        );
    }

    // A read-only API key with reports.view reads reports but cannot set a rate even if it
    // names billing.modify.
    let key = stack
        .identity()
        .await
        .create_api_key(atrium_proto::identity::v1::CreateApiKeyRequest {
            name: "reports".into(),
            read_only: true,
            permissions: vec!["reports.view".into()],
            expires_at: None,
        })
        .await
        .expect("api key")
        .into_inner();
    let credential = atrium_service_kit::auth::Credential::ApiKey {
        id: key.api_key.expect("key").id,
        secret: key.secret,
    };
    let mut c = usage_as(&stack, Caller::User(credential)).await;
    c.usage_report(report_request()).await.expect("key: report");
    denied(c.set_workspace_rate(rate()).await, "key: set rate");
}

/// Bad input: each refusal names the field, and nothing is half-written.
#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    use atrium_service_kit::auth::ServiceId;
    use atrium_service_kit::error::error_detail;
    let stack = Stack::start(billing_only()).await;
    let admin = Caller::User(stack.admin.clone());
    let mut c = usage_as(&stack, admin).await;
    let field_of = |e: tonic::Status| {
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        error_detail(&e).map(|d| d.field).unwrap_or_default()
    };
    let now = chrono::Utc::now().timestamp();
    let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let bad_reports = [
        (
            usage_pb::UsageReportRequest {
                by: 0,
                ..report_request()
            },
            "by",
        ),
        (
            usage_pb::UsageReportRequest {
                from: ts(now),
                to: ts(now - 3600),
                ..report_request()
            },
            "to",
        ),
        (
            usage_pb::UsageReportRequest {
                from: ts(0),
                ..report_request()
            },
            "from",
        ),
        (
            usage_pb::UsageReportRequest {
                from: None,
                ..report_request()
            },
            "from",
        ),
    ];
    for (request, field) in bad_reports {
        let e = c.usage_report(request).await.expect_err(field);
        assert_eq!(field_of(e), field);
    }
    for (rate, field) in [
        (("not-an-id", 1.0, "EUR"), "workspace_id"),
        ((stack.workspace_id.as_str(), 0.0, "EUR"), "per_hour"),
        ((stack.workspace_id.as_str(), -2.0, "EUR"), "per_hour"),
        ((stack.workspace_id.as_str(), f64::NAN, "EUR"), "per_hour"),
        ((stack.workspace_id.as_str(), 1.0, "euro"), "currency"),
        (
            ("5a0c2f4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f", 1.0, "EUR"),
            "workspace_id",
        ),
    ] {
        let e = c
            .set_workspace_rate(usage_pb::WorkspaceRate {
                workspace_id: rate.0.into(),
                per_hour: rate.1,
                currency: rate.2.into(),
            })
            .await
            .expect_err(field);
        assert_eq!(field_of(e), field, "{rate:?}");
    }
    let rates = c
        .list_workspace_rates(usage_pb::ListWorkspaceRatesRequest {})
        .await
        .expect("rates")
        .into_inner();
    assert!(rates.rates.is_empty(), "nothing half-written: {rates:?}");
    // Empty means the signed-in caller (the UI's /api/v1/me/usage).
    let own = c
        .check_usage(usage_pb::CheckUsageRequest {
            user_id: String::new(),
        })
        .await
        .expect("the caller's own check")
        .into_inner();
    assert!(own.allowed, "{own:?}");
    for (user_id, field) in [
        ("nobody", "user_id"),
        ("5a0c2f4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f", "user_id"),
    ] {
        let e = c
            .check_usage(usage_pb::CheckUsageRequest {
                user_id: user_id.into(),
            })
            .await
            .expect_err(user_id);
        assert_eq!(field_of(e), field);
    }
    let e = c
        .get_usage(usage_pb::GetUsageRequest {
            user_id: "5a0c2f4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f".into(),
            days: 5000,
        })
        .await
        .expect_err("days");
    assert!(matches!(field_of(e).as_str(), "days" | "user_id"));

    // A batch with one bad event is refused whole.
    let mut sm = usage_as(&stack, Caller::Service(ServiceId::SessionManager)).await;
    // A service has no "own" usage: it must name the user.
    let e = sm
        .check_usage(usage_pb::CheckUsageRequest {
            user_id: String::new(),
        })
        .await
        .expect_err("a service without a user");
    assert_eq!(field_of(e), "user_id");
    let good = event_for("0a7e0000-0000-4000-8000-00000000000a");
    let mut bad = event_for("0a7e0000-0000-4000-8000-00000000000a");
    bad.kind = "exploded".into();
    let e = sm
        .ingest_events(usage_pb::IngestEventsRequest {
            events: vec![good.clone(), bad],
        })
        .await
        .expect_err("bad kind");
    assert_eq!(field_of(e), "events[1].kind");
    let mut far = event_for("0a7e0000-0000-4000-8000-00000000000a");
    far.at = Some(prost_types::Timestamp {
        seconds: 253_402_300_000,
        nanos: 0,
    });
    let e = sm
        .ingest_events(usage_pb::IngestEventsRequest { events: vec![far] })
        .await
        .expect_err("a time centuries away");
    assert_eq!(field_of(e), "events[0].at");
    let again = sm
        .ingest_events(usage_pb::IngestEventsRequest { events: vec![good] })
        .await
        .expect("the good event alone")
        .into_inner();
    assert_eq!(again.accepted, 1, "the refused batch wrote nothing");
}

/// One ended session's events, as the session-manager would deliver them.
fn ended_session(
    user: &crate::common::User,
    workspace_id: &str,
    from_secs: i64,
    to_secs: i64,
) -> Vec<usage_pb::SessionEvent> {
    let session_id = uuid::Uuid::new_v4().to_string();
    [
        ("created", from_secs),
        ("running", from_secs),
        ("deleted", to_secs),
    ]
    .into_iter()
    .map(|(kind, at)| usage_pb::SessionEvent {
        id: uuid::Uuid::now_v7().to_string(),
        session_id: session_id.clone(),
        kind: kind.into(),
        at: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
        user_id: user.id.clone(),
        username: user.username.clone(),
        workspace_id: workspace_id.into(),
        agent_id: "agent-1".into(),
        zone_id: String::new(),
        group_ids: vec![user.group_id.clone()],
    })
    .collect()
}

#[tokio::test]
async fn reports_group_price_clip_and_page_on_postgres() {
    reports_group_price_clip_and_page(billing_only()).await;
}

#[tokio::test]
async fn reports_group_price_clip_and_page_on_sqlite() {
    reports_group_price_clip_and_page(Opts {
        sqlite: true,
        ..billing_only()
    })
    .await;
}

async fn reports_group_price_clip_and_page(opts: Opts) {
    use atrium_service_kit::auth::ServiceId;
    let stack = Stack::start(opts).await;
    let ann = stack.user("ann", &[]).await;
    let bob = stack.user("bob", &[]).await;
    let unpriced_workspace = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().timestamp();
    let mut events = ended_session(&ann, &stack.workspace_id, now - 5 * 3600, now - 3 * 3600);
    events.extend(ended_session(
        &bob,
        &unpriced_workspace,
        now - 2 * 3600,
        now - 3600,
    ));
    usage_as(&stack, Caller::Service(ServiceId::SessionManager))
        .await
        .ingest_events(usage_pb::IngestEventsRequest { events })
        .await
        .expect("deliver");
    let mut c = usage_as(&stack, Caller::User(stack.admin.clone())).await;
    c.set_workspace_rate(usage_pb::WorkspaceRate {
        workspace_id: stack.workspace_id.clone(),
        per_hour: 1.5,
        currency: "eur".into(),
    })
    .await
    .expect("rate");
    let report = |by: usage_pb::ReportBy, from: i64, page_size: u32, token: String| {
        usage_pb::UsageReportRequest {
            by: by.into(),
            from: Some(prost_types::Timestamp {
                seconds: from,
                nanos: 0,
            }),
            to: None,
            page: Some(atrium_proto::common::v1::PageRequest {
                page_size,
                page_token: token,
            }),
        }
    };
    let by_user = c
        .usage_report(report(
            usage_pb::ReportBy::User,
            now - 86_400,
            0,
            String::new(),
        ))
        .await
        .expect("report")
        .into_inner();
    let row = |key: &str| {
        by_user
            .rows
            .iter()
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("no row {key}: {by_user:#?}"))
            .clone()
    };
    let a = row(&ann.id);
    assert_eq!((a.seconds, a.sessions), (7200.0, 1));
    assert_eq!(a.label, ann.username);
    assert_eq!(a.costs.len(), 1);
    assert_eq!(
        (a.costs[0].currency.as_str(), a.costs[0].amount),
        ("EUR", 3.0)
    );
    let b = row(&bob.id);
    assert_eq!((b.seconds, b.unpriced_seconds), (3600.0, 3600.0));
    assert!(b.costs.is_empty());
    let total = by_user.total.clone().expect("total");
    assert_eq!(total.seconds, 10_800.0);
    assert_eq!(total.costs[0].amount, 3.0);

    // The period clips sessions: from 4 h ago, ann's 5 h–3 h ago session counts 1 h.
    let clipped = c
        .usage_report(report(
            usage_pb::ReportBy::Workspace,
            now - 4 * 3600,
            0,
            String::new(),
        ))
        .await
        .expect("clipped")
        .into_inner();
    let w = clipped
        .rows
        .iter()
        .find(|r| r.key == stack.workspace_id)
        .expect("workspace row");
    assert_eq!(w.seconds, 3600.0);
    assert_eq!(w.costs[0].amount, 1.5);

    // Groups and zones, and paging one row at a time over every key.
    let by_group = c
        .usage_report(report(
            usage_pb::ReportBy::Group,
            now - 86_400,
            0,
            String::new(),
        ))
        .await
        .expect("by group")
        .into_inner();
    assert!(
        by_group
            .rows
            .iter()
            .any(|r| r.key == ann.group_id && r.seconds == 7200.0)
    );
    let by_zone = c
        .usage_report(report(
            usage_pb::ReportBy::Zone,
            now - 86_400,
            0,
            String::new(),
        ))
        .await
        .expect("by zone")
        .into_inner();
    assert_eq!(by_zone.total.expect("total").seconds, 10_800.0);
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .usage_report(report(usage_pb::ReportBy::User, now - 86_400, 1, token))
            .await
            .expect("page")
            .into_inner();
        assert!(page.rows.len() <= 1);
        keys.extend(page.rows.iter().map(|r| r.key.clone()));
        token = page.page.expect("page").next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut expected: Vec<String> = by_user.rows.iter().map(|r| r.key.clone()).collect();
    expected.sort();
    assert_eq!(keys, expected);
}

/// billing-usage away: admission follows `usage.when_unavailable` and says which, a session
/// admitted unchecked says so, keepalives still extend, and the events wait in the outbox.
#[tokio::test]
async fn with_billing_away_admission_follows_the_configured_policy() {
    use atrium_session_manager::config::UnavailablePolicy;
    for policy in [UnavailablePolicy::Refuse, UnavailablePolicy::Allow] {
        let stack = Stack::start(Opts {
            roles: vec![Role::Identity, Role::Policy, Role::SessionManager],
            tune: Some(Arc::new(move |c| {
                // Nothing listens there: billing-usage is away.
                c.usage.endpoint = Some("https://127.0.0.1:9".into());
                c.usage.when_unavailable = policy;
                c.lost_grace_secs = 3600;
            })),
            ..Opts::default()
        })
        .await;
        atrium_integration_tests::simulated_agent(&stack.redis_url, &stack.namespace, "away-agent")
            .await
            .expect("simulated agent");
        let user = stack.user("unmetered", &[]).await;
        let mut sessions = stack.sessions(&user.credential).await;
        let answer = sessions
            .request_session(pb::RequestSessionRequest {
                workspace_id: stack.workspace_id.clone(),
                ..Default::default()
            })
            .await;
        match policy {
            UnavailablePolicy::Refuse => {
                let e = answer.expect_err("refused while billing-usage is away");
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                assert!(
                    e.message().contains("usage.when_unavailable is refuse"),
                    "{}",
                    e.message()
                );
            }
            UnavailablePolicy::Allow => {
                let session = answer.expect("admitted unchecked").into_inner();
                let explained = sessions
                    .explain_session(pb::SessionRef {
                        session_id: session.id.clone(),
                    })
                    .await
                    .expect("explain")
                    .into_inner();
                let text = format!("{explained:?}");
                assert!(text.contains("without a usage check"), "{text}");
                sessions
                    .keepalive(pb::SessionRef {
                        session_id: session.id.clone(),
                    })
                    .await
                    .expect("keepalives extend while billing-usage is away");
            }
        }
    }
}
