//! Who may call what: anonymous and bad credentials, a user on their own account versus others,
//! and administrators.

use atrium_service_kit::auth::{AccessClaims, Credential, Scope, ServiceId, jwt};

use crate::common::{Backend, Code, Env, Outcome, both_backends, by_id, by_name, pb, update};

both_backends!(
    missing_or_bad_credentials_are_unauthenticated,
    users_manage_only_their_own_profile,
    admins_manage_everyone,
    locking_a_user_stops_their_live_token_at_once,
);

async fn locking_a_user_stops_their_live_token_at_once(backend: Backend) {
    let env = Env::start(backend).await;
    let (bob, client) = env.user_client("bob").await;
    client.clone().get_user(by_id(&bob.id)).await.must();
    let mut lock = update(&bob.id);
    lock.locked = Some(true);
    env.admin().update_user(lock).await.must();
    let status = client
        .clone()
        .get_user(by_id(&bob.id))
        .await
        .fails(Code::Unauthenticated);
    // Refused by the handler (the account is locked) or already by the auth layer (the lock
    // revoked the login session), whichever sees it first.
    assert!(
        status.message().contains("locked") || status.message().contains("ended"),
        "{}",
        status.message()
    );
    client
        .clone()
        .get_user_settings(pb::GetUserSettingsRequest::default())
        .await
        .fails(Code::Unauthenticated);
}

async fn missing_or_bad_credentials_are_unauthenticated(backend: Backend) {
    let env = Env::start(backend).await;
    let admin_id = env.admin_id().await;
    let keys = env
        .anonymous()
        .await
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .must();

    // A token with the right kid and claims, signed by a key that is not the service's.
    let forger = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        iss: "atrium".into(),
        sub: admin_id.clone(),
        name: "admin".into(),
        realm: "local".into(),
        sid: String::new(),
        jti: "forged".into(),
        iat: now,
        exp: now + 600,
        scope: Scope::Full,
    };
    let forged = jwt::sign(&claims, &keys.active_key_id, &forger);
    let unknown_kid = jwt::sign(&claims, "k-unknown", &forger);

    let credentials = [
        None,
        Some(Credential::Bearer("garbage".into())),
        Some(Credential::Bearer("a.b.c".into())),
        Some(Credential::Bearer(forged)),
        Some(Credential::Bearer(unknown_kid)),
        Some(Credential::ApiKey {
            id: "ak_nope".into(),
            secret: "nope".into(),
        }),
    ];
    for credential in credentials {
        let label = format!("{credential:?}");
        let mut client = env.server.client(credential).await.expect("client");
        let status = client
            .get_user(by_id(&admin_id))
            .await
            .fails(Code::Unauthenticated);
        assert!(!status.message().is_empty(), "{label}");
        client
            .list_users(pb::ListUsersRequest::default())
            .await
            .fails(Code::Unauthenticated);
        client
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .fails(Code::Unauthenticated);
        client
            .rotate_signing_key(pb::RotateSigningKeyRequest {})
            .await
            .fails(Code::Unauthenticated);
        // Public calls stay open even with a bad credential.
        client
            .get_verification_keys(pb::GetVerificationKeysRequest {})
            .await
            .must();
    }
    // Nothing above changed the admin.
    assert_eq!(env.admin_user().await.failed_login_count, 0);
}

