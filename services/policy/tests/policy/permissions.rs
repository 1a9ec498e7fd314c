//! Permissions: grants open calls and revocation closes them, administrators hold everything,
//! and reading someone else's policy needs a permission.

use crate::common::{
    ADMINISTRATORS_ID, ALL_USERS_ID, Backend, Code, Env, Kind, Outcome, both_backends, pb,
    permission_request, resolve_for,
};

both_backends!(
    grants_open_calls_and_revocations_close_them,
    administrators_hold_every_permission,
    reading_another_users_policy_needs_settings_view,
    modifying_groups_does_not_let_a_user_raise_their_own_rights,
);

/// groups.modify and settings.modify let a user manage groups, but not give anyone (themselves
/// included) rights the user lacks: administrator membership and settings, permissions they do
/// not hold, SSO logins by hand.
async fn modifying_groups_does_not_let_a_user_raise_their_own_rights(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let ops = env.group("Ops", 10).await;
    env.add_member(&ops.id, &user).await;
    for permission in ["groups.modify", "settings.modify", "sso.modify"] {
        env.grant(&ops.id, permission).await;
    }
    let mut c = client.clone();
    let status = c
        .add_group_member(crate::common::member(ADMINISTRATORS_ID, &user))
        .await
        .fails(Code::PermissionDenied);
    assert!(status.message().contains("administrator"), "{status:?}");
    let status = c
        .set_group_setting(pb::SetGroupSettingRequest {
            group_id: ops.id.clone(),
            name: "administrator".into(),
            raw_value: "true".into(),
            value: None,
        })
        .await
        .fails(Code::PermissionDenied);
    assert!(status.message().contains("administrator"), "{status:?}");
    let status = c
        .grant_permission(permission_request(&ops.id, "api_keys.manage"))
        .await
        .fails(Code::PermissionDenied);
    assert!(status.message().contains("api_keys.manage"), "{status:?}");
    // A permission the user holds may be passed on.
    let helpers = env.group("Helpers", 20).await;
    c.grant_permission(permission_request(&helpers.id, "groups.modify"))
        .await
        .must();
    // Joining a group that grants more than the user holds is refused.
    let keys = env.group("Key managers", 30).await;
    env.grant(&keys.id, "api_keys.manage").await;
    c.add_group_member(crate::common::member(&keys.id, &user))
        .await
        .fails(Code::PermissionDenied);
    c.apply_sso_login(pb::ApplySsoLoginRequest {
        user_id: user.clone(),
        provider_id: "corp".into(),
        attributes: vec![],
    })
    .await
    .fails(Code::PermissionDenied);
    // Nothing changed: the user is still no administrator.
    let perms = c
        .get_effective_permissions(pb::GetEffectivePermissionsRequest::default())
        .await
        .must();
    assert!(!perms.administrator);
    assert!(!perms.permissions.contains(&"api_keys.manage".to_owned()));
    // An administrator may do all of it.
    env.admin()
        .add_group_member(crate::common::member(&keys.id, &user))
        .await
        .must();
}

fn create_group(name: &str) -> pb::CreateGroupRequest {
    pb::CreateGroupRequest {
        name: name.into(),
        description: String::new(),
        priority: 100,
    }
}

