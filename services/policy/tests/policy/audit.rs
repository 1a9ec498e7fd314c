//! The audit trail: every change through policy is recorded with its actor, target and detail,
//! in the change's own transaction (a refused change records nothing), and listed newest first
//! with filters and paging, to holders of audit.view.

use crate::common::{
    ADMINISTRATORS_ID, Backend, Code, Env, Kind, Outcome, both_backends, member, page, pb,
    permission_request, workspace,
};

both_backends!(
    changes_are_recorded_with_actor_target_and_detail,
    the_trail_pages_and_filters,
    refused_changes_leave_no_event_and_reading_needs_audit_view,
);

async fn events(env: &Env, request: pb::ListAuditEventsRequest) -> Vec<pb::AuditEvent> {
    env.admin().list_audit_events(request).await.must().events
}

fn kinds(events: &[pb::AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

async fn changes_are_recorded_with_actor_target_and_detail(backend: Backend) {
    let env = Env::start(backend).await;
    let actor = format!("user:{}", env.admin_id);
    let g = env.group("Audited", 10).await;
    let (user, _) = env.user().await;
    env.add_member(&g.id, &user).await;
    env.set(&g.id, "allow_kasm_pause", Kind::BoolValue(true))
        .await;
    env.grant(&g.id, "groups.view").await;
    let w = env
        .admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(workspace("kasmweb/chrome:1.16.0")),
            assign_to_all_users: Some(false),
        })
        .await
        .must();
    env.admin()
        .assign_workspace(pb::WorkspaceAssignmentRequest {
            group_id: g.id.clone(),
            workspace_id: w.id.clone(),
        })
        .await
        .must();
    let zone = env
        .admin()
        .create_zone(pb::Zone {
            name: "eu".into(),
            ..Default::default()
        })
        .await
        .must();
    env.admin()
        .remove_group_member(member(&g.id, &user))
        .await
        .must();
    let all = events(&env, pb::ListAuditEventsRequest::default()).await;
    let by_admin: Vec<&pb::AuditEvent> = all.iter().filter(|e| e.actor == actor).collect();
    // Newest first.
    let expected = [
        "member.remove",
        "zone.create",
        "workspace.assign",
        "workspace.create",
        "permission.grant",
        "setting.set",
        "member.add",
        "group.create",
    ];
    assert_eq!(
        by_admin.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        expected
    );
    let target = format!("group:{}", g.id);
    let find = |kind: &str| {
        by_admin
            .iter()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("{kind} recorded"))
    };
    assert_eq!(find("group.create").target, target);
    assert_eq!(find("member.add").user_id, user);
    let set: serde_json::Value = serde_json::from_str(&find("setting.set").detail).unwrap();
    assert_eq!(set["name"], "allow_kasm_pause");
    assert_eq!(set["value"], true);
    assert!(find("permission.grant").detail.contains("groups.view"));
    assert_eq!(
        find("workspace.assign").target,
        format!("workspace:{}", w.id)
    );
    assert_eq!(find("zone.create").target, format!("zone:{}", zone.id));
    assert!(find("group.create").at.is_some());
    // Services are named as services (identity announcing users).
    assert!(
        all.iter()
            .any(|e| e.actor == "service:identity" && e.kind == "member.add" && e.user_id == user)
    );
}

async fn the_trail_pages_and_filters(backend: Backend) {
    let env = Env::start(backend).await;
    let g = env.group("Paged", 10).await;
    for p in ["groups.view", "settings.view", "zones.view"] {
        env.grant(&g.id, p).await;
    }
    let target = format!("group:{}", g.id);
    let grants = events(
        &env,
        pb::ListAuditEventsRequest {
            kind: "permission.grant".into(),
            target: target.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(kinds(&grants), ["permission.grant"; 3]);
    // Two per page, the second page continuing where the first stopped.
    let first = env
        .admin()
        .list_audit_events(pb::ListAuditEventsRequest {
            page: page(2, ""),
            target: target.clone(),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(first.events.len(), 2);
    let token = first.page.expect("page").next_page_token;
    let second = env
        .admin()
        .list_audit_events(pb::ListAuditEventsRequest {
            page: page(2, &token),
            target,
            ..Default::default()
        })
        .await
        .must();
    let all: Vec<String> = first
        .events
        .iter()
        .chain(&second.events)
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    // Time and actor filters.
    let future =
        atrium_service_kit::validate::timestamp(chrono::Utc::now() + chrono::Duration::hours(1));
    assert!(
        events(
            &env,
            pb::ListAuditEventsRequest {
                since: Some(future),
                ..Default::default()
            }
        )
        .await
        .is_empty()
    );
    let mine = events(
        &env,
        pb::ListAuditEventsRequest {
            actor: format!("user:{}", env.admin_id),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(mine.len(), 4);
    env.admin()
        .list_audit_events(pb::ListAuditEventsRequest {
            user_id: "not-a-uuid".into(),
            ..Default::default()
        })
        .await
        .invalid("user_id");
}

async fn refused_changes_leave_no_event_and_reading_needs_audit_view(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let before = events(&env, pb::ListAuditEventsRequest::default())
        .await
        .len();
    let mut c = client.clone();
    c.add_group_member(member(ADMINISTRATORS_ID, &user))
        .await
        .fails(Code::PermissionDenied);
    // Refused inside the transaction (the last administrator): nothing recorded either.
    env.admin()
        .remove_group_member(member(ADMINISTRATORS_ID, &env.admin_id))
        .await
        .fails(Code::FailedPrecondition);
    assert_eq!(
        events(&env, pb::ListAuditEventsRequest::default())
            .await
            .len(),
        before
    );
    c.list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .fails(Code::PermissionDenied);
    let auditors = env.group("Auditors", 10).await;
    env.admin()
        .grant_permission(permission_request(&auditors.id, "audit.view"))
        .await
        .must();
    env.add_member(&auditors.id, &user).await;
    assert!(
        !c.list_audit_events(pb::ListAuditEventsRequest::default())
            .await
            .must()
            .events
            .is_empty()
    );
}
