//! Who may do what: max_kasms_per_user, pause/stop/delete only as the owner's settings allow
//! (or with the sessions permissions), other users' sessions invisible, free commands for
//! administrators only, and 20 concurrent launches onto an agent with room for 10.

use std::time::Duration;

use atrium_proto::session::v1 as pb;

use crate::common::*;

#[tokio::test]
async fn users_act_only_within_their_settings_and_on_their_own_sessions() {
    if !docker("users_act_only_within_their_settings") {
        return;
    }
    let stack = Stack::start(Opts::default()).await;
    let dave = stack
        .user(
            "dave",
            &[
                ("max_kasms_per_user", "1"),
                ("allow_kasm_pause", "false"),
                ("allow_kasm_stop", "false"),
                ("allow_kasm_delete", "false"),
            ],
        )
        .await;
    let erin = stack.user("erin", &[]).await;
    let mut as_dave = stack.sessions(&dave.credential).await;
    let s = stack.launch(&dave).await;
    watch_until(
        &mut as_dave,
        &s.id,
        Duration::from_secs(60),
        is(pb::ObservedState::Running),
    )
    .await;

    // max_kasms_per_user 1: the second launch is refused with the reason.
    let second = as_dave
        .request_session(pb::RequestSessionRequest {
            workspace_id: stack.workspace_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("over max_kasms_per_user");
    assert_eq!(second.code(), tonic::Code::FailedPrecondition);
    assert!(
        second.message().contains("max_kasms_per_user 1"),
        "{}",
        second.message()
    );

    let r = || pb::SessionRef {
        session_id: s.id.clone(),
    };
    for (what, result, setting) in [
        ("pause", as_dave.pause(r()).await, "allow_kasm_pause"),
        ("stop", as_dave.stop(r()).await, "allow_kasm_stop"),
        ("delete", as_dave.delete(r()).await, "allow_kasm_delete"),
        (
            "force delete",
            as_dave.force_delete(r()).await,
            "allow_kasm_force_delete",
        ),
    ] {
        let e = result.expect_err(what);
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{what}");
        assert!(
            e.message().contains(setting) || e.message().contains("sessions.delete"),
            "{what}: {}",
            e.message()
        );
    }
    // A free command is an administrator's; the owner is refused.
    let exec = as_dave
        .exec(pb::ExecRequest {
            session_id: s.id.clone(),
            cmd: vec!["/atrium-workspace".into(), "--version".into()],
            ..Default::default()
        })
        .await
        .expect_err("users run hooks only");
    assert_eq!(exec.code(), tonic::Code::PermissionDenied);

    // Another user sees nothing: not found, whatever the call.
    let mut as_erin = stack.sessions(&erin.credential).await;
    for result in [
        as_erin
            .get_session(pb::GetSessionRequest {
                session_id: s.id.clone(),
            })
            .await
            .map(|_| ()),
        as_erin.keepalive(r()).await.map(|_| ()),
        as_erin.delete(r()).await.map(|_| ()),
        as_erin.explain_session(r()).await.map(|_| ()),
        as_erin
            .watch_session(pb::GetSessionRequest {
                session_id: s.id.clone(),
            })
            .await
            .map(|_| ()),
    ] {
        assert_eq!(result.expect_err("invisible").code(), tonic::Code::NotFound);
    }
    let theirs = as_erin
        .list_sessions(pb::ListSessionsRequest {
            user_id: dave.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("another user's list");
    assert_eq!(theirs.code(), tonic::Code::PermissionDenied);
    // Launching for someone else needs sessions.modify.
    let for_dave = as_erin
        .request_session(pb::RequestSessionRequest {
            user_id: dave.id.clone(),
            workspace_id: stack.workspace_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("launch for another user");
    assert_eq!(for_dave.code(), tonic::Code::PermissionDenied);
    // Picking a zone needs allow_zone_selection.
    let zone = as_erin
        .request_session(pb::RequestSessionRequest {
            workspace_id: stack.workspace_id.clone(),
            options: Some(pb::SessionOptions {
                zone_id: "default".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("zone selection");
    assert_eq!(zone.code(), tonic::Code::InvalidArgument);
    assert!(
        zone.message().contains("options.zone_id"),
        "{}",
        zone.message()
    );

    // The administrator holds every sessions permission: they see, explain and delete it.
    let mut as_admin = stack.sessions(&stack.admin).await;
    let all = as_admin
        .list_sessions(pb::ListSessionsRequest {
            all_users: true,
            ..Default::default()
        })
        .await
        .expect("admin lists all")
        .into_inner();
    assert!(all.sessions.iter().any(|x| x.id == s.id));
    as_admin.delete(r()).await.expect("admin deletes");
    watch_until(
        &mut as_admin,
        &s.id,
        Duration::from_secs(30),
        is(pb::ObservedState::Deleted),
    )
    .await;
}

#[tokio::test]
async fn twenty_concurrent_launches_onto_room_for_ten_place_exactly_ten() {
    if !docker("twenty_concurrent_launches") {
        return;
    }
    // Workspaces of 0.25 cores on an agent of 2.5: room for ten.
    let stack = Stack::start(Opts {
        agent_cores: Some(2.5),
        ..Opts::default()
    })
    .await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(stack.user(&format!("u{i}"), &[]).await);
    }
    let mut launches = Vec::new();
    for u in &users {
        let mut client = stack.sessions(&u.credential).await;
        let workspace_id = stack.workspace_id.clone();
        launches.push(tokio::spawn(async move {
            client
                .request_session(pb::RequestSessionRequest {
                    workspace_id,
                    ..Default::default()
                })
                .await
        }));
    }
    let mut placed = Vec::new();
    let mut refused = Vec::new();
    for l in launches {
        match l.await.unwrap() {
            Ok(s) => placed.push(s.into_inner()),
            Err(e) => refused.push(e),
        }
    }
    assert_eq!(
        placed.len(),
        10,
        "refused: {:?}",
        refused.iter().map(|e| e.message()).collect::<Vec<_>>()
    );
    for e in &refused {
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(
            e.message().contains("core(s) free of 2.5"),
            "{}",
            e.message()
        );
    }
    // All ten come up (the agent's own check agrees).
    let mut admin = stack.sessions(&stack.admin).await;
    for s in &placed {
        watch_until(
            &mut admin,
            &s.id,
            Duration::from_secs(90),
            is(pb::ObservedState::Running),
        )
        .await;
    }
    // ExplainPlacement now says why nothing more fits.
    let explained = stack
        .sessions(&users[0].credential)
        .await
        .explain_placement(pb::ExplainPlacementRequest {
            workspace_id: stack.workspace_id.clone(),
            ..Default::default()
        })
        .await
        .expect("explain placement")
        .into_inner();
    assert!(explained.agent_id.is_empty());
    assert_eq!(explained.agents.len(), 1);
    assert!(
        explained.summary.contains("0 core(s) free of 2.5"),
        "{}",
        explained.summary
    );
}