async fn grants_open_calls_and_revocations_close_them(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let mut plain = client.clone();
    let status = plain
        .create_group(create_group("Mine"))
        .await
        .fails(Code::PermissionDenied);
    assert!(status.message().contains("groups.create"), "{status:?}");

    let ops = env.group("Ops", 10).await;
    env.add_member(&ops.id, &user).await;
    let granted = env.grant(&ops.id, "groups.create").await;
    assert_eq!(granted.group_id, ops.id);
    assert_eq!(granted.permissions, vec!["groups.create"]);
    // Granting twice is harmless.
    assert_eq!(
        env.grant(&ops.id, "groups.create").await.permissions,
        vec!["groups.create"]
    );
    let created = plain.create_group(create_group("Mine")).await.must();
    assert_eq!(created.name, "Mine");
    // Only what was granted.
    plain
        .delete_group(pb::DeleteGroupRequest {
            group_id: created.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);

    let listed = env
        .admin()
        .list_group_permissions(pb::ListGroupPermissionsRequest {
            group_id: ops.id.clone(),
        })
        .await
        .must();
    assert_eq!(listed.permissions, vec!["groups.create"]);
    let effective = plain
        .get_effective_permissions(pb::GetEffectivePermissionsRequest::default())
        .await
        .must();
    assert_eq!(effective.user_id, user);
    assert!(!effective.administrator);
    assert_eq!(effective.permissions, vec!["groups.create"]);

    let revoked = env
        .admin()
        .revoke_permission(permission_request(&ops.id, "groups.create"))
        .await
        .must();
    assert!(revoked.permissions.is_empty());
    plain
        .create_group(create_group("Another"))
        .await
        .fails(Code::PermissionDenied);

    // A grant to All Users reaches every user, including ones announced later.
    env.grant(ALL_USERS_ID, "zones.view").await;
    let (_, newcomer) = env.user().await;
    newcomer
        .clone()
        .list_zones(pb::ListZonesRequest {})
        .await
        .must();

    for bad in ["groups.destroy", "", "GROUPS.CREATE"] {
        env.admin()
            .grant_permission(permission_request(&ops.id, bad))
            .await
            .invalid("permission");
    }
    env.admin()
        .revoke_permission(permission_request(&ops.id, "users.explode"))
        .await
        .invalid("permission");
    // Users cannot grant themselves anything.
    plain
        .grant_permission(permission_request(&ops.id, "groups.modify"))
        .await
        .fails(Code::PermissionDenied);
    plain
        .delete_group(pb::DeleteGroupRequest {
            group_id: created.id,
        })
        .await
        .fails(Code::PermissionDenied);
}

async fn administrators_hold_every_permission(backend: Backend) {
    let env = Env::start(backend).await;
    let mut catalogue: Vec<String> = env
        .admin()
        .list_permission_definitions(pb::ListPermissionDefinitionsRequest {})
        .await
        .must()
        .permissions
        .into_iter()
        .map(|p| p.name)
        .collect();
    catalogue.sort();
    assert!(catalogue.contains(&"groups.create".to_owned()));
    let effective = env
        .admin()
        .get_effective_permissions(pb::GetEffectivePermissionsRequest::default())
        .await
        .must();
    assert!(effective.administrator);
    assert_eq!(effective.permissions, catalogue);
    // No permission rows are needed for that.
    assert_eq!(
        env.count("group_permissions", "group_id", ADMINISTRATORS_ID)
            .await,
        0
    );

    // An administrator may do anything, e.g. across concerns.
    let group = env.group("Anything", 10).await;
    env.set(&group.id, "max_kasms_per_user", Kind::IntValue(2))
        .await;
    env.workspace("kasmweb/chrome:1.16.0", None).await;
    env.admin()
        .create_zone(pb::Zone {
            name: "anywhere".into(),
            ..Default::default()
        })
        .await
        .must();

    // The `administrator` setting makes any group an administrators' group.
    let (user, client) = env.user().await;
    let before = client
        .clone()
        .get_effective_permissions(pb::GetEffectivePermissionsRequest::default())
        .await
        .must();
    assert!(!before.administrator);
    assert!(before.permissions.is_empty());
    env.set(&group.id, "administrator", Kind::BoolValue(true))
        .await;
    env.add_member(&group.id, &user).await;
    let after = client
        .clone()
        .get_effective_permissions(pb::GetEffectivePermissionsRequest::default())
        .await
        .must();
    assert!(after.administrator);
    assert_eq!(after.permissions, catalogue);
    client
        .clone()
        .delete_group(pb::DeleteGroupRequest {
            group_id: env.group("Doomed", 10).await.id,
        })
        .await
        .must();
    // A stronger group saying "not an administrator" wins.
    let demoted = env.group("Demoted", 5).await;
    env.set(&demoted.id, "administrator", Kind::BoolValue(false))
        .await;
    env.add_member(&demoted.id, &user).await;
    client
        .clone()
        .create_group(create_group("Nope"))
        .await
        .fails(Code::PermissionDenied);

    // Being a plain member of Administrators is enough.
    let (second, second_client) = env.user().await;
    env.add_member(ADMINISTRATORS_ID, &second).await;
    second_client
        .clone()
        .create_group(create_group("Promoted"))
        .await
        .must();
}

async fn reading_another_users_policy_needs_settings_view(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let (other, _) = env.user().await;
    let mut plain = client.clone();
    assert_eq!(
        plain
            .resolve_effective_policy(resolve_for(""))
            .await
            .must()
            .user_id,
        user
    );
    assert_eq!(
        plain
            .resolve_effective_policy(resolve_for(&user))
            .await
            .must()
            .user_id,
        user
    );
    plain
        .resolve_effective_policy(resolve_for(&other))
        .await
        .fails(Code::PermissionDenied);
    plain
        .explain_effective_policy(resolve_for(&other))
        .await
        .fails(Code::PermissionDenied);
    plain
        .get_effective_permissions(pb::GetEffectivePermissionsRequest {
            user_id: other.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    plain
        .resolve_effective_policy(resolve_for("not-a-uuid"))
        .await
        .invalid("user_id");

    let viewers = env.group("Viewers", 10).await;
    env.add_member(&viewers.id, &user).await;
    env.grant(&viewers.id, "settings.view").await;
    let theirs = plain
        .resolve_effective_policy(resolve_for(&other))
        .await
        .must();
    assert_eq!(theirs.user_id, other);
    plain
        .explain_effective_policy(resolve_for(&other))
        .await
        .must();
    // settings.view is not groups.view.
    plain
        .get_effective_permissions(pb::GetEffectivePermissionsRequest {
            user_id: other.clone(),
        })
        .await
        .fails(Code::PermissionDenied);

    // The service credential may read anyone's, but must say whose.
    let mut service = env.service().await;
    assert_eq!(
        service
            .resolve_effective_policy(resolve_for(&other))
            .await
            .must()
            .user_id,
        other
    );
    service
        .resolve_effective_policy(resolve_for(""))
        .await
        .invalid("user_id");
}
