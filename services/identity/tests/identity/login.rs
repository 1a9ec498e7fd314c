//! Login, refresh, logout: the life of a login session.

use crate::common::{
    Backend, Code, Env, Outcome, PASSWORD, both_backends, by_id, pb, secs_from_now, update,
};

/// The one answer to every refused password login.
const BAD: &str = "invalid username or password";

both_backends!(
    login_issues_working_tokens,
    refresh_rotates_and_replay_ends_the_session,
    concurrent_refreshes_of_one_token_succeed_once,
    logout_ends_the_session,
    logout_everywhere_ends_every_session,
    locked_disabled_and_sso_users_cannot_sign_in,
    wrong_passwords_reveal_nothing_about_the_account,
);

async fn login_issues_working_tokens(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    assert!(bob.last_session_at.is_none());
    let before = chrono::Utc::now().timestamp();

    let (login, client) = env.login_ok("BoB", PASSWORD).await;
    assert!(!login.login_session_id.is_empty());
    assert_ne!(login.access_token, login.refresh_token);
    let access_left = secs_from_now(&login.access_token_expires_at);
    assert!((890..=900).contains(&access_left), "{access_left}");
    let refresh_left = secs_from_now(&login.refresh_token_expires_at);
    assert!(
        (30 * 24 * 3600 - 10..=30 * 24 * 3600).contains(&refresh_left),
        "{refresh_left}"
    );
    let user = login.user.clone().expect("user");
    assert_eq!(user.id, bob.id);
    assert_eq!(user.username, "bob");
    let last = user.last_session_at.expect("last_session_at").seconds;
    assert!((before..=before + 5).contains(&last));

    let whoami = client.clone().who_am_i(pb::WhoAmIRequest {}).await.must();
    assert_eq!(whoami.kind, "user");
    assert_eq!(whoami.user_id, bob.id);
    assert_eq!(whoami.username, "bob");
    assert_eq!(whoami.scope, "full");
    // What login answered is what the service stored.
    assert_eq!(env.get_user(&bob.id).await, user);
    assert_eq!(client.clone().get_user(by_id(&bob.id)).await.must(), user);

    // The refresh token is stored only as a hash.
    let stored = env.sql("SELECT refresh_hash FROM login_sessions").await;
    assert_eq!(stored.len(), 2, "admin's and bob's sessions");
    assert!(
        stored
            .iter()
            .all(|h| h.as_deref() != Some(login.refresh_token.as_str()))
    );

    // Wrong password and unknown user fail alike.
    let wrong = env
        .login("bob", "not the password")
        .await
        .fails(Code::Unauthenticated);
    let unknown = env
        .login("nobody", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    assert_eq!(wrong.message(), unknown.message());
    env.login("bob", "").await.invalid("password");
    env.login("", PASSWORD).await.invalid("username");
}

async fn refresh_rotates_and_replay_ends_the_session(backend: Backend) {
    let env = Env::start(backend).await;
    env.create_user("bob").await;
    let (login, _) = env.login_ok("bob", PASSWORD).await;

    let first = env.refresh(&login.refresh_token).await.must();
    assert_eq!(first.status(), pb::LoginStatus::Success);
    assert_eq!(first.login_session_id, login.login_session_id);
    assert_ne!(first.refresh_token, login.refresh_token);
    assert!(!first.access_token.is_empty());
    assert_eq!(
        first.refresh_token_expires_at,
        login.refresh_token_expires_at
    );
    let whoami = env
        .bearer(&first.access_token)
        .await
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .must();
    assert_eq!(whoami.username, "bob");

    let second = env.refresh(&first.refresh_token).await.must();
    assert_ne!(second.refresh_token, first.refresh_token);

    // The replaced token comes back: refused, and the whole session ends.
    env.refresh(&first.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    env.refresh(&second.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    let reuse = env.audit_kind("login_session.reuse_detected").await;
    assert_eq!(reuse.len(), 1);
    assert!(reuse[0].detail.contains(&login.login_session_id));

    env.refresh("").await.invalid("refresh_token");
    env.refresh("made-up").await.fails(Code::Unauthenticated);
    // A fresh login still works.
    env.login_ok("bob", PASSWORD).await;
}

async fn concurrent_refreshes_of_one_token_succeed_once(backend: Backend) {
    let env = Env::start(backend).await;
    env.create_user("bob").await;
    let (login, _) = env.login_ok("bob", PASSWORD).await;
    let attempts =
        futures::future::join_all((0..6).map(|_| env.refresh(&login.refresh_token))).await;
    let won: Vec<&pb::LoginResponse> = attempts
        .iter()
        .filter_map(|r| r.as_ref().ok().map(tonic::Response::get_ref))
        .collect();
    assert_eq!(won.len(), 1, "{attempts:?}");
    for lost in attempts.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(lost.code(), Code::Unauthenticated, "{lost:?}");
    }
}

async fn logout_ends_the_session(backend: Backend) {
    let env = Env::start(backend).await;
    env.create_user("bob").await;
    let (one, client) = env.login_ok("bob", PASSWORD).await;
    let (two, _) = env.login_ok("bob", PASSWORD).await;

    let ended = client
        .clone()
        .logout(pb::LogoutRequest::default())
        .await
        .must();
    assert_eq!(ended.ended, 1);
    env.refresh(&one.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    // Only that session ended.
    let two = env.refresh(&two.refresh_token).await.must();
    // The ended session's access token is refused from now on (revoked), not just its refresh.
    client
        .clone()
        .logout(pb::LogoutRequest::default())
        .await
        .fails(Code::Unauthenticated);
    // An administrator ends someone's session by its refresh token.
    let ended = env
        .admin()
        .logout(pb::LogoutRequest {
            refresh_token: two.refresh_token.clone(),
        })
        .await
        .must();
    assert_eq!(ended.ended, 1);
    env.refresh(&two.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    // Services may not end sessions (not in their call table).
    env.service()
        .await
        .logout(pb::LogoutRequest::default())
        .await
        .fails(Code::PermissionDenied);
    // Someone else's refresh token: not bob's to end.
    let (admin_login, _) = env.login_ok("admin", crate::common::admin_password()).await;
    let (_, bob) = env.login_ok("bob", PASSWORD).await;
    bob.clone()
        .logout(pb::LogoutRequest {
            refresh_token: admin_login.refresh_token.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    env.refresh(&admin_login.refresh_token).await.must();
    let logouts = env.audit_kind("logout").await;
    assert_eq!(logouts.len(), 2);
}

async fn logout_everywhere_ends_every_session(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(env.login_ok("bob", PASSWORD).await);
    }
    let client = sessions[0].1.clone();
    let ended = client
        .clone()
        .logout_everywhere(pb::LogoutEverywhereRequest::default())
        .await
        .must();
    assert_eq!(ended.ended, 3);
    for (login, _) in &sessions {
        env.refresh(&login.refresh_token)
            .await
            .fails(Code::Unauthenticated);
    }
    // An admin ends someone else's sessions; the admin's own stay.
    let (login, _) = env.login_ok("bob", PASSWORD).await;
    let ended = env
        .admin()
        .logout_everywhere(pb::LogoutEverywhereRequest {
            user_id: bob.id.clone(),
        })
        .await
        .must();
    assert_eq!(ended.ended, 1);
    env.refresh(&login.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    env.admin()
        .logout_everywhere(pb::LogoutEverywhereRequest {
            user_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .fails(Code::NotFound);
    env.admin()
        .logout_everywhere(pb::LogoutEverywhereRequest {
            user_id: "x".into(),
        })
        .await
        .invalid("user_id");
    // The admin is still signed in.
    env.admin().who_am_i(pb::WhoAmIRequest {}).await.must();
}

async fn locked_disabled_and_sso_users_cannot_sign_in(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let (before_lock, _) = env.login_ok("bob", PASSWORD).await;

    env.admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(true),
            ..update(&bob.id)
        })
        .await
        .must();
    let status = env
        .login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    assert_eq!(status.message(), BAD, "the right password reveals nothing");
    env.refresh(&before_lock.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    env.admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(false),
            ..update(&bob.id)
        })
        .await
        .must();
    let (before_disable, _) = env.login_ok("bob", PASSWORD).await;

    env.admin()
        .update_user(pb::UpdateUserRequest {
            disabled: Some(true),
            ..update(&bob.id)
        })
        .await
        .must();
    let status = env
        .login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    assert_eq!(status.message(), BAD);
    env.refresh(&before_disable.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    // Disabled is not a failed password: no count, no lock.
    let row = env.get_user(&bob.id).await;
    assert_eq!(row.failed_login_count, 0);
    assert!(!row.locked);
    env.admin()
        .update_user(pb::UpdateUserRequest {
            disabled: Some(false),
            ..update(&bob.id)
        })
        .await
        .must();
    env.login_ok("bob", PASSWORD).await;

    // A user moved to SSO no longer signs in with a password here.
    env.admin()
        .update_user(pb::UpdateUserRequest {
            realm: Some(pb::Realm::Ldap as i32),
            ..update(&bob.id)
        })
        .await
        .must();
    let status = env
        .login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    assert_eq!(status.message(), BAD);
    let reasons: Vec<String> = env
        .audit(pb::ListAuditEventsRequest {
            user_id: bob.id.clone(),
            kind: "login.failure".into(),
            ..Default::default()
        })
        .await
        .into_iter()
        .map(|e| e.detail)
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    // The audit trail tells administrators why, and whether the password was right (an SSO
    // account's local password is not checked at all).
    assert!(reasons[0].contains("not_local"), "{reasons:?}");
    assert!(reasons[1].contains("disabled"), "{reasons:?}");
    assert!(reasons[2].contains("locked"), "{reasons:?}");
    assert!(
        reasons[0].contains("\"password_correct\":false"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("\"password_correct\":true"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("\"password_correct\":true"),
        "{reasons:?}"
    );
}

async fn wrong_passwords_reveal_nothing_about_the_account(backend: Backend) {
    let env = Env::start(backend).await;
    let unknown = env
        .login("nobody", "wrong password!")
        .await
        .fails(Code::Unauthenticated);
    let mut accounts = Vec::new();
    for (name, change) in [
        (
            "locked",
            pb::UpdateUserRequest {
                locked: Some(true),
                ..Default::default()
            },
        ),
        (
            "disabled",
            pb::UpdateUserRequest {
                disabled: Some(true),
                ..Default::default()
            },
        ),
        (
            "sso",
            pb::UpdateUserRequest {
                realm: Some(pb::Realm::Oidc as i32),
                ..Default::default()
            },
        ),
    ] {
        let user = env.create_user(name).await;
        env.admin()
            .update_user(pb::UpdateUserRequest {
                user_id: user.id.clone(),
                ..change
            })
            .await
            .must();
        accounts.push((name, user));
    }
    for (name, user) in &accounts {
        let status = env
            .login(name, "wrong password!")
            .await
            .fails(Code::Unauthenticated);
        assert_eq!(status.message(), unknown.message(), "{name}");
        // Not counted against an account that cannot sign in here anyway.
        assert_eq!(env.get_user(&user.id).await.failed_login_count, 0, "{name}");
        // Nor does the right password tell the caller anything (no guessing oracle).
        let status = env.login(name, PASSWORD).await.fails(Code::Unauthenticated);
        assert_eq!(status.message(), unknown.message(), "{name}");
    }
}
