//! Identity and policy together: users announced to policy through identity's outbox, identity
//! asking policy for permissions, policy verifying identity's tokens (keys fetched over gRPC,
//! refreshed on rotation) and API keys (resolved by identity).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use atrium_integration_tests::{ADMIN_PASSWORD, Role, Sandbox};
use atrium_launcher::LaunchConfig;
use atrium_proto::identity::v1 as id;
use atrium_proto::policy::v1 as pol;
use atrium_service_kit::auth::Credential;
use tonic::Code;

/// Identity and policy over fresh PostgreSQL databases. Policy verifies tokens on its own, with
/// keys fetched from identity over gRPC (not identity's key set shared in-process).
async fn sandbox() -> Sandbox {
    Sandbox::builder(&[Role::Identity, Role::Policy])
        .configure(|config| {
            LaunchConfig {
                share_verification_keys: false,
                ..config
            }
            .tune_identity(|c| c.permissions_cache_ttl_ms = 500)
        })
        .start()
        .await
        .unwrap()
}

/// Logs in through identity; the access token.
async fn login(sandbox: &Sandbox, username: &str, password: &str) -> String {
    let response = sandbox
        .identity_anonymous()
        .await
        .unwrap()
        .login(id::LoginRequest {
            username: username.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    response.access_token
}

/// Polls `check` until it is true or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

const ALL_USERS: &str = "00000000-0000-7000-8000-000000000002";
const ADMINISTRATORS: &str = "00000000-0000-7000-8000-000000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_and_permissions_across_identity_and_policy() {
    let sandbox = sandbox().await;
    let admin_token = login(&sandbox, "admin", ADMIN_PASSWORD).await;
    let mut admin_identity = sandbox
        .identity_as(&Credential::Bearer(admin_token.clone()))
        .await
        .unwrap();
    let mut admin_policy = sandbox
        .policy_as(&Credential::Bearer(admin_token.clone()))
        .await
        .unwrap();

    // The bootstrap admin reached policy through the outbox, as a member of Administrators.
    let admin_id = admin_identity
        .who_am_i(id::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner()
        .user_id;
    let in_admins = eventually(Duration::from_secs(10), || {
        let mut p = admin_policy.clone();
        let admin_id = admin_id.clone();
        async move {
            let members = p
                .list_group_members(pol::ListGroupMembersRequest {
                    group_id: ADMINISTRATORS.into(),
                    page: None,
                })
                .await;
            members.is_ok_and(|m| m.into_inner().members.iter().any(|m| m.user_id == admin_id))
        }
    })
    .await;
    assert!(in_admins, "the bootstrap admin never joined Administrators");

    // A new user joins All Users in policy.
    let alice = admin_identity
        .create_user(id::CreateUserRequest {
            username: "alice".into(),
            password: "alice-password".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let joined = eventually(Duration::from_secs(10), || {
        let mut p = admin_policy.clone();
        let alice_id = alice.id.clone();
        async move {
            let members = p
                .list_group_members(pol::ListGroupMembersRequest {
                    group_id: ALL_USERS.into(),
                    page: None,
                })
                .await;
            members.is_ok_and(|m| {
                m.into_inner()
                    .members
                    .iter()
                    .any(|m| m.user_id == alice_id && m.source == "system")
            })
        }
    })
    .await;
    assert!(joined, "alice never joined All Users");

    // Alice may not list users until a group of hers holds users.view.
    let alice_token = login(&sandbox, "alice", "alice-password").await;
    let mut alice_identity = sandbox
        .identity_as(&Credential::Bearer(alice_token.clone()))
        .await
        .unwrap();
    let denied = alice_identity
        .list_users(id::ListUsersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let helpdesk = admin_policy
        .create_group(pol::CreateGroupRequest {
            name: "Helpdesk".into(),
            description: String::new(),
            priority: 50,
        })
        .await
        .unwrap()
        .into_inner();
    admin_policy
        .grant_permission(pol::GroupPermissionRequest {
            group_id: helpdesk.id.clone(),
            permission: "users.view".into(),
        })
        .await
        .unwrap();
    admin_policy
        .add_group_member(pol::GroupMemberRequest {
            group_id: helpdesk.id.clone(),
            user_id: alice.id.clone(),
        })
        .await
        .unwrap();
    let allowed = eventually(Duration::from_secs(5), || {
        let mut c = alice_identity.clone();
        async move { c.list_users(id::ListUsersRequest::default()).await.is_ok() }
    })
    .await;
    assert!(allowed, "granting users.view did not take effect");

    // Policy accepts identity's tokens for alice's own policy, and refuses others'.
    let mut alice_policy = sandbox
        .policy_as(&Credential::Bearer(alice_token.clone()))
        .await
        .unwrap();
    let own = alice_policy
        .resolve_effective_policy(pol::ResolveEffectivePolicyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.user_id, alice.id);
    let other = alice_policy
        .resolve_effective_policy(pol::ResolveEffectivePolicyRequest {
            user_id: admin_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);

    // After a key rotation, policy learns the new key when a token names it.
    admin_identity
        .rotate_signing_key(id::RotateSigningKeyRequest {})
        .await
        .unwrap();
    let fresh = login(&sandbox, "alice", "alice-password").await;
    let mut fresh_policy = sandbox.policy_as(&Credential::Bearer(fresh)).await.unwrap();
    fresh_policy
        .resolve_effective_policy(pol::ResolveEffectivePolicyRequest::default())
        .await
        .unwrap();

    // API keys work on policy too, resolved by identity.
    let key = admin_identity
        .create_api_key(id::CreateApiKeyRequest {
            name: "ops".into(),
            permissions: vec!["groups.view".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let key_id = key.api_key.unwrap().id;
    let mut key_policy = sandbox
        .policy_as(&Credential::ApiKey {
            id: key_id.clone(),
            secret: key.secret.clone(),
        })
        .await
        .unwrap();
    let groups = key_policy
        .list_groups(pol::ListGroupsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(groups.groups.iter().any(|g| g.name == "Helpdesk"));
    let refused = key_policy
        .create_group(pol::CreateGroupRequest {
            name: "Nope".into(),
            description: String::new(),
            priority: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut bad_key = sandbox
        .policy_as(&Credential::ApiKey {
            id: key_id,
            secret: "wrong".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        bad_key
            .list_groups(pol::ListGroupsRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Deleting alice in identity removes her memberships in policy.
    admin_identity
        .delete_user(id::DeleteUserRequest {
            user_id: alice.id.clone(),
        })
        .await
        .unwrap();
    let gone = eventually(Duration::from_secs(10), || {
        let mut p = admin_policy.clone();
        let helpdesk_id = helpdesk.id.clone();
        async move {
            let members = p
                .list_group_members(pol::ListGroupMembersRequest {
                    group_id: helpdesk_id,
                    page: None,
                })
                .await;
            members.is_ok_and(|m| m.into_inner().members.is_empty())
        }
    })
    .await;
    assert!(gone, "alice's memberships outlived her");
}

/// Locking, disabling, a new password and logging out everywhere end a user's access at policy
/// too — which verifies tokens on its own — within seconds, through identity's revocation feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_policy_within_seconds() {
    let sandbox = sandbox().await;
    let admin_token = login(&sandbox, "admin", ADMIN_PASSWORD).await;
    let mut admin = sandbox
        .identity_as(&Credential::Bearer(admin_token))
        .await
        .unwrap();
    let bob = admin
        .create_user(id::CreateUserRequest {
            username: "bob".into(),
            password: "bob-password-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    type Revoke = fn(String) -> id::UpdateUserRequest;
    let changes: [(&str, Revoke); 2] = [
        ("lock", |user_id| id::UpdateUserRequest {
            user_id,
            locked: Some(true),
            ..Default::default()
        }),
        ("disable", |user_id| id::UpdateUserRequest {
            user_id,
            disabled: Some(true),
            ..Default::default()
        }),
    ];
    for (what, change) in changes {
        let token = login(&sandbox, "bob", "bob-password-1").await;
        let mut bob_policy = sandbox.policy_as(&Credential::Bearer(token)).await.unwrap();
        bob_policy
            .resolve_effective_policy(pol::ResolveEffectivePolicyRequest::default())
            .await
            .unwrap_or_else(|s| panic!("bob's fresh token works at policy: {s}"));
        let start = Instant::now();
        admin.update_user(change(bob.id.clone())).await.unwrap();
        let refused = eventually(Duration::from_secs(5), || {
            let mut p = bob_policy.clone();
            async move {
                p.resolve_effective_policy(pol::ResolveEffectivePolicyRequest::default())
                    .await
                    .is_err_and(|s| s.code() == tonic::Code::Unauthenticated)
            }
        })
        .await;
        assert!(
            refused,
            "after {what}, policy still took bob's token after 5 s"
        );
        println!("{what}: refused at policy after {:?}", start.elapsed());
        // Undo, so the next round can log in again.
        admin
            .update_user(id::UpdateUserRequest {
                user_id: bob.id.clone(),
                locked: Some(false),
                disabled: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

/// Whether a login needs a second factor is the server's decision: a member of a group that
/// sets `require_2fa` is sent to enrolment by a plain login that asks for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_2fa_from_policy_sends_a_plain_login_to_enrolment() {
    let sandbox = sandbox().await;
    let admin_token = login(&sandbox, "admin", ADMIN_PASSWORD).await;
    let mut admin = sandbox
        .identity_as(&Credential::Bearer(admin_token.clone()))
        .await
        .unwrap();
    let mut admin_policy = sandbox
        .policy_as(&Credential::Bearer(admin_token))
        .await
        .unwrap();
    let dana = admin
        .create_user(id::CreateUserRequest {
            username: "dana".into(),
            password: "dana-password-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let plain = || id::LoginRequest {
        username: "dana".into(),
        password: "dana-password-1".into(),
        ..Default::default()
    };
    let before = sandbox
        .identity_anonymous()
        .await
        .unwrap()
        .login(plain())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.status(), id::LoginStatus::Success);

    let group = admin_policy
        .create_group(pol::CreateGroupRequest {
            name: "Strict".into(),
            description: String::new(),
            priority: 50,
        })
        .await
        .unwrap()
        .into_inner();
    admin_policy
        .set_group_setting(pol::SetGroupSettingRequest {
            group_id: group.id.clone(),
            name: "require_2fa".into(),
            value: None,
            raw_value: "true".into(),
        })
        .await
        .unwrap();
    admin_policy
        .add_group_member(pol::GroupMemberRequest {
            group_id: group.id,
            user_id: dana.id.clone(),
        })
        .await
        .unwrap();
    // Identity reuses permissions for up to permissions_cache_ttl_ms (500 ms here).
    let sent = eventually(Duration::from_secs(5), || async {
        let answer = sandbox
            .identity_anonymous()
            .await
            .unwrap()
            .login(plain())
            .await;
        answer.is_ok_and(|r| r.into_inner().status() == id::LoginStatus::TotpEnrollmentRequired)
    })
    .await;
    assert!(sent, "dana was not sent to 2FA enrolment");
}
