//! What touches the host (volume_mapping, the run_config setting, a workspace's run_config,
//! exec hooks, host volumes, the persistent profile path) is an administrator's decision,
//! validated by the kit's one validator with the field named, and hidden from ordinary readers.

use crate::common::{
    ALL_USERS_ID, Backend, Client, Code, Env, Kind, Outcome, both_backends, pb, workspace,
};

both_backends!(
    delegated_holders_cannot_touch_the_host,
    host_access_settings_are_validated_naming_the_field,
    ordinary_readers_do_not_see_host_access,
    delegated_edits_keep_what_they_cannot_see,
);

/// A user holding workspaces.create/modify, settings.modify and groups.modify.
async fn delegate(env: &Env) -> (String, Client, String) {
    let (user, client) = env.user().await;
    let ops = env.group("Workspace admins", 10).await;
    for p in [
        "workspaces.create",
        "workspaces.modify",
        "workspaces.view",
        "settings.modify",
        "groups.modify",
    ] {
        env.grant(&ops.id, p).await;
    }
    env.add_member(&ops.id, &user).await;
    (user, client, ops.id)
}

fn json_setting(group_id: &str, name: &str, json: &str) -> pb::SetGroupSettingRequest {
    pb::SetGroupSettingRequest {
        group_id: group_id.into(),
        name: name.into(),
        value: Some(pb::SettingValue {
            kind: Some(Kind::JsonValue(json.into())),
        }),
        raw_value: String::new(),
    }
}

fn with_run_config(json: &str) -> pb::Workspace {
    pb::Workspace {
        run_config_json: json.into(),
        ..workspace("kasmweb/chrome:1.16.0")
    }
}

