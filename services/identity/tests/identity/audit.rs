//! The audit trail: which events are written, filters, and newest-first paging.

use std::collections::HashSet;

use crate::common::{
    Backend, Code, Env, NEW_PASSWORD, Outcome, PASSWORD, PageRequest, both_backends, nanos, pb,
};

both_backends!(events_are_recorded_filtered_and_paged);

async fn events_are_recorded_filtered_and_paged(backend: Backend) {
    let env = Env::start(backend).await;
    let admin_id = env.admin_id().await;
    let bob = env.create_user("bob").await;
    let (_, bob_client) = env.login_ok("bob", PASSWORD).await;
    env.login("bob", "wrong password!")
        .await
        .fails(Code::Unauthenticated);
    env.login("nobody", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    bob_client
        .clone()
        .change_password(pb::ChangePasswordRequest {
            old_password: PASSWORD.into(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .must();
    let key = env
        .admin()
        .create_api_key(pb::CreateApiKeyRequest {
            name: "k".into(),
            permissions: vec!["users.view".into()],
            ..Default::default()
        })
        .await
        .must()
        .api_key
        .expect("key");
    env.admin()
        .revoke_api_key(pb::RevokeApiKeyRequest { id: key.id.clone() })
        .await
        .must();

    // Bob's story, newest first.
    let bobs = env
        .audit(pb::ListAuditEventsRequest {
            user_id: bob.id.clone(),
            ..Default::default()
        })
        .await;
    let kinds: Vec<&str> = bobs.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "password.change",
            "login.failure",
            "login.success",
            "user.create"
        ]
    );
    assert!(bobs.iter().all(|e| e.user_id == bob.id));
    let detail = |e: &pb::AuditEvent| -> serde_json::Value {
        serde_json::from_str(&e.detail).expect("detail is JSON")
    };
    assert_eq!(bobs[0].actor, format!("user:{}", bob.id));
    assert_eq!(bobs[1].actor, "anonymous");
    assert_eq!(detail(&bobs[1])["reason"], "bad_password");
    assert_eq!(detail(&bobs[1])["failed_count"], 1);
    assert_eq!(bobs[2].actor, format!("user:{}", bob.id));
    assert!(detail(&bobs[2])["login_session_id"].is_string());
    assert_eq!(bobs[3].actor, format!("user:{admin_id}"));
    assert_eq!(detail(&bobs[3])["username"], "bob");

    // By kind, across users.
    let failures = env.audit_kind("login.failure").await;
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].user_id, "", "unknown users have no id");
    assert_eq!(detail(&failures[0])["reason"], "unknown_user");
    assert_eq!(detail(&failures[0])["username"], "nobody");
    assert_eq!(failures[1].user_id, bob.id);
    let created = env.audit_kind("api_key.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(detail(&created[0])["api_key_id"], key.id);
    assert_eq!(created[0].actor, format!("user:{admin_id}"));
    let revoked = env.audit_kind("api_key.revoke").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(detail(&revoked[0])["api_key_id"], key.id);
    let successes = env.audit_kind("login.success").await;
    assert_eq!(successes.len(), 2, "admin's and bob's logins");
    let users_created = env.audit_kind("user.create").await;
    assert_eq!(users_created.len(), 2);
    assert_eq!(users_created[1].actor, "service", "the bootstrap admin");
    assert!(env.audit_kind("no.such.kind").await.is_empty());
    let both = env
        .audit(pb::ListAuditEventsRequest {
            user_id: bob.id.clone(),
            kind: "login.success".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(both.len(), 1);

    // Paging two at a time walks the same list, newest first, without duplicates.
    let all = env.audit(pb::ListAuditEventsRequest::default()).await;
    assert_eq!(
        all.len(),
        9,
        "{:?}",
        all.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = env
            .admin()
            .list_audit_events(pb::ListAuditEventsRequest {
                page: Some(PageRequest {
                    page_size: 2,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await
            .must();
        assert!(page.events.len() <= 2);
        pages += 1;
        paged.extend(page.events);
        token = page.page.expect("page").next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(paged, all);
    let ids: HashSet<&str> = paged.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), paged.len());
    for pair in paged.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert!(newer.id > older.id);
        assert!(
            nanos(&newer.at) >= nanos(&older.at),
            "{newer:?} before {older:?}"
        );
    }
    assert_eq!(paged[0].kind, "api_key.revoke");
    assert_eq!(paged.last().expect("oldest").kind, "user.create");

    // Time window: everything up to the revoke, nothing after.
    let revoke_at = revoked[0].at;
    let until = env
        .audit(pb::ListAuditEventsRequest {
            until: revoke_at,
            ..Default::default()
        })
        .await;
    assert_eq!(until.len(), 8);
    let since = env
        .audit(pb::ListAuditEventsRequest {
            since: revoke_at,
            ..Default::default()
        })
        .await;
    assert_eq!(since.len(), 1);
    env.admin()
        .list_audit_events(pb::ListAuditEventsRequest {
            since: revoke_at,
            until: all.last().expect("oldest").at,
            ..Default::default()
        })
        .await
        .invalid("until");
    env.admin()
        .list_audit_events(pb::ListAuditEventsRequest {
            user_id: "bob".into(),
            ..Default::default()
        })
        .await
        .invalid("user_id");
    // Changing his password kept bob's own session; he still may not read the trail.
    bob_client
        .clone()
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .fails(Code::PermissionDenied);
}
