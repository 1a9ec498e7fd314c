//! The last administrator cannot be removed: not from Administrators, not by its setting, a
//! stronger `false`, or deleting the group that makes them one; not even by two removals racing.

use crate::common::{
    ADMINISTRATORS_ID, Backend, Code, Env, Kind, Outcome, both_backends, member, pb,
};
use crate::escalation::rights;

both_backends!(
    the_last_administrator_cannot_be_removed,
    racing_removals_leave_an_administrator,
    an_sso_login_does_not_remove_the_last_administrator,
);

/// The last administrator cannot be removed from Administrators, nor lose administrator by
/// its setting, a stronger `false`, or the deletion of the only group that makes them one.
async fn the_last_administrator_cannot_be_removed(backend: Backend) {
    let env = Env::start(backend).await;
    let admin = env.admin_id.clone();
    let mut c = env.admin();
    let last = |status: tonic::Status| {
        assert!(status.message().contains("no administrator"), "{status:?}");
    };
    last(
        c.remove_group_member(member(ADMINISTRATORS_ID, &admin))
            .await
            .fails(Code::FailedPrecondition),
    );
    last(
        env.try_set(ADMINISTRATORS_ID, "administrator", Kind::BoolValue(false))
            .await
            .fails(Code::FailedPrecondition),
    );
    last(
        c.unset_group_setting(pb::UnsetGroupSettingRequest {
            group_id: ADMINISTRATORS_ID.into(),
            name: "administrator".into(),
        })
        .await
        .fails(Code::FailedPrecondition),
    );
    // Joining a stronger group that says false would demote them too.
    env.set_priority(ADMINISTRATORS_ID, 2).await;
    let deny = env.group("Deny", 1).await;
    env.set(&deny.id, "administrator", Kind::BoolValue(false))
        .await;
    last(
        c.add_group_member(member(&deny.id, &admin))
            .await
            .fails(Code::FailedPrecondition),
    );
    // Made administrator only by a custom group, which cannot be deleted or weakened then.
    let custom = env.group("Custom admins", 3).await;
    env.set(&custom.id, "administrator", Kind::BoolValue(true))
        .await;
    env.add_member(&custom.id, &admin).await;
    c.remove_group_member(member(ADMINISTRATORS_ID, &admin))
        .await
        .must();
    last(
        c.delete_group(pb::DeleteGroupRequest {
            group_id: custom.id.clone(),
        })
        .await
        .fails(Code::FailedPrecondition),
    );
    assert!(rights(&env.admin()).await.0);
    // With a second administrator, the first may go.
    let (second, second_client) = env.user().await;
    env.add_member(ADMINISTRATORS_ID, &second).await;
    c.delete_group(pb::DeleteGroupRequest {
        group_id: custom.id,
    })
    .await
    .must();
    assert!(!rights(&env.admin()).await.0);
    assert!(rights(&second_client).await.0);
}

/// Two administrators remove each other at the same moment: one removal wins, the other is
/// refused, and an administrator remains.
async fn racing_removals_leave_an_administrator(backend: Backend) {
    let env = Env::start(backend).await;
    let (second, second_client) = env.user().await;
    env.add_member(ADMINISTRATORS_ID, &second).await;
    let mut first = env.admin();
    let mut other = second_client.clone();
    let admin_id = env.admin_id.clone();
    let (a, b) = tokio::join!(
        first.remove_group_member(member(ADMINISTRATORS_ID, &second)),
        other.remove_group_member(member(ADMINISTRATORS_ID, &admin_id)),
    );
    let outcomes = [
        a.map(|r| r.into_inner().removed),
        b.map(|r| r.into_inner().removed),
    ];
    let removed = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
    let refused = outcomes
        .iter()
        .filter(|o| {
            matches!(o, Err(s) if s.code() == Code::FailedPrecondition
                || s.code() == Code::PermissionDenied)
        })
        .count();
    assert_eq!((removed, refused), (1, 1), "{outcomes:?}");
    let remaining = [rights(&env.admin()).await.0, rights(&second_client).await.0];
    assert_eq!(remaining.iter().filter(|a| **a).count(), 1, "{remaining:?}");
}

/// An SSO login that no longer matches the mapped group making the last administrator one keeps
/// that membership (the rest of the login applies).
async fn an_sso_login_does_not_remove_the_last_administrator(backend: Backend) {
    let env = Env::start(backend).await;
    let admin = env.admin_id.clone();
    let custom = env.group("SSO admins", 3).await;
    env.set(&custom.id, "administrator", Kind::BoolValue(true))
        .await;
    env.admin()
        .create_sso_group_mapping(pb::SsoGroupMapping {
            group_id: custom.id.clone(),
            provider_id: "corp".into(),
            provider_type: "oidc".into(),
            group_attributes: vec!["admins".into()],
            ..Default::default()
        })
        .await
        .must();
    let login = |attributes: Vec<String>| pb::ApplySsoLoginRequest {
        user_id: admin.clone(),
        provider_id: "corp".into(),
        attributes,
    };
    let mut identity = env.service().await;
    let joined = identity
        .apply_sso_login(login(vec!["admins".into()]))
        .await
        .must();
    assert_eq!(joined.added_group_ids, vec![custom.id.clone()]);
    env.admin()
        .remove_group_member(member(ADMINISTRATORS_ID, &admin))
        .await
        .must();
    let applied = identity.apply_sso_login(login(vec![])).await.must();
    assert!(applied.removed_group_ids.is_empty(), "{applied:?}");
    assert!(rights(&env.admin()).await.0);
}
