//! Delegation never escalates (issue 8): a principal holding exactly one delegated permission
//! tries every identity RPC that changes rights or credentials against an administrator and
//! against a user with more rights than it, and mints API keys; all of it is refused, and no
//! sequence of such calls leaves it (or a key it controls) holding more than it had.

use std::collections::BTreeSet;

use atrium_service_kit::auth::{Rights, permissions};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::attacks::{DELEGABLE, against_user, all_refused, key};
use crate::common::{
    Backend, Client, Code, Env, Outcome, PASSWORD, admin_password, both_backends, pb, update,
};

both_backends!(
    one_delegated_permission_never_reaches_more,
    sequences_of_calls_never_escalate,
    acting_on_a_user_needs_a_superset_of_their_rights,
    the_last_administrator_stays,
);

/// Rights of a user richer than any single-permission principal.
fn richer(perm: &str) -> Vec<&str> {
    vec![perm, permissions::USERS_VIEW, permissions::GROUPS_MODIFY]
}

/// The API key permissions `client` (a key) acts with, by WhoAmI.
async fn key_permissions(client: &Client) -> BTreeSet<String> {
    client
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .must()
        .permissions
        .into_iter()
        .collect()
}

async fn one_delegated_permission_never_reaches_more(backend: Backend) {
    let env = Env::start_with_policy(backend, |_| {}).await;
    let admin_id = env.admin_id().await;
    for (i, perm) in DELEGABLE.iter().enumerate() {
        let (_, attacker) = env.principal(&format!("attacker{i}"), &[perm]).await;
        let (rich, _) = env.principal(&format!("rich{i}"), &richer(perm)).await;
        for (label, target) in [("admin", &admin_id), ("richer user", &rich.id)] {
            let attempts = against_user(&attacker, target).await;
            all_refused(&format!("{perm} against {label}"), &attempts);
        }
        // Keys: never more than held, never administrator-wide.
        let mut attacker_key = attacker.clone();
        for wanted in [
            vec![*perm, permissions::USERS_VIEW],
            permissions::all().collect::<Vec<_>>(),
            vec![permissions::SIGNING_KEYS_MANAGE],
        ] {
            attacker_key
                .create_api_key(key("escalate", &wanted))
                .await
                .fails(Code::PermissionDenied);
        }
        let own = attacker.clone().create_api_key(key("own", &[perm])).await;
        if *perm == permissions::API_KEYS_MANAGE {
            // A key with what the caller holds is fine, and acts with no more.
            let created = own.must();
            let via_key = env.client(crate::api_keys::credential(&created)).await;
            assert_eq!(
                key_permissions(&via_key).await,
                BTreeSet::from([perm.to_string()])
            );
            via_key
                .clone()
                .create_api_key(key("from a key", &[perm, permissions::USERS_MODIFY]))
                .await
                .fails(Code::PermissionDenied);
            all_refused(
                &format!("key with {perm} against admin"),
                &against_user(&via_key, &admin_id).await,
            );
        } else {
            own.fails(Code::PermissionDenied);
        }
    }
    // Nothing changed: the administrator still signs in with their password.
    env.login_ok("admin", admin_password()).await;
    let admin = env.get_user(&admin_id).await;
    assert!(!admin.locked && !admin.disabled);
}

async fn acting_on_a_user_needs_a_superset_of_their_rights(backend: Backend) {
    let env = Env::start_with_policy(backend, |_| {}).await;
    let (_, manager) = env
        .principal(
            "manager",
            &[permissions::USERS_MODIFY, permissions::USERS_VIEW],
        )
        .await;
    let (plain, _) = env.principal("plain", &[permissions::USERS_VIEW]).await;
    // A subset: allowed.
    manager
        .clone()
        .set_password(pb::SetPasswordRequest {
            user_id: plain.id.clone(),
            new_password: crate::common::NEW_PASSWORD.into(),
            force_password_reset: false,
        })
        .await
        .must();
    manager
        .clone()
        .update_user(pb::UpdateUserRequest {
            locked: Some(true),
            ..update(&plain.id)
        })
        .await
        .must();
    // Once the target gains a permission the manager lacks, the same call is refused.
    env.grant(
        &plain.id,
        &[permissions::USERS_VIEW, permissions::AUDIT_VIEW],
    );
    let status = manager
        .clone()
        .update_user(pb::UpdateUserRequest {
            locked: Some(false),
            ..update(&plain.id)
        })
        .await
        .fails(Code::PermissionDenied);
    assert!(
        status.message().contains("audit.view"),
        "{}",
        status.message()
    );
    // An API key's owner bounds it: when the owner loses a permission, so does the key; when
    // the owner is locked, the key stops.
    let (owner, owner_client) = env
        .principal(
            "keyowner",
            &[permissions::API_KEYS_MANAGE, permissions::USERS_VIEW],
        )
        .await;
    let created = owner_client
        .clone()
        .create_api_key(key(
            "k",
            &[permissions::API_KEYS_MANAGE, permissions::USERS_VIEW],
        ))
        .await
        .must();
    assert_eq!(
        created.api_key.as_ref().map(|k| k.owner_user_id.as_str()),
        Some(owner.id.as_str())
    );
    let via_key = env.client(crate::api_keys::credential(&created)).await;
    env.grant(&owner.id, &[permissions::USERS_VIEW]);
    assert_eq!(
        key_permissions(&via_key).await,
        BTreeSet::from([permissions::USERS_VIEW.to_string()])
    );
    let service_view = env
        .service()
        .await
        .authenticate_api_key(pb::AuthenticateApiKeyRequest {
            id: created
                .api_key
                .as_ref()
                .map(|k| k.id.clone())
                .unwrap_or_default(),
            secret: created.secret.clone(),
        })
        .await
        .must();
    assert_eq!(
        service_view.permissions,
        vec![permissions::USERS_VIEW.to_string()]
    );
    env.grant(&owner.id, &[]);
    via_key
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .fails(Code::Unauthenticated);
    env.grant(&owner.id, &[permissions::USERS_VIEW]);
    env.admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(true),
            ..update(&owner.id)
        })
        .await
        .must();
    let status = via_key
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .fails(Code::Unauthenticated);
    assert!(status.message().contains("owner"), "{}", status.message());
}