async fn users_manage_only_their_own_profile(backend: Backend) {
    let env = Env::start(backend).await;
    let (bob, bob_client) = env.user_client("bob").await;
    let carol = env.create_sso_user("carol", "carol@example.com").await;
    let me = || bob_client.clone();

    let whoami = me().who_am_i(pb::WhoAmIRequest {}).await.must();
    assert_eq!(
        whoami,
        pb::WhoAmIResponse {
            kind: "user".into(),
            user_id: bob.id.clone(),
            username: "bob".into(),
            scope: "full".into(),
            is_admin: false,
            ..Default::default()
        }
    );

    // Own profile: read by id or name, edit the self-editable fields.
    let mine = me().get_user(by_id(&bob.id)).await.must();
    assert_eq!(mine.username, "bob");
    assert_eq!(me().get_user(by_name("BOB")).await.must(), mine);
    let edited = me()
        .update_user(pb::UpdateUserRequest {
            first_name: Some("Robert".into()),
            email: Some("bob@example.com".into()),
            phone: Some("555 0100".into()),
            ..update(&bob.id)
        })
        .await
        .must();
    assert_eq!(edited.first_name, "Robert");
    assert_eq!(edited.email, "bob@example.com");
    assert_eq!(edited.phone, "555 0100");
    assert_eq!(env.get_user(&bob.id).await, edited);

    // Not the admin-only fields, even alongside allowed ones.
    let forbidden = [
        pb::UpdateUserRequest {
            locked: Some(false),
            ..update(&bob.id)
        },
        pb::UpdateUserRequest {
            disabled: Some(false),
            ..update(&bob.id)
        },
        pb::UpdateUserRequest {
            realm: Some(pb::Realm::Local as i32),
            ..update(&bob.id)
        },
        pb::UpdateUserRequest {
            username: Some("robert".into()),
            ..update(&bob.id)
        },
        pb::UpdateUserRequest {
            notes: Some("promote me".into()),
            ..update(&bob.id)
        },
        pb::UpdateUserRequest {
            custom_attribute_1: Some("vip".into()),
            ..update(&bob.id)
        },
        pb::UpdateUserRequest {
            force_password_reset: Some(false),
            ..update(&bob.id)
        },
        pb::UpdateUserRequest {
            first_name: Some("Bobby".into()),
            locked: Some(false),
            ..update(&bob.id)
        },
    ];
    for request in forbidden {
        me().update_user(request)
            .await
            .fails(Code::PermissionDenied);
    }
    assert_eq!(
        env.get_user(&bob.id).await,
        edited,
        "a refused update wrote"
    );

    // Nobody else's account, and an unknown id looks the same as someone else's.
    me().get_user(by_id(&carol.id))
        .await
        .fails(Code::PermissionDenied);
    me().get_user(by_name("carol"))
        .await
        .fails(Code::PermissionDenied);
    me().get_user(by_id(&uuid::Uuid::now_v7().to_string()))
        .await
        .fails(Code::PermissionDenied);
    me().update_user(pb::UpdateUserRequest {
        first_name: Some("Hacked".into()),
        ..update(&carol.id)
    })
    .await
    .fails(Code::PermissionDenied);
    me().list_users(pb::ListUsersRequest::default())
        .await
        .fails(Code::PermissionDenied);
    me().create_user(pb::CreateUserRequest {
        username: "mallory".into(),
        password: "long enough password".into(),
        ..Default::default()
    })
    .await
    .fails(Code::PermissionDenied);
    me().delete_user(pb::DeleteUserRequest {
        user_id: carol.id.clone(),
    })
    .await
    .fails(Code::PermissionDenied);
    me().delete_user(pb::DeleteUserRequest {
        user_id: bob.id.clone(),
    })
    .await
    .fails(Code::PermissionDenied);
    me().reset_two_factor(pb::ResetTwoFactorRequest {
        user_id: bob.id.clone(),
    })
    .await
    .fails(Code::PermissionDenied);
    me().set_password(pb::SetPasswordRequest {
        user_id: carol.id.clone(),
        new_password: "a new long password".into(),
        force_password_reset: false,
    })
    .await
    .fails(Code::PermissionDenied);
    me().logout_everywhere(pb::LogoutEverywhereRequest {
        user_id: carol.id.clone(),
    })
    .await
    .fails(Code::PermissionDenied);
    me().list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .fails(Code::PermissionDenied);
    me().rotate_signing_key(pb::RotateSigningKeyRequest {})
        .await
        .fails(Code::PermissionDenied);
    me().create_api_key(pb::CreateApiKeyRequest {
        name: "mine".into(),
        permissions: vec!["users.view".into()],
        ..Default::default()
    })
    .await
    .fails(Code::PermissionDenied);
    me().list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .fails(Code::PermissionDenied);
    assert_eq!(env.get_user(&carol.id).await, carol);
    assert_eq!(env.all_users().await.len(), 3);
}

async fn admins_manage_everyone(backend: Backend) {
    let env = Env::start(backend).await;
    let carol = env.create_sso_user("carol", "").await;
    let whoami = env.admin().who_am_i(pb::WhoAmIRequest {}).await.must();
    assert_eq!(whoami.kind, "user");
    assert_eq!(whoami.username, "admin");
    assert!(whoami.is_admin);
    assert!(env.admin_user().await.is_admin);

    let changed = env
        .admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(true),
            disabled: Some(true),
            realm: Some(pb::Realm::Oidc as i32),
            notes: Some("moved to OIDC".into()),
            username: Some("carol.o".into()),
            ..update(&carol.id)
        })
        .await
        .must();
    assert!(changed.locked && changed.disabled);
    assert_eq!(changed.realm(), pb::Realm::Oidc);
    assert_eq!(changed.notes, "moved to OIDC");
    assert_eq!(changed.username, "carol.o");
    assert_eq!(env.get_user(&carol.id).await, changed);
    let listed = env.all_users().await;
    assert_eq!(listed.len(), 2);
    // A service reads what its row of the call table allows (the session-manager reads users);
    // others are refused before a handler runs.
    let via_service = env
        .server
        .as_service(ServiceId::SessionManager)
        .await
        .expect("session-manager client")
        .get_user(by_name("carol.o"))
        .await
        .must();
    assert_eq!(via_service, changed);
    env.service()
        .await
        .get_user(by_name("carol.o"))
        .await
        .fails(Code::PermissionDenied);
    env.service()
        .await
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .fails(Code::PermissionDenied);
}
