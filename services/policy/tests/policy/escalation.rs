//! Delegation never escalates: a principal holding exactly one delegated permission tries every
//! path policy offers to more rights (joining groups, granting, setting administrator, SSO
//! mappings, groups it creates) and ends with what it started with.

use proptest::prelude::*;

use crate::common::{
    ADMINISTRATORS_ID, Backend, Client, Code, Env, Kind, Outcome, both_backends, member, pb,
    permission_request,
};

both_backends!(
    sso_mappings_confer_only_what_the_caller_holds,
    groups_that_set_administrator_are_changed_only_by_administrators,
    one_delegated_permission_never_leads_to_more,
);

/// The delegated permissions a principal may hold alone.
pub const DELEGATED: [&str; 8] = [
    "groups.modify",
    "groups.create",
    "groups.delete",
    "settings.modify",
    "workspaces.modify",
    "workspaces.create",
    "sso.modify",
    "file_mappings.modify",
];

/// A user who holds exactly `permission` (through a group of their own), and a group that
/// grants more than that (`api_keys.manage`).
pub struct Attacker {
    pub id: String,
    pub client: Client,
    pub own_group: String,
    pub richer_group: String,
}

pub async fn attacker(env: &Env, permission: &str) -> Attacker {
    let (id, client) = env.user().await;
    let suffix = &id[id.len() - 12..];
    let own = env.group(&format!("Holders {suffix}"), 500).await;
    env.grant(&own.id, permission).await;
    env.add_member(&own.id, &id).await;
    let richer = env.group(&format!("Richer {suffix}"), 600).await;
    env.grant(&richer.id, "api_keys.manage").await;
    Attacker {
        id,
        client,
        own_group: own.id,
        richer_group: richer.id,
    }
}

pub async fn rights(client: &Client) -> (bool, Vec<String>) {
    let p = client
        .clone()
        .get_effective_permissions(pb::GetEffectivePermissionsRequest::default())
        .await
        .must();
    (p.administrator, p.permissions)
}

fn raw_setting(group_id: &str, name: &str, raw: &str) -> pb::SetGroupSettingRequest {
    pb::SetGroupSettingRequest {
        group_id: group_id.into(),
        name: name.into(),
        value: None,
        raw_value: raw.into(),
    }
}

fn sso(group_id: &str) -> pb::SsoGroupMapping {
    pb::SsoGroupMapping {
        group_id: group_id.into(),
        provider_id: "corp".into(),
        provider_type: "oidc".into(),
        assign_all_users: true,
        ..Default::default()
    }
}

/// One attempt at more rights. Each ends in a call that must be refused.
#[derive(Debug, Clone, Copy)]
pub enum Attack {
    JoinAdministrators,
    JoinRicherGroup,
    GrantOwnGroupMore,
    SetAdministratorOnOwnGroup,
    MapSsoToAdministrators,
    MapSsoToRicherGroup,
    NewGroupWithAdministratorThenJoin,
    NewGroupWithGrantThenJoin,
    ApplySsoLoginByHand,
    UnsetAdministratorOfAdministrators,
    RenameAdministrators,
}

pub const ATTACKS: [Attack; 11] = [
    Attack::JoinAdministrators,
    Attack::JoinRicherGroup,
    Attack::GrantOwnGroupMore,
    Attack::SetAdministratorOnOwnGroup,
    Attack::MapSsoToAdministrators,
    Attack::MapSsoToRicherGroup,
    Attack::NewGroupWithAdministratorThenJoin,
    Attack::NewGroupWithGrantThenJoin,
    Attack::ApplySsoLoginByHand,
    Attack::UnsetAdministratorOfAdministrators,
    Attack::RenameAdministrators,
];

/// Runs `attack`; returns the refusal of the call that would have escalated (`Ok` if it went
/// through, which is a failure of the rule).
pub async fn run(a: &Attacker, attack: Attack) -> Result<(), tonic::Status> {
    let mut c = a.client.clone();
    let me = a.id.as_str();
    match attack {
        Attack::JoinAdministrators => c
            .add_group_member(member(ADMINISTRATORS_ID, me))
            .await
            .map(drop),
        Attack::JoinRicherGroup => c
            .add_group_member(member(&a.richer_group, me))
            .await
            .map(drop),
        Attack::GrantOwnGroupMore => c
            .grant_permission(permission_request(&a.own_group, "api_keys.manage"))
            .await
            .map(drop),
        Attack::SetAdministratorOnOwnGroup => c
            .set_group_setting(raw_setting(&a.own_group, "administrator", "true"))
            .await
            .map(drop),
        Attack::MapSsoToAdministrators => c
            .create_sso_group_mapping(sso(ADMINISTRATORS_ID))
            .await
            .map(drop),
        Attack::MapSsoToRicherGroup => c
            .create_sso_group_mapping(sso(&a.richer_group))
            .await
            .map(drop),
        Attack::NewGroupWithAdministratorThenJoin | Attack::NewGroupWithGrantThenJoin => {
            let name = format!("Mine {}", uuid::Uuid::now_v7().simple());
            let group_id = match c
                .create_group(pb::CreateGroupRequest {
                    name,
                    description: String::new(),
                    priority: 1,
                })
                .await
            {
                Ok(g) => g.into_inner().id,
                // Without groups.create, aim at the own group instead.
                Err(_) => a.own_group.clone(),
            };
            // The escalating step is giving the group more; joining it afterwards is only
            // harmful if that went through.
            let escalation = match attack {
                Attack::NewGroupWithAdministratorThenJoin => c
                    .set_group_setting(raw_setting(&group_id, "administrator", "true"))
                    .await
                    .map(drop),
                _ => c
                    .grant_permission(permission_request(&group_id, "users.delete"))
                    .await
                    .map(drop),
            };
            let _ = c.add_group_member(member(&group_id, me)).await;
            escalation
        }
        Attack::ApplySsoLoginByHand => c
            .apply_sso_login(pb::ApplySsoLoginRequest {
                user_id: me.into(),
                provider_id: "corp".into(),
                attributes: vec![],
            })
            .await
            .map(drop),
        Attack::UnsetAdministratorOfAdministrators => c
            .unset_group_setting(pb::UnsetGroupSettingRequest {
                group_id: ADMINISTRATORS_ID.into(),
                name: "administrator".into(),
            })
            .await
            .map(drop),
        Attack::RenameAdministrators => c
            .update_group(pb::UpdateGroupRequest {
                group_id: ADMINISTRATORS_ID.into(),
                priority: Some(999_999),
                ..Default::default()
            })
            .await
            .map(drop),
    }
}

