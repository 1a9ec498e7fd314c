//! Password changes: the forced change at login, a user changing their own password, and an
//! admin setting one.

use crate::common::{
    Backend, Client, Code, Env, NEW_PASSWORD, Outcome, PASSWORD, both_backends, by_id, nanos, pb,
    secs_from_now, update,
};

both_backends!(
    forced_change_restricts_the_token_until_done,
    changing_the_password_ends_other_sessions,
    admin_sets_a_password,
);

/// Every RPC except WhoAmI, Logout and ChangePassword must refuse a restricted token.
pub async fn assert_restricted(client: &Client, user_id: &str) {
    let c = || client.clone();
    let id = || user_id.to_owned();
    let denied = [
        c().get_user(by_id(user_id)).await.map(|_| ()),
        c().update_user(pb::UpdateUserRequest {
            first_name: Some("x".into()),
            ..update(user_id)
        })
        .await
        .map(|_| ()),
        c().list_users(pb::ListUsersRequest::default())
            .await
            .map(|_| ()),
        c().create_user(pb::CreateUserRequest {
            username: "x".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        c().get_user_settings(pb::GetUserSettingsRequest::default())
            .await
            .map(|_| ()),
        c().update_user_settings(pb::UpdateUserSettingsRequest {
            auto_launch_session: Some(true),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        c().generate_ssh_key(pb::GenerateSshKeyRequest::default())
            .await
            .map(|_| ()),
        c().get_ssh_key(pb::GetSshKeyRequest {
            user_id: id(),
            include_private_key: false,
        })
        .await
        .map(|_| ()),
        c().logout_everywhere(pb::LogoutEverywhereRequest::default())
            .await
            .map(|_| ()),
        c().create_api_key(pb::CreateApiKeyRequest {
            name: "k".into(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        c().list_audit_events(pb::ListAuditEventsRequest::default())
            .await
            .map(|_| ()),
        c().rotate_signing_key(pb::RotateSigningKeyRequest {})
            .await
            .map(|_| ()),
        c().authenticate_api_key(pb::AuthenticateApiKeyRequest {
            id: "ak_x".into(),
            secret: "x".into(),
        })
        .await
        .map(|_| ()),
    ];
    for (i, outcome) in denied.into_iter().enumerate() {
        let status = match outcome {
            Ok(()) => panic!("call #{i} accepted a restricted token"),
            Err(status) => status,
        };
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "call #{i}: {status:?}"
        );
    }
}

async fn forced_change_restricts_the_token_until_done(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env
        .create(pb::CreateUserRequest {
            username: "bob".into(),
            password: PASSWORD.into(),
            force_password_reset: true,
            ..Default::default()
        })
        .await;

    let login = env.login("bob", PASSWORD).await.must();
    assert_eq!(login.status(), pb::LoginStatus::PasswordChangeRequired);
    assert!(!login.access_token.is_empty());
    assert!(login.refresh_token.is_empty());
    assert!(login.refresh_token_expires_at.is_none());
    assert!(login.login_session_id.is_empty());
    assert!(secs_from_now(&login.access_token_expires_at) <= 300);
    let restricted = env.bearer(&login.access_token).await;
    let whoami = restricted
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .must();
    assert_eq!(whoami.scope, "password_change");
    assert_eq!(whoami.user_id, bob.id);
    assert_restricted(&restricted, &bob.id).await;
    restricted
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .fails(Code::PermissionDenied);

    // Bad change requests.
    let change = |old: &str, new: &str| {
        let mut client = restricted.clone();
        let request = pb::ChangePasswordRequest {
            old_password: old.into(),
            new_password: new.into(),
        };
        async move { client.change_password(request).await }
    };
    change("", NEW_PASSWORD).await.invalid("old_password");
    change(PASSWORD, "short").await.invalid("new_password");
    change(PASSWORD, PASSWORD).await.invalid("new_password");
    change(PASSWORD, "BOB").await.invalid("new_password");
    change("not the old one", NEW_PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    assert!(env.get_user(&bob.id).await.force_password_reset);

    let done = change(PASSWORD, NEW_PASSWORD).await.must();
    assert_eq!(done.status(), pb::LoginStatus::Success);
    assert!(!done.access_token.is_empty());
    assert!(!done.refresh_token.is_empty());
    assert!(!done.login_session_id.is_empty());
    let user = done.user.clone().expect("user");
    assert!(!user.force_password_reset);
    assert_eq!(user.failed_login_count, 0);
    assert!(nanos(&user.password_set_at) > nanos(&bob.password_set_at));
    let full = env.bearer(&done.access_token).await;
    assert_eq!(
        full.clone()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .must()
            .scope,
        "full"
    );
    assert_eq!(
        full.clone().get_user(by_id(&bob.id)).await.must().id,
        bob.id
    );
    env.refresh(&done.refresh_token).await.must();

    // The flag is gone: a plain login with the new password, not the old.
    env.login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    env.login_ok("bob", NEW_PASSWORD).await;
    assert!(!env.get_user(&bob.id).await.force_password_reset);
    let changes = env.audit_kind("password.change").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].actor, format!("user:{}", bob.id));
}

async fn changing_the_password_ends_other_sessions(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let (here, client) = env.login_ok("bob", PASSWORD).await;
    let (elsewhere, _) = env.login_ok("bob", PASSWORD).await;

    let changed = client
        .clone()
        .change_password(pb::ChangePasswordRequest {
            old_password: PASSWORD.into(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .must();
    assert_eq!(changed.status(), pb::LoginStatus::Success);
    assert_eq!(changed.user.expect("user").id, bob.id);
    env.refresh(&elsewhere.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    env.refresh(&here.refresh_token).await.must();
    env.login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    env.login_ok("bob", NEW_PASSWORD).await;
    // API keys and services have no password of their own.
    env.service()
        .await
        .change_password(pb::ChangePasswordRequest {
            old_password: PASSWORD.into(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .fails(Code::PermissionDenied);
}

async fn admin_sets_a_password(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let (session, bob_client) = env.login_ok("bob", PASSWORD).await;
    bob_client
        .clone()
        .set_password(pb::SetPasswordRequest {
            user_id: bob.id.clone(),
            new_password: NEW_PASSWORD.into(),
            force_password_reset: false,
        })
        .await
        .fails(Code::PermissionDenied);
    env.admin()
        .set_password(pb::SetPasswordRequest {
            user_id: bob.id.clone(),
            new_password: "tiny".into(),
            force_password_reset: false,
        })
        .await
        .invalid("new_password");

    let set = env
        .admin()
        .set_password(pb::SetPasswordRequest {
            user_id: bob.id.clone(),
            new_password: NEW_PASSWORD.into(),
            force_password_reset: true,
        })
        .await
        .must();
    assert!(set.force_password_reset);
    assert!(nanos(&set.password_set_at) > nanos(&bob.password_set_at));
    // Every session ended; the old password is gone; the next login must change it.
    env.refresh(&session.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    env.login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    let login = env.login("bob", NEW_PASSWORD).await.must();
    assert_eq!(login.status(), pb::LoginStatus::PasswordChangeRequired);
    assert_eq!(env.audit_kind("password.set").await.len(), 1);
}