async fn the_last_administrator_stays(backend: Backend) {
    let env = Env::start_with_policy(backend, |_| {}).await;
    let admin_id = env.admin_id().await;
    let (second, second_client) = env.principal("second", &[]).await;
    env.policy().set_rights(&second.id, Rights::all());
    let lock = |id: &str| pb::UpdateUserRequest {
        locked: Some(true),
        ..update(id)
    };
    // Two administrators lock each other at once: at most one lock lands, so one stays.
    let mut first = env.admin();
    let mut other = second_client.clone();
    let (a, b) = tokio::join!(
        first.update_user(lock(&second.id)),
        other.update_user(lock(&admin_id))
    );
    assert!(!(a.is_ok() && b.is_ok()), "both administrators were locked");
    for refused in [&a, &b].into_iter().filter_map(|r| r.as_ref().err()) {
        match refused.code() {
            Code::FailedPrecondition => assert!(
                refused.message().contains("last active administrator"),
                "{}",
                refused.message()
            ),
            // The caller's own lock landed first.
            Code::Unauthenticated => {}
            code => panic!("unexpected {code:?}: {}", refused.message()),
        }
    }
    // (Read from the database: the administrators' own sessions may have ended.)
    let active = env
        .sql(&format!(
            "SELECT id FROM users WHERE locked = false AND disabled = false \
             AND id IN ('{admin_id}', '{}')",
            second.id
        ))
        .await
        .len();
    assert!(active >= 1);
}

/// One call of a random sequence.
#[derive(Debug, Clone)]
enum Step {
    MintKey(Vec<&'static str>),
    MintKeyWithKey(Vec<&'static str>),
    Attack { admin: bool },
    CreateUser,
}

fn step() -> impl Strategy<Value = Step> {
    let perms =
        proptest::sample::subsequence(permissions::all().collect::<Vec<&'static str>>(), 0..4);
    proptest::prop_oneof![
        perms.clone().prop_map(Step::MintKey),
        perms.prop_map(Step::MintKeyWithKey),
        proptest::bool::ANY.prop_map(|admin| Step::Attack { admin }),
        proptest::strategy::Just(Step::CreateUser),
    ]
}

async fn sequences_of_calls_never_escalate(backend: Backend) {
    let env = Env::start_with_policy(backend, |_| {}).await;
    let admin_id = env.admin_id().await;
    let mut runner = TestRunner::deterministic();
    let sequences = proptest::collection::vec(step(), 1..6);
    for (case, perm) in DELEGABLE.iter().cycle().take(10).enumerate() {
        let held = BTreeSet::from([perm.to_string()]);
        let (_, attacker) = env.principal(&format!("p{case}"), &[perm]).await;
        let (rich, _) = env.principal(&format!("r{case}"), &richer(perm)).await;
        let steps = sequences
            .new_tree(&mut runner)
            .expect("a sequence")
            .current();
        let mut keys: Vec<Client> = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            match step {
                Step::MintKey(perms) | Step::MintKeyWithKey(perms) => {
                    let minter = match (step, keys.first()) {
                        (Step::MintKeyWithKey(_), Some(k)) => k.clone(),
                        _ => attacker.clone(),
                    };
                    if let Ok(created) = minter
                        .clone()
                        .create_api_key(key(&format!("k{case}-{n}"), perms))
                        .await
                    {
                        let created = created.into_inner();
                        keys.push(env.client(crate::api_keys::credential(&created)).await);
                    }
                }
                Step::Attack { admin } => {
                    let target = if *admin { &admin_id } else { &rich.id };
                    all_refused(
                        &format!("{perm} {steps:?}"),
                        &against_user(&attacker, target).await,
                    );
                    for k in &keys {
                        all_refused(&format!("key {steps:?}"), &against_user(k, target).await);
                    }
                }
                Step::CreateUser => {
                    let _ = attacker
                        .clone()
                        .create_user(pb::CreateUserRequest {
                            username: format!("made{case}-{n}"),
                            password: PASSWORD.into(),
                            ..Default::default()
                        })
                        .await;
                }
            }
        }
        // Whatever happened: the attacker holds what it held, and every key it controls
        // holds a subset of it.
        assert_eq!(
            env.policy()
                .rights(&attacker_id(&attacker).await)
                .permissions,
            held
        );
        for k in &keys {
            let perms = key_permissions(k).await;
            assert!(perms.is_subset(&held), "{steps:?}: key holds {perms:?}");
        }
        env.login_ok("admin", admin_password()).await;
        env.login_ok(&format!("r{case}"), PASSWORD).await;
    }
}

async fn attacker_id(client: &Client) -> String {
    client
        .clone()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .must()
        .user_id
}
