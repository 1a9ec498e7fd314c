//! Failed-login counting and account lockout, including under concurrent attempts.

use crate::common::{Backend, Code, Env, Outcome, PASSWORD, both_backends, pb, update};

both_backends!(
    five_failures_lock_the_account,
    success_before_the_threshold_resets_the_count,
    concurrent_failures_are_all_counted,
    concurrent_failures_lock_exactly_once,
);

const WRONG: &str = "wrong password!";

async fn five_failures_lock_the_account(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    for attempt in 1..=4 {
        let status = env.login("bob", WRONG).await.fails(Code::Unauthenticated);
        assert!(!status.message().contains("locked"), "{status:?}");
        let row = env.get_user(&bob.id).await;
        assert_eq!(row.failed_login_count, attempt);
        assert!(!row.locked);
    }
    // The lock is not announced to someone who does not know the password.
    let fifth = env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    assert_eq!(fifth.message(), "invalid username or password");
    let row = env.get_user(&bob.id).await;
    assert!(row.locked);
    assert_eq!(row.failed_login_count, 5);

    // Wrong passwords on a locked account are not counted further.
    env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    assert_eq!(env.get_user(&bob.id).await.failed_login_count, 5);
    // The right password no longer helps, and does not count.
    let sixth = env
        .login("bob", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    assert_eq!(sixth.message(), "invalid username or password");
    assert_eq!(env.get_user(&bob.id).await.failed_login_count, 5);
    let locks = env.audit_kind("user.locked").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].user_id, bob.id);

    // Unlocking clears the count; the password works again.
    let unlocked = env
        .admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(false),
            ..update(&bob.id)
        })
        .await
        .must();
    assert!(!unlocked.locked);
    assert_eq!(unlocked.failed_login_count, 0);
    env.login_ok("bob", PASSWORD).await;
    // And it takes five fresh failures to lock again.
    for _ in 0..4 {
        env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    }
    assert!(!env.get_user(&bob.id).await.locked);
}

async fn success_before_the_threshold_resets_the_count(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    for _ in 0..4 {
        env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    }
    assert_eq!(env.get_user(&bob.id).await.failed_login_count, 4);
    let (login, _) = env.login_ok("bob", PASSWORD).await;
    assert_eq!(login.user.expect("user").failed_login_count, 0);
    assert_eq!(env.get_user(&bob.id).await.failed_login_count, 0);
    for _ in 0..4 {
        env.login("bob", WRONG).await.fails(Code::Unauthenticated);
    }
    let row = env.get_user(&bob.id).await;
    assert_eq!(row.failed_login_count, 4);
    assert!(!row.locked);
    env.login_ok("bob", PASSWORD).await;
}

async fn concurrent_failures_are_all_counted(backend: Backend) {
    let env = Env::start_with(backend, |c| c.lockout_threshold = 1000).await;
    let bob = env.create_user("bob").await;
    let attempts = futures::future::join_all((0..10).map(|_| env.login("bob", WRONG))).await;
    for attempt in attempts {
        attempt.fails(Code::Unauthenticated);
    }
    let row = env.get_user(&bob.id).await;
    assert_eq!(row.failed_login_count, 10);
    assert!(!row.locked);
    let failures = env.audit_kind("login.failure").await;
    assert_eq!(failures.len(), 10);
}

async fn concurrent_failures_lock_exactly_once(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let attempts = futures::future::join_all((0..10).map(|_| env.login("bob", WRONG))).await;
    for attempt in attempts {
        let status = attempt.fails(Code::Unauthenticated);
        assert_eq!(status.message(), "invalid username or password");
    }
    // Attempts counted before the lock landed count; none after it.
    let row = env.get_user(&bob.id).await;
    assert!(row.locked);
    assert!((5..=10).contains(&row.failed_login_count), "{row:?}");
    assert_eq!(env.audit_kind("user.locked").await.len(), 1);
    assert_eq!(env.audit_kind("login.failure").await.len(), 10);
}
