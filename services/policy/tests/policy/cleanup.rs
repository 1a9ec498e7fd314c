//! Deleting a group removes everything that refers to it, and nothing else.

use crate::common::{ALL_USERS_ID, Backend, Code, Env, Kind, Outcome, both_backends, pb};

both_backends!(deleting_a_group_removes_what_refers_to_it);

/// A group with one of everything that can refer to a group, for `user`; returns the group and
/// the workspace only it is assigned.
async fn furnished(env: &Env, name: &str, priority: i32, user: &str) -> (pb::Group, pb::Workspace) {
    let group = env.group(name, priority).await;
    env.add_member(&group.id, user).await;
    env.set(
        &group.id,
        "max_kasms_per_user",
        Kind::IntValue(i64::from(priority)),
    )
    .await;
    env.grant(&group.id, "zones.view").await;
    let ws = env
        .workspace(&format!("kasmweb/{}:1.0", name.to_lowercase()), Some(false))
        .await;
    env.admin()
        .assign_workspace(pb::WorkspaceAssignmentRequest {
            group_id: group.id.clone(),
            workspace_id: ws.id.clone(),
        })
        .await
        .must();
    env.admin()
        .create_file_mapping(pb::FileMapping {
            scope: Some(pb::file_mapping::Scope::GroupId(group.id.clone())),
            name: "motd".into(),
            destination: format!("/etc/{name}"),
            content: name.into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .must();
    env.admin()
        .create_sso_group_mapping(pb::SsoGroupMapping {
            group_id: group.id.clone(),
            provider_id: "corp".into(),
            provider_type: "oidc".into(),
            assign_all_users: true,
            ..Default::default()
        })
        .await
        .must();
    (group, ws)
}

/// Rows that refer to `group_id`, per table.
async fn rows(env: &Env, group_id: &str) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for (table, column) in [
        ("groups", "id"),
        ("memberships", "group_id"),
        ("group_settings", "group_id"),
        ("group_permissions", "group_id"),
        ("group_workspaces", "group_id"),
        ("file_mappings", "scope_id"),
        ("sso_mappings", "group_id"),
    ] {
        counts.push((table, env.count(table, column, group_id).await));
    }
    counts
}

async fn deleting_a_group_removes_what_refers_to_it(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let (doomed, doomed_ws) = furnished(&env, "Doomed", 10, &user).await;
    let (kept, kept_ws) = furnished(&env, "Kept", 20, &user).await;
    let everything = |n: i64| {
        vec![
            ("groups", 1),
            ("memberships", n),
            ("group_settings", n),
            ("group_permissions", n),
            ("group_workspaces", n),
            ("file_mappings", n),
            ("sso_mappings", n),
        ]
    };
    assert_eq!(rows(&env, &doomed.id).await, everything(1));
    assert_eq!(rows(&env, &kept.id).await, everything(1));
    assert_eq!(
        env.value(&user, "max_kasms_per_user").await,
        Some(Kind::IntValue(10))
    );

    env.admin()
        .delete_group(pb::DeleteGroupRequest {
            group_id: doomed.id.clone(),
        })
        .await
        .must();

    let mut gone = everything(0);
    gone[0] = ("groups", 0);
    assert_eq!(rows(&env, &doomed.id).await, gone);
    assert_eq!(rows(&env, &kept.id).await, everything(1));

    // Through the API.
    env.get_group(&doomed.id).await.fails(Code::NotFound);
    assert_eq!(
        env.user_groups(&user).await,
        vec![kept.id.clone(), ALL_USERS_ID.to_owned()]
    );
    assert_eq!(
        env.value(&user, "max_kasms_per_user").await,
        Some(Kind::IntValue(20))
    );
    let permissions = client
        .clone()
        .get_effective_permissions(pb::GetEffectivePermissionsRequest::default())
        .await
        .must();
    assert_eq!(permissions.permissions, vec!["zones.view"]);
    assert_eq!(env.launchable(&user).await, vec![kept_ws.id.clone()]);
    // The workspace itself stays; only its assignment went.
    env.admin()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: doomed_ws.id.clone(),
        })
        .await
        .must();
    let files = client
        .clone()
        .resolve_file_mappings(pb::ResolveFileMappingsRequest {
            user_id: String::new(),
            workspace_id: kept_ws.id.clone(),
        })
        .await
        .must()
        .file_mappings;
    let destinations: Vec<String> = files
        .into_iter()
        .filter_map(|f| f.mapping.map(|m| m.destination))
        .collect();
    assert_eq!(destinations, vec!["/etc/Kept"]);
    let sso = env
        .admin()
        .list_sso_group_mappings(pb::ListSsoGroupMappingsRequest {
            group_id: String::new(),
            provider_id: "corp".into(),
        })
        .await
        .must()
        .mappings;
    assert_eq!(sso.len(), 1);
    assert_eq!(sso[0].group_id, kept.id);
    // The name is free again.
    env.group("Doomed", 10).await;
}
