//! Workspaces: creation and its All Users assignment, launchability, validation, replacement and
//! deletion.

use crate::common::{
    ALL_USERS_ID, Backend, Code, Env, Kind, Outcome, both_backends, pb, stranger, workspace,
};

both_backends!(
    new_workspaces_are_launchable_by_everyone,
    assignment_decides_who_may_launch,
    workspace_joining_all_users_follows_the_config,
    workspaces_are_validated,
    update_replaces_and_delete_cleans_up,
);

fn create(w: pb::Workspace, assign_to_all_users: Option<bool>) -> pb::CreateWorkspaceRequest {
    pb::CreateWorkspaceRequest {
        workspace: Some(w),
        assign_to_all_users,
    }
}

fn assignment(group_id: &str, workspace_id: &str) -> pb::WorkspaceAssignmentRequest {
    pb::WorkspaceAssignmentRequest {
        group_id: group_id.into(),
        workspace_id: workspace_id.into(),
    }
}

async fn new_workspaces_are_launchable_by_everyone(backend: Backend) {
    let env = Env::start(backend).await;
    let chrome = env.workspace("kasmweb/chrome:1.16.0", None).await;
    assert_eq!(chrome.name, "kasmweb/chrome:1.16.0");
    assert!(chrome.enabled);
    // Defaults fill what was not given.
    assert_eq!(chrome.cores, 2.0);
    assert_eq!(chrome.memory_mib, 2768);
    assert_eq!(chrome.run_config_json, "{}");
    assert_eq!(
        env.admin()
            .get_workspace(pb::GetWorkspaceRequest {
                workspace_id: chrome.id.clone(),
            })
            .await
            .must(),
        chrome
    );

    // A user announced after the workspace was made may launch it.
    let (user, client) = env.user().await;
    let own = client
        .clone()
        .list_launchable_workspaces(pb::ListLaunchableWorkspacesRequest::default())
        .await
        .must();
    assert_eq!(
        own.workspaces.iter().map(|w| &w.id).collect::<Vec<_>>(),
        vec![&chrome.id]
    );
    assert_eq!(env.launchable(&user).await, vec![chrome.id.clone()]);
    // A user policy never heard of too (All Users is implicit).
    assert_eq!(env.launchable(&stranger()).await, vec![chrome.id.clone()]);
    // And may read it, without workspaces.view.
    let read = client
        .clone()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: chrome.id.clone(),
        })
        .await
        .must();
    assert_eq!(read.id, chrome.id);
    client
        .clone()
        .list_workspaces(pb::ListWorkspacesRequest::default())
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .create_workspace(create(workspace("evil/miner:latest"), None))
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .list_launchable_workspaces(pb::ListLaunchableWorkspacesRequest {
            user_id: env.admin_id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
}

async fn assignment_decides_who_may_launch(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let (other, _) = env.user().await;
    let group = env.group("Designers", 10).await;
    env.add_member(&group.id, &user).await;

    let gimp = env.workspace("kasmweb/gimp:1.16.0", Some(false)).await;
    assert!(env.launchable(&user).await.is_empty());
    // Not launchable, so not readable by a plain user either.
    client
        .clone()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: gimp.id.clone(),
        })
        .await
        .fails(Code::NotFound);

    let assigned = env
        .admin()
        .assign_workspace(assignment(&group.id, &gimp.id))
        .await
        .must();
    assert!(assigned.changed);
    assert!(
        !env.admin()
            .assign_workspace(assignment(&group.id, &gimp.id))
            .await
            .must()
            .changed
    );
    assert_eq!(env.launchable(&user).await, vec![gimp.id.clone()]);
    assert!(env.launchable(&other).await.is_empty());
    client
        .clone()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: gimp.id.clone(),
        })
        .await
        .must();

    // Disabled workspaces are never launchable, wherever assigned.
    let mut disabled = workspace("kasmweb/old:1.0.0");
    disabled.enabled = false;
    let old = env
        .admin()
        .create_workspace(create(disabled, Some(true)))
        .await
        .must();
    env.admin()
        .assign_workspace(assignment(&group.id, &old.id))
        .await
        .must();
    assert_eq!(env.launchable(&user).await, vec![gimp.id.clone()]);
    let enabled_only = env
        .admin()
        .list_workspaces(pb::ListWorkspacesRequest::default())
        .await
        .must();
    assert!(enabled_only.workspaces.iter().all(|w| w.id != old.id));
    let everything = env
        .admin()
        .list_workspaces(pb::ListWorkspacesRequest {
            page: None,
            include_disabled: true,
        })
        .await
        .must();
    assert_eq!(everything.workspaces.len(), 2);
    // Enabling it makes it launchable.
    let mut enabled = old.clone();
    enabled.enabled = true;
    env.admin()
        .update_workspace(pb::UpdateWorkspaceRequest {
            workspace: Some(enabled),
        })
        .await
        .must();
    let mut now = env.launchable(&user).await;
    now.sort();
    let mut expected = vec![gimp.id.clone(), old.id.clone()];
    expected.sort();
    assert_eq!(now, expected);
    assert_eq!(env.launchable(&other).await, vec![old.id.clone()]);

    let unassigned = env
        .admin()
        .unassign_workspace(assignment(&group.id, &gimp.id))
        .await
        .must();
    assert!(unassigned.changed);
    assert!(!env.launchable(&user).await.contains(&gimp.id));

    env.admin()
        .assign_workspace(assignment(&stranger(), &gimp.id))
        .await
        .fails(Code::NotFound);
    env.admin()
        .assign_workspace(assignment(&group.id, &stranger()))
        .await
        .fails(Code::NotFound);
    client
        .clone()
        .assign_workspace(assignment(ALL_USERS_ID, &gimp.id))
        .await
        .fails(Code::PermissionDenied);
}

