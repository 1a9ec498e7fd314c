//! File mappings: the three scopes, validation, and resolution for a session (user beats group,
//! the strongest group beats weaker ones, groups beat the workspace; disabled ones take no part).

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::common::{Backend, Code, Env, Outcome, both_backends, pb, stranger};

both_backends!(
    file_mappings_live_in_three_scopes,
    file_mappings_are_validated,
    resolution_prefers_the_most_specific_mapping,
);

type Scope = pb::file_mapping::Scope;

fn mapping(scope: Scope, destination: &str, content: &str) -> pb::FileMapping {
    pb::FileMapping {
        id: String::new(),
        scope: Some(scope),
        name: format!("file for {destination}"),
        description: String::new(),
        destination: destination.into(),
        content: content.into(),
        content_is_base64: false,
        executable: false,
        readable: true,
        writable: false,
        enabled: true,
    }
}

async fn create(env: &Env, m: pb::FileMapping) -> pb::FileMapping {
    env.admin().create_file_mapping(m).await.must()
}

async fn list(env: &Env, scope: pb::list_file_mappings_request::Scope) -> Vec<pb::FileMapping> {
    env.admin()
        .list_file_mappings(pb::ListFileMappingsRequest { scope: Some(scope) })
        .await
        .must()
        .file_mappings
}

/// destination → (source, content) of what the user's session of `workspace_id` receives.
async fn resolved(
    client: &crate::common::Client,
    user_id: &str,
    workspace_id: &str,
) -> BTreeMap<String, (String, String)> {
    client
        .clone()
        .resolve_file_mappings(pb::ResolveFileMappingsRequest {
            user_id: user_id.into(),
            workspace_id: workspace_id.into(),
        })
        .await
        .must()
        .file_mappings
        .into_iter()
        .map(|r| {
            let m = r.mapping.expect("mapping");
            (m.destination, (r.source, m.content))
        })
        .collect()
}

async fn file_mappings_live_in_three_scopes(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, _) = env.user().await;
    let group = env.group("Mapped", 10).await;
    let ws = env.workspace("kasmweb/terminal:1.16.0", None).await;

    let mine = create(
        &env,
        mapping(Scope::UserId(user.clone()), "/home/u/.bashrc", "alias"),
    )
    .await;
    assert!(uuid::Uuid::parse_str(&mine.id).is_ok());
    assert_eq!(mine.scope, Some(Scope::UserId(user.clone())));
    assert_eq!(mine.content, "alias");
    let ours = create(
        &env,
        mapping(Scope::GroupId(group.id.clone()), "/etc/motd", "hi"),
    )
    .await;
    let its = create(
        &env,
        pb::FileMapping {
            content: base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2, 255]),
            content_is_base64: true,
            executable: true,
            ..mapping(Scope::WorkspaceId(ws.id.clone()), "/usr/local/bin/tool", "")
        },
    )
    .await;
    assert!(its.content_is_base64);
    assert!(its.executable);

    use pb::list_file_mappings_request::Scope as ListScope;
    assert_eq!(
        list(&env, ListScope::UserId(user.clone())).await,
        vec![mine.clone()]
    );
    assert_eq!(
        list(&env, ListScope::GroupId(group.id.clone())).await,
        vec![ours.clone()]
    );
    assert_eq!(
        list(&env, ListScope::WorkspaceId(ws.id.clone())).await,
        vec![its.clone()]
    );

    let mut changed = ours.clone();
    changed.content = "hello".into();
    changed.enabled = false;
    let updated = env
        .admin()
        .update_file_mapping(changed.clone())
        .await
        .must();
    assert_eq!(updated, changed);
    assert_eq!(
        list(&env, ListScope::GroupId(group.id.clone())).await,
        vec![changed]
    );
    let mut ghost = ours.clone();
    ghost.id = stranger();
    env.admin()
        .update_file_mapping(ghost)
        .await
        .fails(Code::NotFound);

    env.admin()
        .delete_file_mapping(pb::DeleteFileMappingRequest {
            id: mine.id.clone(),
        })
        .await
        .must();
    assert!(list(&env, ListScope::UserId(user.clone())).await.is_empty());
    env.admin()
        .delete_file_mapping(pb::DeleteFileMappingRequest { id: mine.id })
        .await
        .fails(Code::NotFound);

    // A plain user may neither list nor change mappings.
    let (_, client) = env.user().await;
    client
        .clone()
        .list_file_mappings(pb::ListFileMappingsRequest {
            scope: Some(ListScope::GroupId(group.id.clone())),
        })
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .create_file_mapping(mapping(Scope::GroupId(group.id), "/etc/x", "x"))
        .await
        .fails(Code::PermissionDenied);
}