async fn delegated_holders_cannot_touch_the_host(backend: Backend) {
    let env = Env::start(backend).await;
    let (_, client, group) = delegate(&env).await;
    let mut c = client.clone();
    for mapping in [
        r#"{"/": {"bind": "/host", "mode": "rw"}}"#,
        r#"{"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}"#,
    ] {
        let status = c
            .set_group_setting(json_setting(&group, "volume_mapping", mapping))
            .await
            .fails(Code::PermissionDenied);
        assert!(status.message().contains("administrator"), "{status:?}");
    }
    c.set_group_setting(json_setting(
        &group,
        "run_config",
        r#"{"privileged": true}"#,
    ))
    .await
    .fails(Code::PermissionDenied);
    c.unset_group_setting(pb::UnsetGroupSettingRequest {
        group_id: group.clone(),
        name: "run_config".into(),
    })
    .await
    .fails(Code::PermissionDenied);
    for rc in [
        r#"{"privileged": true}"#,
        r#"{"cap_add": ["SYS_ADMIN"]}"#,
        r#"{"devices": ["/dev/kvm"]}"#,
        r#"{"network": "host"}"#,
    ] {
        c.create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(with_run_config(rc)),
            assign_to_all_users: None,
        })
        .await
        .fails(Code::PermissionDenied);
    }
    let hostile = [
        pb::Workspace {
            volume_mappings: vec![pb::VolumeMapping {
                host_path: "/".into(),
                container_path: "/host".into(),
                mode: "rw".into(),
            }],
            ..workspace("kasmweb/chrome:1.16.0")
        },
        pb::Workspace {
            exec_config: Some(pb::ExecConfig {
                first_launch: Some(pb::ExecHook {
                    cmd: "chmod u+s /bin/bash".into(),
                    user: "root".into(),
                    privileged: true,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..workspace("kasmweb/chrome:1.16.0")
        },
    ];
    for w in hostile.clone() {
        c.create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(w),
            assign_to_all_users: None,
        })
        .await
        .fails(Code::PermissionDenied);
    }
    // Changing an existing workspace to touch the host is refused the same way.
    let plain = c
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(workspace("kasmweb/firefox:1.16.0")),
            assign_to_all_users: None,
        })
        .await
        .must();
    for w in hostile
        .into_iter()
        .chain([with_run_config(r#"{"cap_add": ["NET_ADMIN"]}"#)])
    {
        c.update_workspace(pb::UpdateWorkspaceRequest {
            workspace: Some(pb::Workspace {
                id: plain.id.clone(),
                ..w
            }),
        })
        .await
        .fails(Code::PermissionDenied);
    }
    // Assigning a workspace an administrator made privileged is the administrator's call too.
    let privileged = env
        .admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(with_run_config(r#"{"privileged": true}"#)),
            assign_to_all_users: Some(false),
        })
        .await
        .must();
    c.assign_workspace(pb::WorkspaceAssignmentRequest {
        group_id: ALL_USERS_ID.into(),
        workspace_id: privileged.id,
    })
    .await
    .fails(Code::PermissionDenied);
    // The administrator may do all of it.
    env.set(
        &group,
        "volume_mapping",
        Kind::JsonValue(r#"{"/srv/shared": {"bind": "/shared", "mode": "ro"}}"#.into()),
    )
    .await;
}

async fn host_access_settings_are_validated_naming_the_field(backend: Backend) {
    let env = Env::start(backend).await;
    let g = env.group("G", 10).await;
    let field = |json: &'static str, name: &'static str| {
        let env = &env;
        let g = g.id.clone();
        async move { env.try_set(&g, name, Kind::JsonValue(json.into())).await }
    };
    field(r#"{"pid_mode": "host"}"#, "run_config")
        .await
        .invalid("run_config.pid_mode");
    field(r#"{"cap_add": ["NET_ADMIN", "net admin"]}"#, "run_config")
        .await
        .invalid("run_config.cap_add[1]");
    field(r#"{"devices": ["/dev/../etc/shadow"]}"#, "run_config")
        .await
        .invalid("run_config.devices[0]");
    let status = field(
        r#"{"/srv/a:b": {"bind": "/x", "mode": "rw"}}"#,
        "volume_mapping",
    )
    .await
    .invalid("volume_mapping");
    assert!(status.message().contains("':'"), "{status:?}");
    field(
        r#"{"/srv/a,b": {"bind": "/x", "mode": "rw"}}"#,
        "volume_mapping",
    )
    .await
    .invalid("volume_mapping");
    field(
        r#"{"shm_size": "1g", "cap_add": ["NET_ADMIN"]}"#,
        "run_config",
    )
    .await
    .must();
    // Workspace paths follow the same rule, named by index.
    let status = env
        .admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(pb::Workspace {
                volume_mappings: vec![pb::VolumeMapping {
                    host_path: "/srv/a:b".into(),
                    container_path: "/data".into(),
                    mode: "rw".into(),
                }],
                ..workspace("kasmweb/chrome:1.16.0")
            }),
            assign_to_all_users: None,
        })
        .await
        .invalid("workspace.volume_mappings[0].host_path");
    assert!(status.message().contains("':'"), "{status:?}");
    env.admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(with_run_config(r#"{"cap_add": ["NET_ADMIN", "bad cap"]}"#)),
            assign_to_all_users: None,
        })
        .await
        .invalid("workspace.run_config_json.cap_add[1]");
}

fn touching() -> pb::Workspace {
    pb::Workspace {
        run_config_json: r#"{"environment": {"TOKEN": "secret"}}"#.into(),
        volume_mappings: vec![pb::VolumeMapping {
            host_path: "/srv/data".into(),
            container_path: "/data".into(),
            mode: "ro".into(),
        }],
        persistent_profile_path: "/profiles/{username}".into(),
        ..workspace("kasmweb/chrome:1.16.0")
    }
}

fn withheld(w: &pb::Workspace) {
    assert!(w.host_access_withheld, "{w:?}");
    assert_eq!(w.run_config_json, "");
    assert!(w.volume_mappings.is_empty());
    assert!(w.exec_config.is_none());
    assert_eq!(w.persistent_profile_path, "");
}

async fn ordinary_readers_do_not_see_host_access(backend: Backend) {
    let env = Env::start(backend).await;
    let w = env
        .admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(touching()),
            assign_to_all_users: Some(true),
        })
        .await
        .must();
    assert!(!w.host_access_withheld);
    assert!(w.run_config_json.contains("TOKEN"));
    let (user, client) = env.user().await;
    let mut c = client.clone();
    let launchable = c
        .list_launchable_workspaces(pb::ListLaunchableWorkspacesRequest::default())
        .await
        .must()
        .workspaces;
    let mine = launchable
        .iter()
        .find(|x| x.id == w.id)
        .expect("launchable");
    withheld(mine);
    withheld(
        &c.get_workspace(pb::GetWorkspaceRequest {
            workspace_id: w.id.clone(),
        })
        .await
        .must(),
    );
    // Holding workspaces.view does not make one an administrator.
    let viewers = env.group("Viewers", 10).await;
    env.grant(&viewers.id, "workspaces.view").await;
    env.add_member(&viewers.id, &user).await;
    withheld(
        &c.get_workspace(pb::GetWorkspaceRequest {
            workspace_id: w.id.clone(),
        })
        .await
        .must(),
    );
    // Administrators and services see it all.
    let admin_view = env
        .admin()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: w.id.clone(),
        })
        .await
        .must();
    assert_eq!(admin_view.volume_mappings.len(), 1);
    let service = env
        .server
        .as_service(atrium_service_kit::auth::ServiceId::SessionManager)
        .await
        .expect("session-manager client");
    let for_launch = service
        .clone()
        .list_launchable_workspaces(pb::ListLaunchableWorkspacesRequest { user_id: user })
        .await
        .must()
        .workspaces;
    assert!(
        for_launch
            .iter()
            .any(|x| x.id == w.id && x.run_config_json.contains("TOKEN"))
    );
}

/// Someone with workspaces.modify edits a workspace an administrator gave host access: sent
/// back as read (withheld), what they could not see is kept.
async fn delegated_edits_keep_what_they_cannot_see(backend: Backend) {
    let env = Env::start(backend).await;
    let (_, client, _) = delegate(&env).await;
    let w = env
        .admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(touching()),
            assign_to_all_users: Some(true),
        })
        .await
        .must();
    let mut c = client.clone();
    let mut seen = c
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: w.id.clone(),
        })
        .await
        .must();
    withheld(&seen);
    seen.description = "edited by a delegate".into();
    let saved = c
        .update_workspace(pb::UpdateWorkspaceRequest {
            workspace: Some(seen),
        })
        .await
        .must();
    withheld(&saved);
    let stored = env
        .admin()
        .get_workspace(pb::GetWorkspaceRequest {
            workspace_id: w.id.clone(),
        })
        .await
        .must();
    assert_eq!(stored.description, "edited by a delegate");
    assert_eq!(stored.run_config_json, w.run_config_json);
    assert_eq!(stored.volume_mappings, w.volume_mappings);
    assert_eq!(stored.persistent_profile_path, w.persistent_profile_path);
    // Without the withheld flag, an empty run_config would be a change: refused.
    c.update_workspace(pb::UpdateWorkspaceRequest {
        workspace: Some(pb::Workspace {
            id: w.id.clone(),
            ..workspace("kasmweb/chrome:1.16.0")
        }),
    })
    .await
    .fails(Code::PermissionDenied);
}
