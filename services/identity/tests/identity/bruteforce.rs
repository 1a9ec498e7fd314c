//! Brute force and exhaustion (issue 8): login rate limits per account and per source, automatic
//! lockouts that expire while an admin's lock stays, TOTP guessing bounded even without a
//! lockout threshold, and retention of audit events and ended login sessions.

use std::time::Duration;

use crate::common::{
    Backend, Code, Env, Outcome, PASSWORD, away_from_step_edge, both_backends, pb, totp_code,
    update, wrong_totp_code,
};

both_backends!(
    logins_are_rate_limited_per_account_and_per_source,
    automatic_lockouts_expire_but_an_admins_lock_stays,
    totp_guessing_is_bounded_without_a_lockout_threshold,
    old_audit_events_and_ended_sessions_are_pruned,
);

const WRONG: &str = "not the password";

async fn logins_are_rate_limited_per_account_and_per_source(backend: Backend) {
    let env = Env::start_with(backend, |c| {
        c.login_attempts_per_account_per_minute = 3;
        c.login_attempts_per_source_per_minute = 6;
    })
    .await;
    env.create_user("bob").await;
    for _ in 0..3 {
        env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    }
    let status = env
        .login("bob", PASSWORD)
        .await
        .fails(Code::ResourceExhausted);
    assert!(status.message().contains("account"), "{}", status.message());
    // Other accounts from the same address: until the address's own budget runs out (the
    // admin's login at start and bob's four attempts count too).
    env.login("nobody-1", WRONG)
        .await
        .fails(Code::Unauthenticated);
    let status = env
        .login("nobody-2", WRONG)
        .await
        .fails(Code::ResourceExhausted);
    assert!(status.message().contains("address"), "{}", status.message());
}

async fn automatic_lockouts_expire_but_an_admins_lock_stays(backend: Backend) {
    let env = Env::start_with(backend, |c| {
        c.lockout_threshold = 2;
        c.lockout_duration_secs = 2;
    })
    .await;
    let bob = env.create_user("bob").await;
    let carol = env.create_user("carol").await;
    for _ in 0..2 {
        env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    }
    assert!(env.get_user(&bob.id).await.locked);
    env.login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    env.admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(true),
            ..update(&carol.id)
        })
        .await
        .must();
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    // The automatic lockout has run out; the admin's lock has not.
    assert!(!env.get_user(&bob.id).await.locked);
    env.login_ok("bob", PASSWORD).await;
    assert!(env.get_user(&carol.id).await.locked);
    env.login("carol", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
}

async fn totp_guessing_is_bounded_without_a_lockout_threshold(backend: Backend) {
    let env = Env::start_with(backend, |c| {
        c.lockout_threshold = 0;
        c.totp_max_attempts = 3;
    })
    .await;
    let (bob, client) = env.user_client("bob").await;
    let enrolment = client
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .must();
    away_from_step_edge().await;
    client
        .clone()
        .confirm_totp(pb::ConfirmTotpRequest {
            code: totp_code(&enrolment.secret, 0),
        })
        .await
        .must();
    // Wrong passwords never lock (threshold 0)...
    for _ in 0..5 {
        env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    }
    assert!(!env.get_user(&bob.id).await.locked);
    // ...but wrong codes after the right password do, at totp_max_attempts.
    let wrong = wrong_totp_code(&enrolment.secret, 2);
    let guess = |code: String| pb::LoginRequest {
        username: "bob".into(),
        password: PASSWORD.into(),
        totp_code: code,
        require_two_factor: false,
    };
    // (The wrong passwords count too, so the lock may come at the first wrong code.)
    let mut messages = Vec::new();
    for _ in 0..3 {
        let status = env
            .login_with(guess(wrong.clone()))
            .await
            .fails(Code::Unauthenticated);
        messages.push(status.message().to_owned());
    }
    assert!(
        messages.iter().any(|m| m.contains("now locked")),
        "{messages:?}"
    );
    assert!(env.get_user(&bob.id).await.locked);
    away_from_step_edge().await;
    env.login_with(guess(totp_code(&enrolment.secret, 1)))
        .await
        .fails(Code::Unauthenticated);
}

async fn old_audit_events_and_ended_sessions_are_pruned(backend: Backend) {
    let env = Env::start_with(backend, |c| {
        c.retention_interval_secs = 1;
        c.audit_retention_days = 1;
        c.login_session_retention_days = 1;
    })
    .await;
    env.create_user("bob").await;
    let (one, _) = env.login_ok("bob", PASSWORD).await;
    let (two, _) = env.login_ok("bob", PASSWORD).await;
    let old = "'2000-01-01 00:00:00+00:00'";
    env.sql(&format!(
        "UPDATE audit_events SET at = {old} WHERE kind = 'user.create'"
    ))
    .await;
    env.sql(&format!(
        "UPDATE login_sessions SET revoked_at = {old} WHERE id = '{}'",
        one.login_session_id
    ))
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events = env
            .sql("SELECT id FROM audit_events WHERE kind = 'user.create'")
            .await;
        let sessions = env.sql("SELECT id FROM login_sessions").await;
        let has = |id: &str| sessions.iter().any(|s| s.as_deref() == Some(id));
        if events.is_empty() && !has(&one.login_session_id) {
            assert!(has(&two.login_session_id), "a live session was pruned");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not pruned: {events:?} {sessions:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Recent events stay.
    assert!(!env.audit_kind("login.success").await.is_empty());
}
