//! Reusable attacks for the delegation tests: every identity RPC that changes a user's rights or
//! credentials, tried by one client against one target, each outcome kept.

use atrium_service_kit::auth::permissions;
use tonic::Status;

use crate::common::{Client, NEW_PASSWORD, pb, update};
use crate::profile::keypair;

/// The permissions a non-administrator can be delegated that matter for identity.
pub const DELEGABLE: [&str; 5] = [
    permissions::USERS_MODIFY,
    permissions::USERS_DELETE,
    permissions::USERS_CREATE,
    permissions::API_KEYS_MANAGE,
    permissions::USERS_AUTH_SESSION,
];

/// One attempt and how it ended.
pub struct Attempt {
    pub what: &'static str,
    pub outcome: Result<(), Status>,
}

fn done<T>(what: &'static str, result: Result<tonic::Response<T>, Status>) -> Attempt {
    Attempt {
        what,
        outcome: result.map(|_| ()),
    }
}

/// Every call that would change `target`'s credentials, state or rights.
pub async fn against_user(client: &Client, target: &str) -> Vec<Attempt> {
    let mut c = client.clone();
    let mut out = Vec::new();
    let t = || target.to_owned();
    out.push(done(
        "SetPassword",
        c.set_password(pb::SetPasswordRequest {
            user_id: t(),
            new_password: NEW_PASSWORD.into(),
            force_password_reset: false,
        })
        .await,
    ));
    out.push(done(
        "ResetTwoFactor",
        c.reset_two_factor(pb::ResetTwoFactorRequest { user_id: t() })
            .await,
    ));
    let updates: [(&'static str, pb::UpdateUserRequest); 6] = [
        (
            "UpdateUser locked",
            pb::UpdateUserRequest {
                locked: Some(true),
                ..update(target)
            },
        ),
        (
            "UpdateUser disabled",
            pb::UpdateUserRequest {
                disabled: Some(true),
                ..update(target)
            },
        ),
        (
            "UpdateUser realm",
            pb::UpdateUserRequest {
                realm: Some(pb::Realm::Oidc as i32),
                ..update(target)
            },
        ),
        (
            "UpdateUser notes",
            pb::UpdateUserRequest {
                notes: Some("mine now".into()),
                ..update(target)
            },
        ),
        (
            "UpdateUser email",
            pb::UpdateUserRequest {
                email: Some("attacker@example.com".into()),
                ..update(target)
            },
        ),
        (
            "UpdateUser force_password_reset",
            pb::UpdateUserRequest {
                force_password_reset: Some(true),
                ..update(target)
            },
        ),
    ];
    for (what, request) in updates {
        out.push(done(what, c.update_user(request).await));
    }
    let (public_key, private_key) = keypair(77, "attacker@example.com");
    out.push(done(
        "SetSshKey",
        c.set_ssh_key(pb::SetSshKeyRequest {
            user_id: t(),
            public_key,
            private_key,
        })
        .await,
    ));
    out.push(done(
        "GenerateSshKey",
        c.generate_ssh_key(pb::GenerateSshKeyRequest { user_id: t() })
            .await,
    ));
    out.push(done(
        "GetSshKey private",
        c.get_ssh_key(pb::GetSshKeyRequest {
            user_id: t(),
            include_private_key: true,
        })
        .await,
    ));
    out.push(done(
        "UpdateUserSettings",
        c.update_user_settings(pb::UpdateUserSettingsRequest {
            user_id: t(),
            auto_launch_session: Some(true),
            ..Default::default()
        })
        .await,
    ));
    out.push(done(
        "LogoutEverywhere",
        c.logout_everywhere(pb::LogoutEverywhereRequest { user_id: t() })
            .await,
    ));
    out.push(done(
        "DeleteUser",
        c.delete_user(pb::DeleteUserRequest { user_id: t() }).await,
    ));
    out
}

/// Asserts that every attempt was refused with PermissionDenied (or NotFound, for a private
/// SSH key the target never had, which is no gain either).
#[track_caller]
pub fn all_refused(label: &str, attempts: &[Attempt]) {
    for attempt in attempts {
        match &attempt.outcome {
            Ok(()) => panic!("{label}: {} succeeded", attempt.what),
            Err(status) => assert!(
                status.code() == tonic::Code::PermissionDenied
                    || (attempt.what == "GetSshKey private"
                        && status.code() == tonic::Code::NotFound),
                "{label}: {} answered {:?}: {}",
                attempt.what,
                status.code(),
                status.message()
            ),
        }
    }
}

/// A key request for `permissions`.
pub fn key(name: &str, permissions: &[&str]) -> pb::CreateApiKeyRequest {
    crate::api_keys::key_request(name, false, permissions)
}
