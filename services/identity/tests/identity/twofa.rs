//! Two-factor authentication: enrolment, login with codes and clock drift, admin reset, and
//! enrolment demanded at login.

use crate::common::{
    Backend, Client, Code, Env, NEW_PASSWORD, Outcome, PASSWORD, away_from_step_edge,
    both_backends, pb, totp_code, wrong_totp_code,
};
use crate::passwords::assert_restricted;

both_backends!(
    enrol_then_log_in_with_codes,
    admin_reset_sends_the_user_back_to_enrolment,
    required_two_factor_enrols_before_the_password_change,
    policy_decides_who_may_enrol_and_with_what,
);

async fn policy_decides_who_may_enrol_and_with_what(backend: Backend) {
    let env = Env::start_with_policy(backend, |_| {}).await;
    let (bob, client) = env.user_client("bob").await;
    // allow_2fa_self_enrollment is off by default: no enrolling from the profile.
    client
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .fails(Code::PermissionDenied);
    env.policy()
        .update(&bob.id, |u| u.allow_2fa_self_enrollment = true);
    client
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .must();
    // Required while TOTP is not allowed: nothing to enrol, so no sign-in (said plainly).
    let carol = env.create_user("carol").await;
    env.policy().update(&carol.id, |u| {
        u.require_2fa = true;
        u.allow_totp_2fa = false;
    });
    let status = env
        .login("carol", PASSWORD)
        .await
        .fails(Code::FailedPrecondition);
    assert!(
        status.message().contains("allow_totp_2fa"),
        "{}",
        status.message()
    );
    // Policy down: sign-in fails closed (a wrong password is still just that).
    env.policy().set_down(true);
    env.login("bob", PASSWORD).await.fails(Code::Unavailable);
    env.login("bob", "wrong password!")
        .await
        .fails(Code::Unauthenticated);
    env.policy().set_down(false);
    env.login_ok("bob", PASSWORD).await;
}

/// Enrols the client's user; returns the base32 secret.
async fn enrol(client: &Client) -> String {
    let enrolment = client
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .must();
    away_from_step_edge().await;
    let confirmed = client
        .clone()
        .confirm_totp(pb::ConfirmTotpRequest {
            code: totp_code(&enrolment.secret, 0),
        })
        .await
        .must();
    assert_eq!(confirmed.status(), pb::LoginStatus::Success);
    enrolment.secret
}

fn login_request(username: &str, password: &str, code: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        username: username.into(),
        password: password.into(),
        totp_code: code.into(),
        require_two_factor: false,
    }
}

