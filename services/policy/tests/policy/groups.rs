//! Groups: the seeded system groups, CRUD, names, priorities and listing.

use crate::common::{
    ADMINISTRATORS_ID, ALL_USERS_ID, Backend, Code, Env, Kind, Outcome, both_backends, group_by_id,
    group_by_name, ids, page, pb,
};

both_backends!(
    system_groups_are_seeded_and_protected,
    groups_are_created_read_updated_and_deleted,
    group_names_are_unique_ignoring_case,
    priorities_must_be_in_range,
    groups_list_by_priority_then_name_in_pages,
);

async fn system_groups_are_seeded_and_protected(backend: Backend) {
    let env = Env::start(backend).await;
    let admins = env.get_group(ADMINISTRATORS_ID).await.must();
    assert_eq!(admins.name, "Administrators");
    assert_eq!(admins.priority, 1);
    assert!(admins.is_system);
    // The harness's administrator is its one member.
    assert_eq!(admins.member_count, 1);
    let all = env
        .admin()
        .get_group(group_by_name("all users"))
        .await
        .must();
    assert_eq!(all.id, ALL_USERS_ID);
    assert_eq!(all.priority, 1000);
    assert!(all.is_system);

    let admin_settings = env.group_settings(ADMINISTRATORS_ID).await;
    assert!(
        admin_settings.contains(&("administrator".into(), Some(Kind::BoolValue(true)))),
        "{admin_settings:?}"
    );
    let all_settings = env.group_settings(ALL_USERS_ID).await;
    for expected in [
        ("allow_kasm_audio", Kind::BoolValue(true)),
        ("keepalive_expiration", Kind::IntValue(3600)),
        ("keepalive_interval", Kind::IntValue(300)),
    ] {
        assert!(
            all_settings.contains(&(expected.0.into(), Some(expected.1.clone()))),
            "{expected:?} in {all_settings:?}"
        );
    }
    assert!(
        !all_settings.iter().any(|(name, _)| name == "administrator"),
        "{all_settings:?}"
    );

    for id in [ADMINISTRATORS_ID, ALL_USERS_ID] {
        env.admin()
            .delete_group(pb::DeleteGroupRequest {
                group_id: id.into(),
            })
            .await
            .fails(Code::FailedPrecondition);
        env.admin()
            .update_group(pb::UpdateGroupRequest {
                group_id: id.into(),
                name: Some("Renamed".into()),
                ..Default::default()
            })
            .await
            .fails(Code::FailedPrecondition);
        // Services are refused too (no service may call DeleteGroup at all).
        env.service()
            .await
            .delete_group(pb::DeleteGroupRequest {
                group_id: id.into(),
            })
            .await
            .fails(Code::PermissionDenied);
    }
    // Changing only the case is still a rename.
    env.admin()
        .update_group(pb::UpdateGroupRequest {
            group_id: ALL_USERS_ID.into(),
            name: Some("ALL USERS".into()),
            ..Default::default()
        })
        .await
        .fails(Code::FailedPrecondition);

    // Priority and description may change, and their own name may be repeated.
    let moved = env
        .admin()
        .update_group(pb::UpdateGroupRequest {
            group_id: ALL_USERS_ID.into(),
            name: Some("All Users".into()),
            description: Some("everyone".into()),
            priority: Some(900),
        })
        .await
        .must();
    assert_eq!(moved.priority, 900);
    assert_eq!(moved.description, "everyone");
    assert_eq!(moved.name, "All Users");
    assert!(moved.is_system);
    let again = env.get_group(ALL_USERS_ID).await.must();
    assert_eq!(again.priority, 900);
    assert_eq!(again.name, "All Users");
    assert_eq!(
        env.get_group(ADMINISTRATORS_ID).await.must().name,
        "Administrators"
    );
}

