//! Group membership, and the user lifecycle notifications identity sends.

use crate::common::{
    ADMINISTRATORS_ID, ALL_USERS_ID, Backend, Code, Env, Outcome, both_backends, ids, member, page,
    pb, stranger,
};

both_backends!(
    members_are_added_listed_and_removed,
    everyone_stays_in_all_users,
    user_lifecycle_keeps_memberships,
    membership_needs_permissions,
);

async fn members_are_added_listed_and_removed(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let weak = env.group("Weak", 10).await;
    let strong = env.group("Strong", 5).await;

    let added = env.add_member(&weak.id, &user).await;
    assert_eq!(added.group_id, weak.id);
    assert_eq!(added.user_id, user);
    assert_eq!(added.source, "manual");
    assert!(added.added_at.is_some());
    // Adding again changes nothing and answers the existing membership.
    let again = env.add_member(&weak.id, &user).await;
    assert_eq!(again, added);
    env.add_member(&strong.id, &user).await;

    let expected = vec![strong.id.clone(), weak.id.clone(), ALL_USERS_ID.to_owned()];
    assert_eq!(env.user_groups(&user).await, expected);
    // The user may list their own groups (empty id: the caller).
    let own = client
        .clone()
        .list_user_groups(pb::ListUserGroupsRequest::default())
        .await
        .must();
    assert_eq!(ids(&own.groups), expected);

    // Paging.
    let first = env
        .admin()
        .list_user_groups(pb::ListUserGroupsRequest {
            user_id: user.clone(),
            page: page(2, ""),
        })
        .await
        .must();
    assert_eq!(ids(&first.groups), expected[..2]);
    let token = first.page.unwrap_or_default().next_page_token;
    assert!(!token.is_empty());
    let second = env
        .admin()
        .list_user_groups(pb::ListUserGroupsRequest {
            user_id: user.clone(),
            page: page(2, &token),
        })
        .await
        .must();
    assert_eq!(ids(&second.groups), expected[2..]);
    assert!(second.page.unwrap_or_default().next_page_token.is_empty());
    // A page token stays good when the group it ended with has been left meanwhile.
    let first = env
        .admin()
        .list_user_groups(pb::ListUserGroupsRequest {
            user_id: user.clone(),
            page: page(1, ""),
        })
        .await
        .must();
    assert_eq!(ids(&first.groups), expected[..1]);
    env.admin()
        .remove_group_member(member(&strong.id, &user))
        .await
        .must();
    let rest = env
        .admin()
        .list_user_groups(pb::ListUserGroupsRequest {
            user_id: user.clone(),
            page: page(10, &first.page.unwrap_or_default().next_page_token),
        })
        .await
        .must();
    assert_eq!(ids(&rest.groups), expected[1..]);
    env.admin()
        .list_user_groups(pb::ListUserGroupsRequest {
            user_id: user.clone(),
            page: page(10, "bm90IGEgdG9rZW4"),
        })
        .await
        .invalid("page.page_token");
    env.add_member(&strong.id, &user).await;

    let members = env
        .admin()
        .list_group_members(pb::ListGroupMembersRequest {
            group_id: weak.id.clone(),
            page: None,
        })
        .await
        .must();
    assert_eq!(members.members.len(), 1);
    assert_eq!(members.members[0].user_id, user);
    assert_eq!(env.get_group(&weak.id).await.must().member_count, 1);

    // Order follows priority, not the order memberships were made.
    env.set_priority(&weak.id, 1).await;
    assert_eq!(
        env.user_groups(&user).await,
        vec![weak.id.clone(), strong.id.clone(), ALL_USERS_ID.to_owned()]
    );

    let removed = env
        .admin()
        .remove_group_member(member(&weak.id, &user))
        .await
        .must();
    assert!(removed.removed);
    let removed = env
        .admin()
        .remove_group_member(member(&weak.id, &user))
        .await
        .must();
    assert!(!removed.removed);
    assert_eq!(
        env.user_groups(&user).await,
        vec![strong.id.clone(), ALL_USERS_ID.to_owned()]
    );
    assert_eq!(env.get_group(&weak.id).await.must().member_count, 0);

    env.admin()
        .add_group_member(member(&stranger(), &user))
        .await
        .fails(Code::NotFound);
    env.admin()
        .add_group_member(member(&weak.id, "not-a-uuid"))
        .await
        .invalid("user_id");
    env.admin()
        .add_group_member(member(&weak.id, ""))
        .await
        .invalid("user_id");
}