async fn file_mappings_are_validated(backend: Backend) {
    let env = Env::start(backend).await;
    let group = env.group("Validated", 10).await;
    let scope = || Scope::GroupId(group.id.clone());
    let refuse = |m: pb::FileMapping| {
        let mut admin = env.admin();
        async move { admin.create_file_mapping(m).await }
    };
    for bad in [
        "relative/file",
        "",
        "/etc/../passwd",
        "/home/user/..",
        "/etc/",
        // What the agent would refuse at launch is refused here (the kit's one path rule).
        "/home/kasm-user/a:b",
        "/home//kasm-user/x",
    ] {
        refuse(mapping(scope(), bad, "x"))
            .await
            .invalid("destination");
    }
    let limit = 1024 * 1024;
    refuse(mapping(scope(), "/big", &"x".repeat(limit + 1)))
        .await
        .invalid("content");
    refuse(pb::FileMapping {
        content: base64::engine::general_purpose::STANDARD.encode(vec![7u8; limit + 1]),
        content_is_base64: true,
        ..mapping(scope(), "/big.bin", "")
    })
    .await
    .invalid("content");
    refuse(pb::FileMapping {
        content_is_base64: true,
        ..mapping(scope(), "/bad.bin", "this is not base64!")
    })
    .await
    .invalid("content");
    refuse(pb::FileMapping {
        name: String::new(),
        ..mapping(scope(), "/nameless", "x")
    })
    .await
    .invalid("name");
    refuse(pb::FileMapping {
        scope: None,
        ..mapping(scope(), "/nowhere", "x")
    })
    .await
    .invalid("scope");
    refuse(mapping(Scope::GroupId(stranger()), "/x", "x"))
        .await
        .fails(Code::NotFound);
    refuse(mapping(Scope::WorkspaceId(stranger()), "/x", "x"))
        .await
        .fails(Code::NotFound);
    refuse(mapping(Scope::UserId("someone".into()), "/x", "x"))
        .await
        .invalid("user_id");
    assert_eq!(env.count("file_mappings", "scope_id", &group.id).await, 0);

    // Exactly the limit is fine.
    let big = env
        .admin()
        .create_file_mapping(mapping(scope(), "/exactly", &"x".repeat(limit)))
        .await
        .must();
    assert_eq!(big.content.len(), limit);
}

