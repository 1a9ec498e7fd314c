//! Expiry: keepalive_expiration with each of delete, stop and pause; session_time_limit that
//! keepalives do not extend; and what ExplainSession says about each.

use std::time::Duration;

use atrium_proto::session::v1 as pb;

use crate::common::*;

#[tokio::test]
async fn expiry_applies_each_action_and_time_limits_ignore_keepalives() {
    if !docker("expiry_applies_each_action") {
        return;
    }
    let stack = Stack::start(Opts::default()).await;
    let mut users = Vec::new();
    for action in ["delete", "stop", "pause"] {
        let u = stack
            .user(
                action,
                &[
                    ("keepalive_expiration", "3"),
                    ("keepalive_expiration_action", action),
                ],
            )
            .await;
        users.push((action, u));
    }
    let limited = stack
        .user(
            "limited",
            &[
                ("keepalive_expiration", "3600"),
                ("session_time_limit", "4"),
            ],
        )
        .await;
    let mut launched = Vec::new();
    for (action, u) in &users {
        let s = stack.launch(u).await;
        launched.push((*action, u, s));
    }
    let limited_session = stack.launch(&limited).await;
    let mut admin = stack.sessions(&stack.admin).await;

    // The time-limited session: keepalives do not move its end.
    let mut as_limited = stack.sessions(&limited.credential).await;
    reach(
        &mut as_limited,
        &limited_session.id,
        pb::ObservedState::Running,
    )
    .await;
    let kept = as_limited
        .keepalive(pb::SessionRef {
            session_id: limited_session.id.clone(),
        })
        .await
        .expect("keepalive")
        .into_inner();
    assert!(!kept.extended);
    assert!(
        kept.message.contains("session_time_limit"),
        "{}",
        kept.message
    );
    let explained = as_limited
        .explain_session(pb::SessionRef {
            session_id: limited_session.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(explained.ending_rule, "session_time_limit");
    assert_eq!(explained.action, "delete");

    for (action, _, s) in &launched {
        let want = match *action {
            "delete" => pb::ObservedState::Deleted,
            "stop" => pb::ObservedState::Stopped,
            _ => pb::ObservedState::Paused,
        };
        let seen = watch_until(&mut admin, &s.id, Duration::from_secs(60), is(want)).await;
        let last = seen.last().unwrap();
        assert!(
            last.started_at.is_some(),
            "{action}: it ran before it expired: {last:?}"
        );
        let wanted = match *action {
            "delete" => pb::DesiredState::Deleted,
            "stop" => pb::DesiredState::Stopped,
            _ => pb::DesiredState::Paused,
        };
        assert_eq!(last.desired_state, wanted as i32, "{action}");
    }
    let ended = eventually(
        &mut admin,
        &limited_session.id,
        Duration::from_secs(30),
        is(pb::ObservedState::Deleted),
    )
    .await;
    let created = ended.created_at.unwrap().seconds;
    let updated = ended.updated_at.unwrap().seconds;
    assert!(
        updated - created >= 4,
        "it lived its time limit: {created} → {updated}"
    );

    // A stopped session, once expired, says it is at rest and keeps no keepalive deadline.
    let (_, _, stopped) = &launched[1];
    let explained = admin
        .explain_session(pb::SessionRef {
            session_id: stopped.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(explained.ending_rule.is_empty(), "{explained:?}");
}
