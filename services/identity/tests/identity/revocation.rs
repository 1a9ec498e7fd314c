//! Revocation (issue 8): ending a user's access writes revocations that identity's own auth
//! layer applies within a second and that `WatchRevocations` streams to other services; a
//! database failure during an authorization check is Unavailable, not "gone".

use std::time::{Duration, Instant};

use tokio_stream::StreamExt;

use crate::common::{Backend, Client, Code, Env, Outcome, both_backends, by_id, pb, update};

both_backends!(
    a_lock_is_refused_within_a_second_and_streamed,
    a_forced_reset_ends_sessions,
    a_database_error_is_unavailable,
);

/// Waits up to `limit` until `client`'s token is refused (WhoAmI checks nothing but the token).
async fn refused_within(client: &Client, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match client.clone().who_am_i(pb::WhoAmIRequest {}).await {
            Err(status) if status.code() == Code::Unauthenticated => return start.elapsed(),
            _ if start.elapsed() > limit => panic!("token still accepted after {limit:?}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn a_lock_is_refused_within_a_second_and_streamed(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let (login, client) = env.login_ok("bob", crate::common::PASSWORD).await;
    let mut stream = env
        .service()
        .await
        .watch_revocations(pb::WatchRevocationsRequest { after: 0 })
        .await
        .must();
    let first = stream.next().await.expect("a first batch").expect("batch");
    assert!(first.revocations.is_empty(), "{first:?}");
    client.clone().who_am_i(pb::WhoAmIRequest {}).await.must();

    env.admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(true),
            ..update(&bob.id)
        })
        .await
        .must();
    refused_within(&client, Duration::from_secs(1)).await;
    let next = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("a revocation within 2 s")
        .expect("a batch")
        .expect("batch");
    assert_eq!(next.revocations.len(), 1, "{next:?}");
    assert_eq!(next.revocations[0].login_session_id, login.login_session_id);
    assert_eq!(next.revocations[0].user_id, bob.id);
    assert!(next.cursor > first.cursor);

    // A consumer reconnecting from 0 gets it again (still relevant); from the cursor, nothing
    // new (rows of the last few seconds may repeat: a late commit must not be missed).
    let mut again = env
        .service()
        .await
        .watch_revocations(pb::WatchRevocationsRequest { after: 0 })
        .await
        .must();
    let replay = again.next().await.expect("batch").expect("batch");
    assert_eq!(replay.revocations.len(), 1);
    let mut caught_up = env
        .service()
        .await
        .watch_revocations(pb::WatchRevocationsRequest { after: next.cursor })
        .await
        .must();
    let nothing = caught_up.next().await.expect("batch").expect("batch");
    assert!(
        nothing
            .revocations
            .iter()
            .all(|r| r.login_session_id == login.login_session_id),
        "{nothing:?}"
    );

    // Users may not watch.
    let (_, carol) = env.user_client("carol").await;
    carol
        .clone()
        .watch_revocations(pb::WatchRevocationsRequest { after: 0 })
        .await
        .fails(Code::PermissionDenied);

    // Logout and LogoutEverywhere revoke the access token too, not just the refresh token.
    let (_, carol2) = env.login_ok("carol", crate::common::PASSWORD).await;
    carol
        .clone()
        .logout_everywhere(pb::LogoutEverywhereRequest::default())
        .await
        .must();
    refused_within(&carol2, Duration::from_secs(1)).await;
    refused_within(&carol, Duration::from_secs(1)).await;
}

async fn a_forced_reset_ends_sessions(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let (login, client) = env.login_ok("bob", crate::common::PASSWORD).await;
    env.admin()
        .update_user(pb::UpdateUserRequest {
            force_password_reset: Some(true),
            ..update(&bob.id)
        })
        .await
        .must();
    refused_within(&client, Duration::from_secs(1)).await;
    env.refresh(&login.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    let next = env.login("bob", crate::common::PASSWORD).await.must();
    assert_eq!(next.status(), pb::LoginStatus::PasswordChangeRequired);

    // Resetting 2FA and an admin setting the password end sessions too.
    let (carol, carol_client) = env.user_client("carol").await;
    env.admin()
        .reset_two_factor(pb::ResetTwoFactorRequest {
            user_id: carol.id.clone(),
        })
        .await
        .must();
    refused_within(&carol_client, Duration::from_secs(1)).await;
    let (_, carol_client) = env.login_ok("carol", crate::common::PASSWORD).await;
    env.admin()
        .set_password(pb::SetPasswordRequest {
            user_id: carol.id.clone(),
            new_password: crate::common::NEW_PASSWORD.into(),
            force_password_reset: false,
        })
        .await
        .must();
    refused_within(&carol_client, Duration::from_secs(1)).await;
}

async fn a_database_error_is_unavailable(backend: Backend) {
    let env = Env::start(backend).await;
    let (bob, client) = env.user_client("bob").await;
    client.clone().get_user(by_id(&bob.id)).await.must();
    env.sql("ALTER TABLE users RENAME TO users_elsewhere").await;
    // ListUsers checks the caller's account first: that read fails.
    let status = client
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .fails(Code::Unavailable);
    assert!(
        !status.message().contains("no longer exists"),
        "{}",
        status.message()
    );
    env.sql("ALTER TABLE users_elsewhere RENAME TO users").await;
    client.clone().get_user(by_id(&bob.id)).await.must();
}