async fn enrol_then_log_in_with_codes(backend: Backend) {
    let env = Env::start(backend).await;
    let (bob, client) = env.user_client("bob").await;
    let carol = env.create_sso_user("carol", "").await;

    client
        .clone()
        .confirm_totp(pb::ConfirmTotpRequest {
            code: "123456".into(),
        })
        .await
        .fails(Code::FailedPrecondition);
    client
        .clone()
        .enroll_totp(pb::EnrollTotpRequest {
            user_id: carol.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    env.service()
        .await
        .enroll_totp(pb::EnrollTotpRequest {
            user_id: bob.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);

    let enrolment = client
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .must();
    let raw = data_encoding::BASE32_NOPAD
        .decode(enrolment.secret.as_bytes())
        .expect("base32 secret");
    assert_eq!(raw.len(), 20);
    assert!(
        enrolment.otpauth_uri.starts_with(&format!(
            "otpauth://totp/Atrium:bob?secret={}&issuer=Atrium",
            enrolment.secret
        )),
        "{}",
        enrolment.otpauth_uri
    );
    // Not enrolled until confirmed: login still needs no code.
    assert!(!env.get_user(&bob.id).await.two_factor_enrolled);

    away_from_step_edge().await;
    let confirm = |code: String| {
        let mut client = client.clone();
        async move { client.confirm_totp(pb::ConfirmTotpRequest { code }).await }
    };
    confirm(String::new()).await.invalid("code");
    confirm(wrong_totp_code(&enrolment.secret, 1))
        .await
        .invalid("code");
    // A code one step old is accepted (clock drift), and is spent by confirming.
    let confirmed = confirm(totp_code(&enrolment.secret, -1)).await.must();
    assert_eq!(confirmed.status(), pb::LoginStatus::Success);
    assert!(confirmed.user.expect("user").two_factor_enrolled);
    assert!(env.get_user(&bob.id).await.two_factor_enrolled);
    client
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .fails(Code::FailedPrecondition);
    // The secret is stored sealed.
    let stored = env
        .sql("SELECT totp_secret FROM users WHERE username = 'bob'")
        .await;
    let stored = stored[0].clone().expect("totp_secret");
    assert!(!stored.contains(&enrolment.secret));

    // Password alone: asked for the code, no token.
    let asked = env.login("bob", PASSWORD).await.must();
    assert_eq!(asked.status(), pb::LoginStatus::TotpRequired);
    assert!(asked.access_token.is_empty());
    assert!(asked.refresh_token.is_empty());

    away_from_step_edge().await;
    let secret = &enrolment.secret;
    let with_code = |code: String| env.login_with(login_request("bob", PASSWORD, &code));
    with_code(wrong_totp_code(secret, 1))
        .await
        .fails(Code::Unauthenticated);
    // Each code works once (RFC 6238 §5.2); a step ahead is accepted; an older step after a
    // newer one is not.
    for (drift, accepted) in [(0, true), (0, false), (1, true), (-1, false)] {
        let result = with_code(totp_code(secret, drift)).await;
        if accepted {
            let ok = result.must();
            assert_eq!(ok.status(), pb::LoginStatus::Success, "drift {drift}");
            assert!(!ok.access_token.is_empty() && !ok.refresh_token.is_empty());
        } else {
            let status = result.fails(Code::Unauthenticated);
            assert!(
                status.message().contains("already used"),
                "{}",
                status.message()
            );
        }
    }
    for drift in [3, -3] {
        let code = totp_code(secret, drift);
        if (-1..=1).any(|d| totp_code(secret, d) == code) {
            continue; // a one-in-a-million collision with a valid code
        }
        with_code(code).await.fails(Code::Unauthenticated);
    }
    // The code does not stand in for the password.
    env.login_with(login_request(
        "bob",
        "wrong password!",
        &totp_code(secret, 0),
    ))
    .await
    .fails(Code::Unauthenticated);
    assert_eq!(env.get_user(&bob.id).await.failed_login_count, 4);
    let failures = env
        .audit(pb::ListAuditEventsRequest {
            user_id: bob.id.clone(),
            kind: "login.failure".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(failures.len(), 6);
    assert!(failures[0].detail.contains("bad_password"));
    assert!(failures[1].detail.contains("bad_totp_code"));
}

async fn admin_reset_sends_the_user_back_to_enrolment(backend: Backend) {
    let env = Env::start(backend).await;
    let (bob, client) = env.user_client("bob").await;
    let old_secret = enrol(&client).await;

    client
        .clone()
        .reset_two_factor(pb::ResetTwoFactorRequest {
            user_id: bob.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    let reset = env
        .admin()
        .reset_two_factor(pb::ResetTwoFactorRequest {
            user_id: bob.id.clone(),
        })
        .await
        .must();
    assert!(!reset.two_factor_enrolled);

    let login = env.login("bob", PASSWORD).await.must();
    assert_eq!(login.status(), pb::LoginStatus::TotpEnrollmentRequired);
    assert!(!login.access_token.is_empty());
    assert!(login.refresh_token.is_empty());
    assert!(login.login_session_id.is_empty());
    let restricted = env.bearer(&login.access_token).await;
    let whoami = restricted
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .must();
    assert_eq!(whoami.scope, "totp_enrollment");
    assert_restricted(&restricted, &bob.id).await;
    restricted
        .clone()
        .change_password(pb::ChangePasswordRequest {
            old_password: PASSWORD.into(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .fails(Code::PermissionDenied);

    // Enrolling with the restricted token completes the login.
    let enrolment = restricted
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .must();
    assert_ne!(enrolment.secret, old_secret);
    away_from_step_edge().await;
    let done = restricted
        .clone()
        .confirm_totp(pb::ConfirmTotpRequest {
            code: totp_code(&enrolment.secret, 0),
        })
        .await
        .must();
    assert_eq!(done.status(), pb::LoginStatus::Success);
    assert!(!done.access_token.is_empty());
    assert!(!done.refresh_token.is_empty());
    assert!(!done.login_session_id.is_empty());
    assert!(done.user.expect("user").two_factor_enrolled);
    let full = env.bearer(&done.access_token).await;
    assert_eq!(
        full.clone()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .must()
            .scope,
        "full"
    );
    env.refresh(&done.refresh_token).await.must();

    // Enrolled again, with the new secret only.
    let asked = env.login("bob", PASSWORD).await.must();
    assert_eq!(asked.status(), pb::LoginStatus::TotpRequired);
    let old_code = totp_code(&old_secret, 0);
    if (-1..=1).all(|d| totp_code(&enrolment.secret, d) != old_code) {
        env.login_with(login_request("bob", PASSWORD, &old_code))
            .await
            .fails(Code::Unauthenticated);
    }
    // The confirming code was spent; the next step's code logs in.
    let ok = env
        .login_with(login_request(
            "bob",
            PASSWORD,
            &totp_code(&enrolment.secret, 1),
        ))
        .await
        .must();
    assert_eq!(ok.status(), pb::LoginStatus::Success);
    assert_eq!(env.audit_kind("2fa.reset").await.len(), 1);
    assert_eq!(env.audit_kind("2fa.enroll").await.len(), 2);
}

async fn required_two_factor_enrols_before_the_password_change(backend: Backend) {
    let env = Env::start_with_policy(backend, |_| {}).await;
    let bob_user = env.create_user("bob").await;
    let carol = env
        .create(pb::CreateUserRequest {
            username: "carol".into(),
            password: PASSWORD.into(),
            force_password_reset: true,
            ..Default::default()
        })
        .await;
    // The request's flag is ignored: whatever the caller says, the server decides.
    let required = |username: &str, password: &str, code: String| pb::LoginRequest {
        require_two_factor: false,
        ..login_request(username, password, &code)
    };

    // Without the requirement an unenrolled user just signs in (even if the request claims
    // one); once policy requires 2FA (require_2fa), they must enrol.
    env.login_with(pb::LoginRequest {
        require_two_factor: true,
        ..login_request("bob", PASSWORD, "")
    })
    .await
    .must();
    let (full, _) = env.login_ok("bob", PASSWORD).await;
    env.policy().update(&bob_user.id, |u| u.require_2fa = true);
    env.policy().update(&carol.id, |u| u.require_2fa = true);
    // Refresh re-checks the requirement instead of renewing full tokens.
    let refreshed = env.refresh(&full.refresh_token).await.must();
    assert_eq!(refreshed.status(), pb::LoginStatus::TotpEnrollmentRequired);
    assert!(refreshed.refresh_token.is_empty());
    env.refresh(&full.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    let bob = env
        .login_with(required("bob", PASSWORD, String::new()))
        .await
        .must();
    assert_eq!(bob.status(), pb::LoginStatus::TotpEnrollmentRequired);
    assert!(bob.refresh_token.is_empty());
    // A wrong password is still just that.
    env.login_with(required("bob", "wrong password!", String::new()))
        .await
        .fails(Code::Unauthenticated);

    // Enrolment first, then the forced password change, then full tokens.
    let login = env
        .login_with(required("carol", PASSWORD, String::new()))
        .await
        .must();
    assert_eq!(login.status(), pb::LoginStatus::TotpEnrollmentRequired);
    let restricted = env.bearer(&login.access_token).await;
    let enrolment = restricted
        .clone()
        .enroll_totp(pb::EnrollTotpRequest::default())
        .await
        .must();
    away_from_step_edge().await;
    let next = restricted
        .clone()
        .confirm_totp(pb::ConfirmTotpRequest {
            code: totp_code(&enrolment.secret, 0),
        })
        .await
        .must();
    assert_eq!(next.status(), pb::LoginStatus::PasswordChangeRequired);
    assert!(next.refresh_token.is_empty());
    let change = env.bearer(&next.access_token).await;
    assert_eq!(
        change
            .clone()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .must()
            .scope,
        "password_change"
    );
    let done = change
        .clone()
        .change_password(pb::ChangePasswordRequest {
            old_password: PASSWORD.into(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .must();
    assert_eq!(done.status(), pb::LoginStatus::Success);
    assert!(!done.refresh_token.is_empty());
    let user = env.get_user(&carol.id).await;
    assert!(user.two_factor_enrolled && !user.force_password_reset);
    let ok = env
        .login_with(required(
            "carol",
            NEW_PASSWORD,
            totp_code(&enrolment.secret, 1),
        ))
        .await
        .must();
    assert_eq!(ok.status(), pb::LoginStatus::Success);
}