async fn resolution_prefers_the_most_specific_mapping(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let (other, other_client) = env.user().await;
    // The weaker group is older, and its mappings are made first: only priority decides.
    let weak = env.group("Weak", 20).await;
    let strong = env.group("Strong", 10).await;
    let outside = env.group("Outside", 1).await;
    env.add_member(&weak.id, &user).await;
    env.add_member(&strong.id, &user).await;
    let ws = env.workspace("kasmweb/desktop:1.16.0", None).await;
    let elsewhere = env.workspace("kasmweb/other:1.16.0", None).await;
    let w = || Scope::WorkspaceId(ws.id.clone());
    let g_weak = || Scope::GroupId(weak.id.clone());
    let g_strong = || Scope::GroupId(strong.id.clone());
    let u = || Scope::UserId(user.clone());

    // /a: two groups → the stronger.
    create(&env, mapping(g_weak(), "/a", "weak")).await;
    create(&env, mapping(g_strong(), "/a", "strong")).await;
    // /b: the user's own beats a group's.
    create(&env, mapping(g_strong(), "/b", "strong")).await;
    create(&env, mapping(u(), "/b", "user")).await;
    // /c: a group's beats the workspace's.
    create(&env, mapping(w(), "/c", "workspace")).await;
    create(&env, mapping(g_weak(), "/c", "weak")).await;
    // /d: only the workspace's.
    create(&env, mapping(w(), "/d", "workspace")).await;
    // /e: a disabled user mapping yields to the group's.
    create(
        &env,
        pb::FileMapping {
            enabled: false,
            ..mapping(u(), "/e", "user")
        },
    )
    .await;
    create(&env, mapping(g_weak(), "/e", "weak")).await;
    // /f: only a disabled one: nothing.
    create(
        &env,
        pb::FileMapping {
            enabled: false,
            ..mapping(g_strong(), "/f", "strong")
        },
    )
    .await;
    // /g: a group the user is not in.
    create(
        &env,
        mapping(Scope::GroupId(outside.id.clone()), "/g", "outside"),
    )
    .await;
    // Another workspace's mappings stay there.
    create(
        &env,
        mapping(Scope::WorkspaceId(elsewhere.id.clone()), "/h", "elsewhere"),
    )
    .await;

    let pair = |source: &str, content: &str| (source.to_owned(), content.to_owned());
    let expected: BTreeMap<String, (String, String)> = [
        ("/a".to_owned(), pair("group:Strong", "strong")),
        ("/b".to_owned(), pair("user", "user")),
        ("/c".to_owned(), pair("group:Weak", "weak")),
        ("/d".to_owned(), pair("workspace", "workspace")),
        ("/e".to_owned(), pair("group:Weak", "weak")),
    ]
    .into_iter()
    .collect();
    assert_eq!(resolved(&client, "", &ws.id).await, expected);
    assert_eq!(resolved(&env.admin(), &user, &ws.id).await, expected);

    // Someone in neither group gets the workspace's only.
    let theirs: BTreeMap<String, (String, String)> = [
        ("/c".to_owned(), pair("workspace", "workspace")),
        ("/d".to_owned(), pair("workspace", "workspace")),
    ]
    .into_iter()
    .collect();
    assert_eq!(resolved(&other_client, "", &ws.id).await, theirs);

    // Priorities change: the other group's mapping wins at once.
    env.set_priority(&weak.id, 5).await;
    let now = resolved(&client, "", &ws.id).await;
    assert_eq!(now["/a"], pair("group:Weak", "weak"));
    assert_eq!(now["/b"], pair("user", "user"));

    // Another user's mappings are not for the caller to see.
    client
        .clone()
        .resolve_file_mappings(pb::ResolveFileMappingsRequest {
            user_id: other.clone(),
            workspace_id: ws.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .resolve_file_mappings(pb::ResolveFileMappingsRequest {
            user_id: String::new(),
            workspace_id: stranger(),
        })
        .await
        .fails(Code::NotFound);

    // A workspace the user may not launch: its mappings are not theirs to read...
    let private = env.workspace("kasmweb/private:1.16.0", Some(false)).await;
    create(
        &env,
        mapping(Scope::WorkspaceId(private.id.clone()), "/secret", "token"),
    )
    .await;
    client
        .clone()
        .resolve_file_mappings(pb::ResolveFileMappingsRequest {
            user_id: String::new(),
            workspace_id: private.id.clone(),
        })
        .await
        .fails(Code::NotFound);
    // ...though whoever holds file_mappings.view (or a service) may resolve them for the user...
    let for_user = resolved(&env.admin(), &user, &private.id).await;
    assert_eq!(for_user["/secret"], pair("workspace", "token"));
    assert_eq!(
        resolved(
            &env.server
                .as_service(atrium_service_kit::auth::ServiceId::SessionManager)
                .await
                .expect("session-manager client"),
            &user,
            &private.id
        )
        .await,
        for_user
    );
    // ...and once the user may launch it, so may they.
    env.admin()
        .assign_workspace(pb::WorkspaceAssignmentRequest {
            group_id: strong.id.clone(),
            workspace_id: private.id.clone(),
        })
        .await
        .must();
    assert_eq!(resolved(&client, "", &private.id).await, for_user);
}
