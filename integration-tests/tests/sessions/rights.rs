//! Who may do what: max_kasms_per_user, pause/stop/delete only as the owner's settings allow
//! (or with the sessions permissions), other users' sessions invisible, free commands for
//! administrators only, and 20 concurrent launches onto an agent with room for 10.

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
    reach(&mut as_dave, &s.id, pb::ObservedState::Running).await;

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
    reach(&mut as_admin, &s.id, pb::ObservedState::Deleted).await;
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
        reach(&mut admin, &s.id, pb::ObservedState::Running).await;
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

/// Each sessions permission grants exactly itself over other users' sessions: a user holding
/// only it tries every other path and is refused. Services: only the gateway's certificate
/// reads secrets, and an agent's certificate reaches nothing here. Sessions sit on a simulated
/// agent (no containers needed to decide who may do what).
#[tokio::test]
async fn each_sessions_permission_grants_exactly_itself() {
    use atrium_launcher::Caller;
    use atrium_proto::policy::v1 as pol;
    use atrium_service_kit::auth::ServiceId;
    let stack = Stack::start(Opts {
        roles: vec![
            atrium_launcher::Role::Identity,
            atrium_launcher::Role::Policy,
            atrium_launcher::Role::SessionManager,
        ],
        ..Opts::default()
    })
    .await;
    atrium_integration_tests::simulated_agent(
        &stack.redis_url,
        &stack.namespace,
        "simulated-agent",
    )
    .await
    .unwrap();
    let owner = stack.user("owner", &[("max_kasms_per_user", "10")]).await;
    let mut as_owner = stack.sessions(&owner.credential).await;
    let target = stack.launch(&owner).await;
    let r = || pb::SessionRef {
        session_id: target.id.clone(),
    };

    let holder = |permission: &'static str| {
        let stack = &stack;
        async move {
            let u = stack.user(&permission.replace('.', "-"), &[]).await;
            stack
                .policy()
                .await
                .grant_permission(pol::GroupPermissionRequest {
                    group_id: u.group_id.clone(),
                    permission: permission.into(),
                })
                .await
                .expect("grant");
            // A fresh login carries nothing of it; the service asks policy each time.
            stack.sessions(&u.credential).await
        }
    };
    let denied = |result: Result<(), tonic::Status>, what: &str| {
        let e = result.expect_err(what);
        assert!(
            matches!(
                e.code(),
                tonic::Code::PermissionDenied | tonic::Code::NotFound
            ),
            "{what}: {e:?}"
        );
    };

    // sessions.view: sees it, changes nothing.
    let mut viewer = holder("sessions.view").await;
    viewer
        .get_session(pb::GetSessionRequest {
            session_id: target.id.clone(),
        })
        .await
        .expect("view");
    viewer.explain_session(r()).await.expect("explain");
    viewer
        .list_sessions(pb::ListSessionsRequest {
            all_users: true,
            ..Default::default()
        })
        .await
        .expect("list all");
    denied(viewer.keepalive(r()).await.map(|_| ()), "view: keepalive");
    denied(viewer.pause(r()).await.map(|_| ()), "view: pause");
    denied(viewer.stop(r()).await.map(|_| ()), "view: stop");
    denied(viewer.resume(r()).await.map(|_| ()), "view: resume");
    denied(viewer.delete(r()).await.map(|_| ()), "view: delete");
    denied(
        viewer.force_delete(r()).await.map(|_| ()),
        "view: force delete",
    );
    denied(
        viewer.get_session_secret(r()).await.map(|_| ()),
        "view: secret",
    );
    denied(
        viewer
            .request_session(pb::RequestSessionRequest {
                user_id: owner.id.clone(),
                workspace_id: stack.workspace_id.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "view: launch for another",
    );

    // sessions.modify: acts on it, but does not delete it or read its secret.
    let mut modifier = holder("sessions.modify").await;
    modifier.keepalive(r()).await.expect("modify: keepalive");
    modifier.pause(r()).await.expect("modify: pause");
    modifier.resume(r()).await.expect("modify: resume");
    denied(modifier.delete(r()).await.map(|_| ()), "modify: delete");
    denied(
        modifier.force_delete(r()).await.map(|_| ()),
        "modify: force delete",
    );
    denied(
        modifier.get_session_secret(r()).await.map(|_| ()),
        "modify: secret",
    );
    denied(
        modifier
            .exec(pb::ExecRequest {
                session_id: target.id.clone(),
                cmd: vec!["id".into()],
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "modify: free command",
    );
    let for_owner = modifier
        .request_session(pb::RequestSessionRequest {
            user_id: owner.id.clone(),
            workspace_id: stack.workspace_id.clone(),
            ..Default::default()
        })
        .await
        .expect("modify: launch for another")
        .into_inner();
    assert_eq!(for_owner.user_id, owner.id);

    // sessions.delete: deletes, and nothing else.
    let mut deleter = holder("sessions.delete").await;
    denied(
        deleter.keepalive(r()).await.map(|_| ()),
        "delete: keepalive",
    );
    denied(deleter.pause(r()).await.map(|_| ()), "delete: pause");
    denied(
        deleter.get_session_secret(r()).await.map(|_| ()),
        "delete: secret",
    );
    deleter
        .delete(pb::SessionRef {
            session_id: for_owner.id.clone(),
        })
        .await
        .expect("delete: delete");
    deleter
        .force_delete(r())
        .await
        .expect("delete: force delete");
    let gone = as_owner
        .get_session(pb::GetSessionRequest {
            session_id: target.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(observed(&gone), pb::ObservedState::Deleted);

    // Services: an agent's certificate reaches nothing; the gateway reads secrets (of
    // running sessions only: this one never ran).
    let mut as_agent = stack.sessions_as(&Caller::Service(ServiceId::Agent)).await;
    denied(
        as_agent
            .get_session(pb::GetSessionRequest {
                session_id: target.id.clone(),
            })
            .await
            .map(|_| ()),
        "agent cert: get",
    );
    denied(
        as_agent.get_session_secret(r()).await.map(|_| ()),
        "agent cert: secret",
    );
    denied(
        as_agent
            .list_sessions(pb::ListSessionsRequest::default())
            .await
            .map(|_| ()),
        "agent cert: list",
    );
    let mut as_gateway = stack.gateway().await;
    let not_running = as_gateway
        .get_session_secret(r())
        .await
        .expect_err("no secret of a session that never ran");
    assert_eq!(not_running.code(), tonic::Code::NotFound);
}