async fn workspace_joining_all_users_follows_the_config(backend: Backend) {
    let env = Env::start_with(backend, |config| {
        config.new_workspaces_join_all_users = false;
    })
    .await;
    let (user, _) = env.user().await;
    let private = env.workspace("kasmweb/private:1.0.0", None).await;
    let public = env.workspace("kasmweb/public:1.0.0", Some(true)).await;
    assert_eq!(env.launchable(&user).await, vec![public.id.clone()]);
    assert_eq!(
        env.count("group_workspaces", "workspace_id", &private.id)
            .await,
        0
    );
}

async fn workspaces_are_validated(backend: Backend) {
    let env = Env::start(backend).await;
    let refuse = |w: pb::Workspace| {
        let mut admin = env.admin();
        async move { admin.create_workspace(create(w, None)).await }
    };
    let with = |f: &dyn Fn(&mut pb::Workspace)| {
        let mut w = workspace("kasmweb/chrome:1.16.0");
        f(&mut w);
        w
    };

    let status = refuse(with(&|w| {
        w.run_config_json = r#"{"hostname": "x", "pid_mode": "host"}"#.into();
    }))
    .await
    .invalid("workspace.run_config_json.pid_mode");
    assert!(status.message().contains("pid_mode"), "{status:?}");
    refuse(with(&|w| w.run_config_json = "[]".into()))
        .await
        .invalid("workspace.run_config_json");
    refuse(with(&|w| {
        w.run_config_json = r#"{"privileged": "yes"}"#.into()
    }))
    .await
    .invalid("workspace.run_config_json.privileged");
    refuse(with(&|w| w.run_config_json = "{nope".into()))
        .await
        .invalid("workspace.run_config_json");
    let status = refuse(with(&|w| {
        w.persistent_profile_path = "/profiles/shared".into();
    }))
    .await
    .invalid("workspace.persistent_profile_path");
    assert!(status.message().contains("{username}"), "{status:?}");
    refuse(with(&|w| w.zone_id = stranger()))
        .await
        .invalid("workspace.zone_id");
    refuse(with(&|w| w.zone_id = "eu-west".into()))
        .await
        .invalid("workspace.zone_id");
    refuse(with(&|w| w.name = String::new()))
        .await
        .invalid("workspace.name");
    refuse(with(&|w| w.name = "not an image!".into()))
        .await
        .invalid("workspace.name");
    refuse(with(&|w| w.memory_mib = 1))
        .await
        .invalid("workspace.memory_mib");
    refuse(with(&|w| w.cores = -1.0))
        .await
        .invalid("workspace.cores");
    refuse(with(&|w| w.require_gpu = true))
        .await
        .invalid("workspace.require_gpu");
    refuse(with(&|w| w.session_time_limit_secs = Some(-1)))
        .await
        .invalid("workspace.session_time_limit_secs");
    refuse(with(&|w| w.thumbnail_url = "javascript:alert(1)".into()))
        .await
        .invalid("workspace.thumbnail_url");
    refuse(with(&|w| {
        w.volume_mappings = vec![pb::VolumeMapping {
            host_path: "relative".into(),
            container_path: "/data".into(),
            mode: "rw".into(),
        }];
    }))
    .await
    .invalid("workspace.volume_mappings[0].host_path");
    refuse(with(&|w| {
        w.volume_mappings = vec![pb::VolumeMapping {
            host_path: "/srv".into(),
            container_path: "/data".into(),
            mode: "rwx".into(),
        }];
    }))
    .await
    .invalid("workspace.volume_mappings[0].mode");
    refuse(with(&|w| {
        w.exec_config = Some(pb::ExecConfig {
            go: Some(pb::ExecHook::default()),
            ..Default::default()
        });
    }))
    .await
    .invalid("workspace.exec_config.go.cmd");
    env.admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: None,
            assign_to_all_users: None,
        })
        .await
        .invalid("workspace");
    // Nothing refused was stored.
    let all = env
        .admin()
        .list_workspaces(pb::ListWorkspacesRequest {
            page: None,
            include_disabled: true,
        })
        .await
        .must();
    assert!(all.workspaces.is_empty(), "{all:?}");

    // What is allowed round-trips.
    let accepted = env
        .admin()
        .create_workspace(create(
            with(&|w| {
                w.run_config_json =
                    r#"{"hostname": "box", "environment": {"A": "1"}, "shm_size": "1g"}"#.into();
                w.persistent_profile_path = "/profiles/{username}".into();
                w.session_time_limit_secs = Some(0);
            }),
            None,
        ))
        .await
        .must();
    let run_config: serde_json::Value =
        serde_json::from_str(&accepted.run_config_json).expect("JSON");
    assert_eq!(
        run_config,
        serde_json::json!({"hostname": "box", "environment": {"A": "1"}, "shm_size": "1g"})
    );
    assert_eq!(accepted.persistent_profile_path, "/profiles/{username}");
    assert_eq!(accepted.session_time_limit_secs, Some(0));
}