async fn everyone_stays_in_all_users(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, _) = env.user().await;
    env.admin()
        .remove_group_member(member(ALL_USERS_ID, &user))
        .await
        .fails(Code::FailedPrecondition);
    assert_eq!(env.user_groups(&user).await, vec![ALL_USERS_ID.to_owned()]);
    // Announced users are listed as members, added by the system.
    let members = env
        .admin()
        .list_group_members(pb::ListGroupMembersRequest {
            group_id: ALL_USERS_ID.into(),
            page: None,
        })
        .await
        .must()
        .members;
    let mine = members
        .iter()
        .find(|m| m.user_id == user)
        .expect("announced user is a member of All Users");
    assert_eq!(mine.source, "system");
    // Members page by user id.
    env.user().await;
    env.user().await;
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let answer = env
            .admin()
            .list_group_members(pb::ListGroupMembersRequest {
                group_id: ALL_USERS_ID.into(),
                page: page(2, &token),
            })
            .await
            .must();
        assert!(answer.members.len() <= 2);
        paged.extend(answer.members.into_iter().map(|m| m.user_id));
        token = answer.page.unwrap_or_default().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    // The administrator, the user and the two just announced, once each.
    assert_eq!(paged.len(), 4, "{paged:?}");
    let mut sorted = paged.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, paged);
    assert_eq!(env.get_group(ALL_USERS_ID).await.must().member_count, 4);
    // A user policy never heard of is still implicitly in All Users.
    assert_eq!(
        env.user_groups(&stranger()).await,
        vec![ALL_USERS_ID.to_owned()]
    );
}

async fn user_lifecycle_keeps_memberships(backend: Backend) {
    let env = Env::start(backend).await;
    assert_eq!(
        env.user_groups(&env.admin_id).await,
        vec![ADMINISTRATORS_ID.to_owned(), ALL_USERS_ID.to_owned()]
    );
    let (user, client) = env.user().await;
    let group = env.group("Temporary", 10).await;
    env.add_member(&group.id, &user).await;
    // Announcing again (identity retrying) is harmless.
    env.service()
        .await
        .user_created(pb::UserLifecycleRequest {
            user_id: user.clone(),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(env.count("memberships", "user_id", &user).await, 2);

    // Only Atrium's services announce users.
    let mut plain = client.clone();
    plain
        .user_created(pb::UserLifecycleRequest {
            user_id: stranger(),
            username: "mallory".into(),
            administrator: true,
        })
        .await
        .fails(Code::PermissionDenied);
    plain
        .user_deleted(pb::UserLifecycleRequest {
            user_id: user.clone(),
            ..Default::default()
        })
        .await
        .fails(Code::PermissionDenied);
    env.admin()
        .user_deleted(pb::UserLifecycleRequest {
            user_id: user.clone(),
            ..Default::default()
        })
        .await
        .fails(Code::PermissionDenied);
    env.service()
        .await
        .user_deleted(pb::UserLifecycleRequest {
            user_id: "nope".into(),
            ..Default::default()
        })
        .await
        .invalid("user_id");

    env.service()
        .await
        .user_deleted(pb::UserLifecycleRequest {
            user_id: user.clone(),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(env.count("memberships", "user_id", &user).await, 0);
    let members = env
        .admin()
        .list_group_members(pb::ListGroupMembersRequest {
            group_id: group.id.clone(),
            page: None,
        })
        .await
        .must();
    assert!(members.members.is_empty(), "{members:?}");
    assert_eq!(env.user_groups(&user).await, vec![ALL_USERS_ID.to_owned()]);
    // Other users keep theirs.
    assert_eq!(env.count("memberships", "user_id", &env.admin_id).await, 2);
}

async fn membership_needs_permissions(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let (other, _) = env.user().await;
    let group = env.group("Club", 10).await;
    let mut plain = client.clone();
    plain
        .add_group_member(member(&group.id, &user))
        .await
        .fails(Code::PermissionDenied);
    plain
        .list_group_members(pb::ListGroupMembersRequest {
            group_id: group.id.clone(),
            page: None,
        })
        .await
        .fails(Code::PermissionDenied);
    plain
        .list_user_groups(pb::ListUserGroupsRequest {
            user_id: other.clone(),
            page: None,
        })
        .await
        .fails(Code::PermissionDenied);
    // Their own id, spelled any way, is still themselves.
    let own = plain
        .list_user_groups(pb::ListUserGroupsRequest {
            user_id: user.replace('-', "").to_uppercase(),
            page: None,
        })
        .await
        .must();
    assert_eq!(ids(&own.groups), vec![ALL_USERS_ID.to_owned()]);
    assert!(env.user_groups(&user).await.len() == 1);
    // No credential at all.
    env.anonymous()
        .await
        .list_user_groups(pb::ListUserGroupsRequest::default())
        .await
        .fails(Code::Unauthenticated);
}