async fn groups_are_created_read_updated_and_deleted(backend: Backend) {
    let env = Env::start(backend).await;
    let created = env
        .admin()
        .create_group(pb::CreateGroupRequest {
            name: "  Developers ".into(),
            description: "people who build".into(),
            priority: 10,
        })
        .await
        .must();
    assert_eq!(created.name, "Developers");
    assert_eq!(created.description, "people who build");
    assert_eq!(created.priority, 10);
    assert!(!created.is_system);
    assert_eq!(created.member_count, 0);
    assert!(uuid::Uuid::parse_str(&created.id).is_ok(), "{}", created.id);

    // What create answered is what a read answers, timestamps included.
    let by_id = env.get_group(&created.id).await.must();
    assert_eq!(by_id, created);
    let by_name = env
        .admin()
        .get_group(group_by_name("DEVELOPERS"))
        .await
        .must();
    assert_eq!(by_name, created);

    let updated = env
        .admin()
        .update_group(pb::UpdateGroupRequest {
            group_id: created.id.clone(),
            name: Some("Engineers".into()),
            description: Some("renamed".into()),
            priority: Some(20),
        })
        .await
        .must();
    assert_eq!(updated.name, "Engineers");
    assert_eq!(updated.description, "renamed");
    assert_eq!(updated.priority, 20);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(env.get_group(&created.id).await.must(), updated);
    env.admin()
        .get_group(group_by_name("Developers"))
        .await
        .fails(Code::NotFound);

    // Fields not given are kept.
    let touched = env
        .admin()
        .update_group(pb::UpdateGroupRequest {
            group_id: created.id.clone(),
            priority: Some(30),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(touched.name, "Engineers");
    assert_eq!(touched.description, "renamed");
    assert_eq!(touched.priority, 30);

    env.admin()
        .create_group(pb::CreateGroupRequest {
            name: "   ".into(),
            priority: 10,
            ..Default::default()
        })
        .await
        .invalid("name");
    env.admin()
        .get_group(group_by_id("not-a-uuid"))
        .await
        .invalid("group_id");
    env.admin()
        .get_group(pb::GetGroupRequest { key: None })
        .await
        .invalid("key");

    env.admin()
        .delete_group(pb::DeleteGroupRequest {
            group_id: created.id.clone(),
        })
        .await
        .must();
    env.get_group(&created.id).await.fails(Code::NotFound);
    env.admin()
        .delete_group(pb::DeleteGroupRequest {
            group_id: created.id.clone(),
        })
        .await
        .fails(Code::NotFound);
    env.admin()
        .update_group(pb::UpdateGroupRequest {
            group_id: created.id.clone(),
            priority: Some(5),
            ..Default::default()
        })
        .await
        .fails(Code::NotFound);
}

async fn group_names_are_unique_ignoring_case(backend: Backend) {
    let env = Env::start(backend).await;
    let first = env.group("Support", 10).await;
    for name in ["Support", "support", " SUPPORT "] {
        env.admin()
            .create_group(pb::CreateGroupRequest {
                name: name.into(),
                priority: 20,
                ..Default::default()
            })
            .await
            .fails(Code::AlreadyExists);
    }
    env.admin()
        .create_group(pb::CreateGroupRequest {
            name: "administrators".into(),
            priority: 20,
            ..Default::default()
        })
        .await
        .fails(Code::AlreadyExists);
    let second = env.group("Sales", 10).await;
    env.admin()
        .update_group(pb::UpdateGroupRequest {
            group_id: second.id.clone(),
            name: Some("SUPPORT".into()),
            ..Default::default()
        })
        .await
        .fails(Code::AlreadyExists);
    assert_eq!(env.get_group(&second.id).await.must().name, "Sales");
    // A group may change the case of its own name.
    let recased = env
        .admin()
        .update_group(pb::UpdateGroupRequest {
            group_id: first.id.clone(),
            name: Some("SUPPORT".into()),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(recased.name, "SUPPORT");
}

async fn priorities_must_be_in_range(backend: Backend) {
    let env = Env::start(backend).await;
    for bad in [0, -1, 1_000_001, i32::MIN, i32::MAX] {
        env.admin()
            .create_group(pb::CreateGroupRequest {
                name: format!("bad {bad}"),
                priority: bad,
                ..Default::default()
            })
            .await
            .invalid("priority");
    }
    let strongest = env.group("Strongest", 1).await;
    let weakest = env.group("Weakest", 1_000_000).await;
    assert_eq!(strongest.priority, 1);
    assert_eq!(weakest.priority, 1_000_000);
    for bad in [0, 1_000_001] {
        env.admin()
            .update_group(pb::UpdateGroupRequest {
                group_id: weakest.id.clone(),
                priority: Some(bad),
                ..Default::default()
            })
            .await
            .invalid("priority");
    }
    assert_eq!(env.get_group(&weakest.id).await.must().priority, 1_000_000);
}

async fn groups_list_by_priority_then_name_in_pages(backend: Backend) {
    let env = Env::start(backend).await;
    // Created in an order where id order and name order disagree at priority 50.
    let gamma = env.group("Gamma", 50).await;
    let alpha = env.group("Alpha", 50).await;
    let beta = env.group("Beta", 10).await;
    let delta = env.group("Delta", 2000).await;
    let expected = vec![
        ADMINISTRATORS_ID.to_owned(),
        beta.id.clone(),
        alpha.id.clone(),
        gamma.id.clone(),
        ALL_USERS_ID.to_owned(),
        delta.id.clone(),
    ];

    let everything = env
        .admin()
        .list_groups(pb::ListGroupsRequest::default())
        .await
        .must();
    assert_eq!(ids(&everything.groups), expected);
    assert!(
        everything
            .page
            .unwrap_or_default()
            .next_page_token
            .is_empty()
    );

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let answer = env
            .admin()
            .list_groups(pb::ListGroupsRequest {
                page: page(2, &token),
                ..Default::default()
            })
            .await
            .must();
        assert!(answer.groups.len() <= 2);
        pages += 1;
        seen.extend(ids(&answer.groups));
        token = answer.page.unwrap_or_default().next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    assert_eq!(
        filtered(&env, "TA").await,
        vec![beta.id.clone(), delta.id.clone()]
    );
    assert_eq!(filtered(&env, "amm").await, vec![gamma.id.clone()]);
    assert_eq!(filtered(&env, "user").await, vec![ALL_USERS_ID.to_owned()]);
    // LIKE wildcards are matched literally.
    assert!(filtered(&env, "%").await.is_empty());
    assert!(filtered(&env, "_").await.is_empty());

    // Paging through a filtered list.
    let first = env
        .admin()
        .list_groups(pb::ListGroupsRequest {
            page: page(1, ""),
            name_contains: "a".into(),
        })
        .await
        .must();
    assert_eq!(ids(&first.groups), vec![ADMINISTRATORS_ID.to_owned()]);
    let second = env
        .admin()
        .list_groups(pb::ListGroupsRequest {
            page: page(1, &first.page.unwrap_or_default().next_page_token),
            name_contains: "a".into(),
        })
        .await
        .must();
    assert_eq!(ids(&second.groups), vec![beta.id.clone()]);

    env.admin()
        .list_groups(pb::ListGroupsRequest {
            page: page(2, "bm90IGEgdG9rZW4"),
            ..Default::default()
        })
        .await
        .invalid("page.page_token");
    env.admin()
        .list_groups(pb::ListGroupsRequest {
            page: page(1001, ""),
            ..Default::default()
        })
        .await
        .invalid("page.page_size");
}

/// The ids of the groups whose name contains `needle`, in list order.
async fn filtered(env: &Env, needle: &str) -> Vec<String> {
    ids(&env
        .admin()
        .list_groups(pb::ListGroupsRequest {
            page: None,
            name_contains: needle.into(),
        })
        .await
        .must()
        .groups)
}