async fn update_replaces_and_delete_cleans_up(backend: Backend) {
    let env = Env::start(backend).await;
    let zone = env
        .admin()
        .create_zone(pb::Zone {
            name: "eu".into(),
            ..Default::default()
        })
        .await
        .must();
    let group = env.group("Builders", 10).await;
    let mut full = workspace("kasmweb/vscode:1.16.0");
    full.description = "an editor".into();
    full.categories = vec!["Development".into(), "Editors".into()];
    full.session_time_limit_secs = Some(3600);
    full.zone_id = zone.id.clone();
    full.volume_mappings = vec![pb::VolumeMapping {
        host_path: "/srv/code".into(),
        container_path: "/code".into(),
        mode: "ro".into(),
    }];
    full.exec_config = Some(pb::ExecConfig {
        first_launch: Some(pb::ExecHook {
            cmd: "setup.sh".into(),
            user: "root".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let created = env
        .admin()
        .create_workspace(create(full, None))
        .await
        .must();
    assert_eq!(created.categories, vec!["Development", "Editors"]);
    assert_eq!(created.volume_mappings.len(), 1);
    assert_eq!(created.volume_mappings[0].mode, "ro");
    assert_eq!(
        created
            .exec_config
            .clone()
            .unwrap_or_default()
            .first_launch
            .unwrap_or_default()
            .cmd,
        "setup.sh"
    );
    env.admin()
        .assign_workspace(assignment(&group.id, &created.id))
        .await
        .must();

    // The whole workspace replaces the stored one.
    let mut replacement = workspace("kasmweb/vscode:1.17.0");
    replacement.id = created.id.clone();
    let updated = env
        .admin()
        .update_workspace(pb::UpdateWorkspaceRequest {
            workspace: Some(replacement),
        })
        .await
        .must();
    let read = env
        .admin()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: created.id.clone(),
        })
        .await
        .must();
    assert_eq!(read, updated);
    assert_eq!(read.name, "kasmweb/vscode:1.17.0");
    assert!(read.description.is_empty());
    assert!(read.categories.is_empty());
    assert_eq!(read.session_time_limit_secs, None);
    assert!(read.zone_id.is_empty());
    assert!(read.volume_mappings.is_empty());
    assert_eq!(read.exec_config.unwrap_or_default().first_launch, None);
    assert_eq!(read.created_at, created.created_at);
    // Assignments survive an update.
    let (user, _) = env.user().await;
    assert_eq!(env.launchable(&user).await, vec![created.id.clone()]);

    let mut missing = workspace("kasmweb/none:1.0");
    missing.id = stranger();
    env.admin()
        .update_workspace(pb::UpdateWorkspaceRequest {
            workspace: Some(missing),
        })
        .await
        .fails(Code::NotFound);

    env.admin()
        .create_file_mapping(pb::FileMapping {
            scope: Some(pb::file_mapping::Scope::WorkspaceId(created.id.clone())),
            name: "settings".into(),
            destination: "/home/user/.config/settings.json".into(),
            content: "{}".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(
        env.count("group_workspaces", "workspace_id", &created.id)
            .await,
        2
    );
    assert_eq!(env.count("file_mappings", "scope_id", &created.id).await, 1);
    // A default_image must name a workspace that exists; this one does.
    env.try_set(ALL_USERS_ID, "default_image", Kind::StringValue(stranger()))
        .await
        .invalid("default_image");
    env.set(
        ALL_USERS_ID,
        "default_image",
        Kind::StringValue(created.id.clone()),
    )
    .await;
    assert_eq!(
        env.value(&user, "default_image").await,
        Some(Kind::StringValue(created.id.clone()))
    );

    env.admin()
        .delete_workspace(pb::DeleteWorkspaceRequest {
            workspace_id: created.id.clone(),
        })
        .await
        .must();
    env.admin()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: created.id.clone(),
        })
        .await
        .fails(Code::NotFound);
    assert!(env.launchable(&user).await.is_empty());
    assert_eq!(
        env.count("group_workspaces", "workspace_id", &created.id)
            .await,
        0
    );
    assert_eq!(env.count("file_mappings", "scope_id", &created.id).await, 0);
    // The setting that named it is gone, and so is its effect.
    let left = env.group_settings(ALL_USERS_ID).await;
    assert!(
        !left.iter().any(|(name, _)| name == "default_image"),
        "{left:?}"
    );
    assert_eq!(
        env.value(&user, "default_image").await,
        Some(Kind::StringValue(String::new()))
    );
    env.admin()
        .delete_workspace(pb::DeleteWorkspaceRequest {
            workspace_id: created.id.clone(),
        })
        .await
        .fails(Code::NotFound);
}