/// Whatever single permission it holds, every attack is refused and the attacker ends with
/// what it started with (and the administrator stays one).
async fn one_delegated_permission_never_leads_to_more(backend: Backend) {
    let env = Env::start(backend).await;
    for permission in DELEGATED {
        let a = attacker(&env, permission).await;
        let before = rights(&a.client).await;
        for attack in ATTACKS {
            let outcome = run(&a, attack).await;
            assert!(outcome.is_err(), "{permission}: {attack:?} went through");
        }
        assert_eq!(rights(&a.client).await, before, "{permission}");
        assert!(
            rights(&env.admin()).await.0,
            "{permission}: the administrator was demoted"
        );
    }
}

/// CreateSsoGroupMapping confers the group's rights at every login: the caller must hold
/// every permission the group grants, as for AddGroupMember.
async fn sso_mappings_confer_only_what_the_caller_holds(backend: Backend) {
    let env = Env::start(backend).await;
    let a = attacker(&env, "sso.modify").await;
    let status = a
        .client
        .clone()
        .create_sso_group_mapping(sso(&a.richer_group))
        .await
        .fails(Code::PermissionDenied);
    assert!(status.message().contains("api_keys.manage"), "{status:?}");
    // A group granting only what the caller holds may be mapped.
    let plain = env.group("Plain", 700).await;
    env.grant(&plain.id, "sso.modify").await;
    a.client
        .clone()
        .create_sso_group_mapping(sso(&plain.id))
        .await
        .must();
    env.admin()
        .create_sso_group_mapping(sso(&a.richer_group))
        .await
        .must();
}

/// A group that sets administrator (true or false: a strong `false` takes it away) is
/// renamed, re-prioritised, deleted or re-membered only by an administrator.
async fn groups_that_set_administrator_are_changed_only_by_administrators(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let ops = env.group("Ops", 10).await;
    for p in ["groups.modify", "groups.delete"] {
        env.grant(&ops.id, p).await;
    }
    env.add_member(&ops.id, &user).await;
    let admins2 = env.group("Second admins", 5).await;
    env.set(&admins2.id, "administrator", Kind::BoolValue(true))
        .await;
    let deny = env.group("No admins", 2).await;
    env.set(&deny.id, "administrator", Kind::BoolValue(false))
        .await;
    let mut c = client.clone();
    for group in [&admins2.id, &deny.id] {
        c.update_group(pb::UpdateGroupRequest {
            group_id: group.clone(),
            priority: Some(900),
            ..Default::default()
        })
        .await
        .fails(Code::PermissionDenied);
        c.delete_group(pb::DeleteGroupRequest {
            group_id: group.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
        c.remove_group_member(member(group, &env.admin_id))
            .await
            .fails(Code::PermissionDenied);
    }
    // Other groups stay delegable.
    let plain = env.group("Plain", 50).await;
    c.update_group(pb::UpdateGroupRequest {
        group_id: plain.id.clone(),
        priority: Some(60),
        ..Default::default()
    })
    .await
    .must();
    c.delete_group(pb::DeleteGroupRequest { group_id: plain.id })
        .await
        .must();
    // An administrator may.
    env.admin()
        .delete_group(pb::DeleteGroupRequest { group_id: deny.id })
        .await
        .must();
}

/// Short random sequences of attacks, by a principal holding one random delegated permission,
/// never end with it holding more than it started with.
#[test]
fn random_attack_sequences_never_escalate() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let env = rt.block_on(Env::start(Backend::Sqlite));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop::sample::select(DELEGATED.to_vec()),
        prop::collection::vec(prop::sample::select(ATTACKS.to_vec()), 1..6),
    );
    runner
        .run(&strategy, |(permission, attacks)| {
            rt.block_on(async {
                let a = attacker(&env, permission).await;
                let before = rights(&a.client).await;
                for attack in &attacks {
                    let _ = run(&a, *attack).await;
                }
                prop_assert_eq!(rights(&a.client).await, before);
                prop_assert!(rights(&env.admin()).await.0);
                Ok(())
            })
        })
        .expect("no sequence escalates");
}
