//! API keys: creation and validation, use as a credential, revocation, expiry, and
//! AuthenticateApiKey for services.

use std::time::Duration;

use atrium_service_kit::auth::Credential;

use crate::common::{Backend, Code, Env, Outcome, PASSWORD, both_backends, by_id, pb};

both_backends!(
    keys_authenticate_with_their_permissions,
    invalid_permissions_are_refused,
    revoked_keys_stop_working,
    expired_keys_are_refused,
    authenticate_api_key_is_for_services,
);

pub(crate) fn key_request(
    name: &str,
    read_only: bool,
    permissions: &[&str],
) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        name: name.into(),
        read_only,
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        expires_at: None,
    }
}

pub(crate) fn credential(created: &pb::CreateApiKeyResponse) -> Credential {
    Credential::ApiKey {
        id: created.api_key.as_ref().expect("api_key").id.clone(),
        secret: created.secret.clone(),
    }
}

async fn keys_authenticate_with_their_permissions(backend: Backend) {
    let env = Env::start(backend).await;
    let admin_id = env.admin_id().await;
    let bob = env.create_sso_user("bob", "").await;
    let created = env
        .admin()
        .create_api_key(key_request("viewer", false, &["users.view", " users.view"]))
        .await
        .must();
    let key = created.api_key.clone().expect("api_key");
    assert!(key.id.starts_with("ak_"), "{}", key.id);
    assert_eq!(key.name, "viewer");
    assert!(!key.read_only && !key.revoked);
    assert_eq!(key.permissions, ["users.view"]);
    assert_eq!(key.created_by, format!("user:{admin_id}"));
    assert!(key.expires_at.is_none() && key.last_used_at.is_none());
    assert!(created.secret.len() >= 32, "{}", created.secret);
    // Only a hash of the secret is stored.
    let stored = env.sql("SELECT secret_hash FROM api_keys").await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].as_deref(), Some(created.secret.as_str()));

    let client = env.client(credential(&created)).await;
    let whoami = client.clone().who_am_i(pb::WhoAmIRequest {}).await.must();
    assert_eq!(whoami.kind, "api_key");
    assert_eq!(whoami.api_key_id, key.id);
    assert_eq!(whoami.permissions, ["users.view"]);
    assert!(!whoami.is_admin);
    let listed = client
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .must();
    assert_eq!(listed.users.len(), 2);
    assert_eq!(client.clone().get_user(by_id(&bob.id)).await.must(), bob);

    // Beyond its permissions: refused, and nothing written.
    client
        .clone()
        .create_user(pb::CreateUserRequest {
            username: "mallory".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .delete_user(pb::DeleteUserRequest {
            user_id: bob.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .create_api_key(key_request("escalate", false, &["users.create"]))
        .await
        .fails(Code::PermissionDenied);
    assert_eq!(env.all_users().await.len(), 2);

    // A wrong secret is no key at all.
    let wrong = env
        .client(Credential::ApiKey {
            id: key.id.clone(),
            secret: "not-the-secret".into(),
        })
        .await;
    wrong
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .fails(Code::Unauthenticated);

    // Listing shows the key (never its secret) and when it was used.
    let keys = env
        .admin()
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .must()
        .api_keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, key.id);
    assert!(keys[0].last_used_at.is_some());
    assert_eq!(
        pb::ApiKey {
            last_used_at: None,
            ..keys[0].clone()
        },
        key
    );

    // A key with more permissions does more.
    let creator = env
        .admin()
        .create_api_key(key_request(
            "creator",
            false,
            &["users.create", "users.view"],
        ))
        .await
        .must();
    let made = env
        .client(credential(&creator))
        .await
        .create_user(pb::CreateUserRequest {
            username: "made-by-key".into(),
            realm: pb::Realm::Saml as i32,
            ..Default::default()
        })
        .await
        .must();
    let events = env
        .audit(pb::ListAuditEventsRequest {
            user_id: made.id.clone(),
            kind: "user.create".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        events[0].actor,
        format!("api_key:{}", creator.api_key.expect("key").id)
    );
}

async fn invalid_permissions_are_refused(backend: Backend) {
    let env = Env::start(backend).await;
    let cases = [
        ("permissions[0]", key_request("ro", true, &["users.modify"])),
        (
            "permissions[1]",
            key_request("ro", true, &["users.view", "users.delete"]),
        ),
        ("permissions[0]", key_request("x", false, &["users.fly"])),
        (
            "permissions[1]",
            key_request("x", false, &["audit.view", ""]),
        ),
        ("name", key_request("", false, &["users.view"])),
        (
            "name",
            key_request(&"n".repeat(129), false, &["users.view"]),
        ),
        (
            "expires_at",
            pb::CreateApiKeyRequest {
                expires_at: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() - 60,
                    nanos: 0,
                }),
                ..key_request("past", false, &["users.view"])
            },
        ),
    ];
    for (field, request) in cases {
        env.admin().create_api_key(request).await.invalid(field);
    }
    let listed = env
        .admin()
        .list_api_keys(pb::ListApiKeysRequest {
            include_revoked: true,
            ..Default::default()
        })
        .await
        .must();
    assert!(listed.api_keys.is_empty(), "{listed:?}");

    // A read-only key with view permissions works, and stays read-only.
    let ro = env
        .admin()
        .create_api_key(key_request("ro", true, &["users.view", "audit.view"]))
        .await
        .must();
    assert!(ro.api_key.as_ref().expect("key").read_only);
    let client = env.client(credential(&ro)).await;
    client
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .must();
    let events = client
        .clone()
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .must();
    assert!(!events.events.is_empty());
    // Private SSH keys need a modify permission, which a read-only key cannot hold.
    let bob = env.create_sso_user("bob", "").await;
    env.admin()
        .generate_ssh_key(pb::GenerateSshKeyRequest {
            user_id: bob.id.clone(),
        })
        .await
        .must();
    let public = client
        .clone()
        .get_ssh_key(pb::GetSshKeyRequest {
            user_id: bob.id.clone(),
            include_private_key: false,
        })
        .await
        .must();
    assert!(public.private_key.is_empty());
    client
        .clone()
        .get_ssh_key(pb::GetSshKeyRequest {
            user_id: bob.id.clone(),
            include_private_key: true,
        })
        .await
        .fails(Code::PermissionDenied);
}

async fn revoked_keys_stop_working(backend: Backend) {
    let env = Env::start(backend).await;
    let created = env
        .admin()
        .create_api_key(key_request("temp", false, &["users.view"]))
        .await
        .must();
    let id = created.api_key.clone().expect("key").id;
    let client = env.client(credential(&created)).await;
    client
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .must();

    let revoked = env
        .admin()
        .revoke_api_key(pb::RevokeApiKeyRequest { id: id.clone() })
        .await
        .must();
    assert!(revoked.revoked);
    assert_eq!(revoked.id, id);
    let status = client
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .fails(Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{status:?}");
    client
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .fails(Code::Unauthenticated);
    // Revoking again is harmless; unknown keys are not found.
    assert!(
        env.admin()
            .revoke_api_key(pb::RevokeApiKeyRequest { id: id.clone() })
            .await
            .must()
            .revoked
    );
    env.admin()
        .revoke_api_key(pb::RevokeApiKeyRequest {
            id: "ak_unknown".into(),
        })
        .await
        .fails(Code::NotFound);
    env.admin()
        .revoke_api_key(pb::RevokeApiKeyRequest { id: String::new() })
        .await
        .invalid("id");

    let live = env
        .admin()
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .must();
    assert!(live.api_keys.is_empty());
    let all = env
        .admin()
        .list_api_keys(pb::ListApiKeysRequest {
            include_revoked: true,
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(all.api_keys.len(), 1);
    assert!(all.api_keys[0].revoked);
    assert_eq!(env.audit_kind("api_key.revoke").await.len(), 1);
}

async fn expired_keys_are_refused(backend: Backend) {
    let env = Env::start(backend).await;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(2);
    let created = env
        .admin()
        .create_api_key(pb::CreateApiKeyRequest {
            expires_at: Some(prost_types::Timestamp {
                seconds: expires.timestamp(),
                nanos: i32::try_from(expires.timestamp_subsec_nanos()).expect("nanos"),
            }),
            ..key_request("short-lived", false, &["users.view"])
        })
        .await
        .must();
    // Answered at microsecond precision, as every timestamp is.
    assert_eq!(
        created.api_key.as_ref().expect("key").expires_at,
        Some(prost_types::Timestamp {
            seconds: expires.timestamp(),
            nanos: i32::try_from(expires.timestamp_subsec_micros() * 1000).expect("nanos")
        })
    );
    let client = env.client(credential(&created)).await;
    client
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .must();
    let left = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(200)).await;
    let status = client
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .fails(Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{status:?}");
}

async fn authenticate_api_key_is_for_services(backend: Backend) {
    let env = Env::start(backend).await;
    let created = env
        .admin()
        .create_api_key(key_request("svc", true, &["users.view"]))
        .await
        .must();
    let key = created.api_key.clone().expect("key");
    let request = |secret: &str| pb::AuthenticateApiKeyRequest {
        id: key.id.clone(),
        secret: secret.into(),
    };

    let resolved = env
        .service()
        .await
        .authenticate_api_key(request(&created.secret))
        .await
        .must();
    assert_eq!(resolved.id, key.id);
    assert_eq!(resolved.permissions, ["users.view"]);
    assert!(resolved.read_only);
    env.service()
        .await
        .authenticate_api_key(request("wrong"))
        .await
        .fails(Code::Unauthenticated);
    env.service()
        .await
        .authenticate_api_key(pb::AuthenticateApiKeyRequest {
            id: String::new(),
            secret: "x".into(),
        })
        .await
        .invalid("id");
    // Not for users, admins or keys.
    env.admin()
        .authenticate_api_key(request(&created.secret))
        .await
        .fails(Code::PermissionDenied);
    env.client(credential(&created))
        .await
        .authenticate_api_key(request(&created.secret))
        .await
        .fails(Code::PermissionDenied);
    let failures = env.audit_kind("api_key.failure").await;
    assert_eq!(failures.len(), 1);
    assert!(failures[0].detail.contains(&key.id));

    env.admin()
        .revoke_api_key(pb::RevokeApiKeyRequest { id: key.id.clone() })
        .await
        .must();
    env.service()
        .await
        .authenticate_api_key(request(&created.secret))
        .await
        .fails(Code::Unauthenticated);
}
