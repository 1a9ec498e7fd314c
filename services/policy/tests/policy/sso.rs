//! SSO group mappings and their evaluation at login: matching groups are joined, mapped groups
//! that no longer match are left, groups mapped only for other providers are untouched.

use crate::common::{
    ALL_USERS_ID, Backend, Code, Env, Kind, Outcome, both_backends, member, pb, stranger,
};

both_backends!(
    sso_logins_follow_the_mappings,
    sso_mappings_are_validated_and_listed,
);

const PROVIDER: &str = "corp-saml";
const OTHER: &str = "partner-oidc";

fn sso(group_id: &str, provider: &str, all: bool, attributes: &[&str]) -> pb::SsoGroupMapping {
    pb::SsoGroupMapping {
        id: String::new(),
        group_id: group_id.into(),
        provider_id: provider.into(),
        provider_type: "saml".into(),
        assign_all_users: all,
        group_attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn login(user_id: &str, provider: &str, attributes: &[&str]) -> pb::ApplySsoLoginRequest {
    pb::ApplySsoLoginRequest {
        user_id: user_id.into(),
        provider_id: provider.into(),
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn sso_logins_follow_the_mappings(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, _) = env.user().await;
    let devs = env.group("Devs", 10).await;
    let everyone = env.group("Everyone from SSO", 20).await;
    let partners = env.group("Partners", 30).await;
    let ops = env.group("Ops", 40).await;
    let mut admin = env.admin();
    admin
        .create_sso_group_mapping(sso(&devs.id, PROVIDER, false, &["devs"]))
        .await
        .must();
    admin
        .create_sso_group_mapping(sso(&everyone.id, PROVIDER, true, &[]))
        .await
        .must();
    admin
        .create_sso_group_mapping(sso(&partners.id, OTHER, false, &["devs"]))
        .await
        .must();
    admin
        .create_sso_group_mapping(sso(&ops.id, PROVIDER, false, &["ops"]))
        .await
        .must();
    env.set(&devs.id, "max_kasms_per_user", Kind::IntValue(9))
        .await;
    // Manual memberships: one in a group mapped only for the other provider, one in a group
    // mapped for this provider that the login will not match.
    env.add_member(&partners.id, &user).await;
    env.add_member(&ops.id, &user).await;
    assert_eq!(
        env.value(&user, "max_kasms_per_user").await,
        Some(Kind::IntValue(5))
    );

    let mut service = env.service().await;
    let first = service
        .apply_sso_login(login(&user, PROVIDER, &[" Devs ", "Unmapped"]))
        .await
        .must();
    assert_eq!(
        sorted(first.added_group_ids),
        sorted(vec![devs.id.clone(), everyone.id.clone()])
    );
    assert_eq!(first.removed_group_ids, vec![ops.id.clone()]);
    assert_eq!(
        env.user_groups(&user).await,
        vec![
            devs.id.clone(),
            everyone.id.clone(),
            partners.id.clone(),
            ALL_USERS_ID.to_owned()
        ]
    );
    let joined = env
        .admin()
        .list_group_members(pb::ListGroupMembersRequest {
            group_id: devs.id.clone(),
            page: None,
        })
        .await
        .must()
        .members;
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].source, format!("sso:{PROVIDER}"));
    // The new membership takes effect at once.
    assert_eq!(
        env.value(&user, "max_kasms_per_user").await,
        Some(Kind::IntValue(9))
    );

    // The same login again changes nothing.
    let again = service
        .apply_sso_login(login(&user, PROVIDER, &["DEVS"]))
        .await
        .must();
    assert!(again.added_group_ids.is_empty(), "{again:?}");
    assert!(again.removed_group_ids.is_empty(), "{again:?}");

    // The attribute is gone: Devs is left, the assign-all group kept.
    let second = service
        .apply_sso_login(login(&user, PROVIDER, &[]))
        .await
        .must();
    assert!(second.added_group_ids.is_empty());
    assert_eq!(second.removed_group_ids, vec![devs.id.clone()]);
    assert_eq!(
        env.user_groups(&user).await,
        vec![
            everyone.id.clone(),
            partners.id.clone(),
            ALL_USERS_ID.to_owned()
        ]
    );
    assert_eq!(
        env.value(&user, "max_kasms_per_user").await,
        Some(Kind::IntValue(5))
    );

    // A login through the other provider without the attribute leaves Partners, and only it.
    let other = service
        .apply_sso_login(login(&user, OTHER, &[]))
        .await
        .must();
    assert_eq!(other.removed_group_ids, vec![partners.id.clone()]);
    assert!(other.added_group_ids.is_empty());
    assert_eq!(
        env.user_groups(&user).await,
        vec![everyone.id.clone(), ALL_USERS_ID.to_owned()]
    );
    // A provider without mappings changes nothing.
    let unknown = service
        .apply_sso_login(login(&user, "nobody", &["devs"]))
        .await
        .must();
    assert!(unknown.added_group_ids.is_empty() && unknown.removed_group_ids.is_empty());
    // All Users is never left, even when mapped and not matched.
    admin
        .create_sso_group_mapping(sso(ALL_USERS_ID, PROVIDER, false, &["never"]))
        .await
        .must();
    let kept = service
        .apply_sso_login(login(&user, PROVIDER, &[]))
        .await
        .must();
    assert!(kept.removed_group_ids.is_empty(), "{kept:?}");
    assert!(
        env.user_groups(&user)
            .await
            .contains(&ALL_USERS_ID.to_owned())
    );
    env.admin()
        .remove_group_member(member(&everyone.id, &user))
        .await
        .must();

    // Only services (or holders of sso.modify) apply logins.
    let (plain_id, plain) = env.user().await;
    plain
        .clone()
        .apply_sso_login(login(&plain_id, PROVIDER, &["devs"]))
        .await
        .fails(Code::PermissionDenied);
    assert_eq!(
        env.user_groups(&plain_id).await,
        vec![ALL_USERS_ID.to_owned()]
    );
    service
        .apply_sso_login(login("nope", PROVIDER, &[]))
        .await
        .invalid("user_id");
    service
        .apply_sso_login(login(&user, " ", &[]))
        .await
        .invalid("provider_id");
}

async fn sso_mappings_are_validated_and_listed(backend: Backend) {
    let env = Env::start(backend).await;
    let a = env.group("A", 10).await;
    let b = env.group("B", 20).await;
    let mut admin = env.admin();
    let created = admin
        .create_sso_group_mapping(pb::SsoGroupMapping {
            provider_type: "LDAP".into(),
            ..sso(&a.id, PROVIDER, false, &["CN=Devs,OU=Groups"])
        })
        .await
        .must();
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert_eq!(created.provider_type, "ldap");
    assert_eq!(created.group_attributes, vec!["cn=devs,ou=groups"]);
    let on_b = admin
        .create_sso_group_mapping(sso(&b.id, PROVIDER, true, &[]))
        .await
        .must();
    let elsewhere = admin
        .create_sso_group_mapping(sso(&b.id, OTHER, false, &["x"]))
        .await
        .must();

    let list = |group_id: &str, provider_id: &str| {
        let mut admin = env.admin();
        let request = pb::ListSsoGroupMappingsRequest {
            group_id: group_id.into(),
            provider_id: provider_id.into(),
        };
        async move {
            let mut ids: Vec<String> = admin
                .list_sso_group_mappings(request)
                .await
                .must()
                .mappings
                .into_iter()
                .map(|m| m.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        list("", PROVIDER).await,
        sorted(vec![created.id.clone(), on_b.id.clone()])
    );
    assert_eq!(
        list(&b.id, "").await,
        sorted(vec![on_b.id.clone(), elsewhere.id.clone()])
    );
    assert_eq!(list(&b.id, OTHER).await, vec![elsewhere.id.clone()]);
    assert_eq!(list("", "").await.len(), 3);

    admin
        .create_sso_group_mapping(pb::SsoGroupMapping {
            provider_type: "kerberos".into(),
            ..sso(&a.id, PROVIDER, true, &[])
        })
        .await
        .invalid("provider_type");
    admin
        .create_sso_group_mapping(sso(&a.id, PROVIDER, false, &[]))
        .await
        .invalid("group_attributes");
    admin
        .create_sso_group_mapping(sso(&a.id, PROVIDER, false, &["ok", "  "]))
        .await
        .invalid("group_attributes[1]");
    admin
        .create_sso_group_mapping(sso(&a.id, "", true, &[]))
        .await
        .invalid("provider_id");
    admin
        .create_sso_group_mapping(sso(&stranger(), PROVIDER, true, &[]))
        .await
        .fails(Code::NotFound);

    admin
        .delete_sso_group_mapping(pb::DeleteSsoGroupMappingRequest {
            id: created.id.clone(),
        })
        .await
        .must();
    assert_eq!(list("", PROVIDER).await, vec![on_b.id.clone()]);
    admin
        .delete_sso_group_mapping(pb::DeleteSsoGroupMappingRequest { id: created.id })
        .await
        .fails(Code::NotFound);

    let (_, plain) = env.user().await;
    plain
        .clone()
        .list_sso_group_mappings(pb::ListSsoGroupMappingsRequest::default())
        .await
        .fails(Code::PermissionDenied);
    plain
        .clone()
        .create_sso_group_mapping(sso(&a.id, PROVIDER, true, &[]))
        .await
        .fails(Code::PermissionDenied);
}
