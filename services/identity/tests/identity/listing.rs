//! Listing users: filters and paging.

use std::collections::HashSet;

use crate::common::{Backend, Env, Outcome, PageRequest, both_backends, pb};

both_backends!(list_filters, list_pages_chain_to_the_end);

async fn list_filters(backend: Backend) {
    let env = Env::start(backend).await;
    let carol = env.create_sso_user("carol", "carol@example.com").await;
    let carla = env.create_sso_user("Carla", "CARLA@Example.ORG").await;
    let dave = env.create_sso_user("dave_x", "dave@example.org").await;
    let ldap = env
        .create(pb::CreateUserRequest {
            username: "erin".into(),
            realm: pb::Realm::Ldap as i32,
            locked: true,
            ..Default::default()
        })
        .await;
    let frank = env
        .create(pb::CreateUserRequest {
            username: "frank".into(),
            realm: pb::Realm::Oidc as i32,
            disabled: true,
            email: "frank@elsewhere.net".into(),
            ..Default::default()
        })
        .await;

    let list = |req: pb::ListUsersRequest| {
        let admin = env.admin();
        async move {
            let mut admin = admin;
            let mut names: Vec<String> = admin
                .list_users(req)
                .await
                .must()
                .users
                .into_iter()
                .map(|u| u.username)
                .collect();
            names.sort();
            names
        }
    };
    let names = |v: &[&pb::User]| {
        let mut n: Vec<String> = v.iter().map(|u| u.username.clone()).collect();
        n.sort();
        n
    };

    let all = list(pb::ListUsersRequest::default()).await;
    assert_eq!(all, ["Carla", "admin", "carol", "dave_x", "erin", "frank"]);
    let car = list(pb::ListUsersRequest {
        username_contains: "CAR".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(car, names(&[&carol, &carla]));
    let org = list(pb::ListUsersRequest {
        email_contains: "example.ORG".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(org, names(&[&carla, &dave]));
    // LIKE wildcards in the needle match themselves only.
    for needle in ["%", "_", "c%l"] {
        let found = list(pb::ListUsersRequest {
            username_contains: needle.into(),
            ..Default::default()
        })
        .await;
        let expected: Vec<String> = all.iter().filter(|n| n.contains(needle)).cloned().collect();
        assert_eq!(found, expected, "needle {needle:?}");
    }
    let realm = list(pb::ListUsersRequest {
        realm: pb::Realm::Saml as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(realm, names(&[&carol, &carla, &dave]));
    let locked = list(pb::ListUsersRequest {
        locked: Some(true),
        ..Default::default()
    })
    .await;
    assert_eq!(locked, names(&[&ldap]));
    let unlocked = list(pb::ListUsersRequest {
        locked: Some(false),
        ..Default::default()
    })
    .await;
    assert_eq!(unlocked.len(), 5);
    assert!(!unlocked.contains(&"erin".to_owned()));
    let disabled = list(pb::ListUsersRequest {
        disabled: Some(true),
        ..Default::default()
    })
    .await;
    assert_eq!(disabled, names(&[&frank]));
    // Filters combine.
    let combined = list(pb::ListUsersRequest {
        username_contains: "A".into(),
        email_contains: "example.org".into(),
        realm: pb::Realm::Saml as i32,
        locked: Some(false),
        disabled: Some(false),
        ..Default::default()
    })
    .await;
    assert_eq!(combined, names(&[&carla, &dave]));
    let none = list(pb::ListUsersRequest {
        username_contains: "car".into(),
        realm: pb::Realm::Ldap as i32,
        ..Default::default()
    })
    .await;
    assert!(none.is_empty());
    env.admin()
        .list_users(pb::ListUsersRequest {
            realm: 17,
            ..Default::default()
        })
        .await
        .invalid("realm");
}

async fn list_pages_chain_to_the_end(backend: Backend) {
    let env = Env::start(backend).await;
    let mut created = HashSet::new();
    for i in 0..5 {
        created.insert(env.create_sso_user(&format!("pager{i}"), "").await.id);
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    loop {
        let page = env
            .admin()
            .list_users(pb::ListUsersRequest {
                page: Some(PageRequest {
                    page_size: 2,
                    page_token: token.clone(),
                }),
                username_contains: "pager".into(),
                ..Default::default()
            })
            .await
            .must();
        sizes.push(page.users.len());
        seen.extend(page.users.into_iter().map(|u| u.id));
        token = page.page.expect("page response").next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(sizes.len() < 10, "paging never ends");
    }
    assert_eq!(sizes, [2, 2, 1]);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "duplicates across pages: {seen:?}"
    );
    assert_eq!(unique, created);

    // Exactly one page's worth: no dangling empty page.
    let exact = env
        .admin()
        .list_users(pb::ListUsersRequest {
            page: Some(PageRequest {
                page_size: 6,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(exact.users.len(), 6);
    assert!(exact.page.expect("page").next_page_token.is_empty());

    env.admin()
        .list_users(pb::ListUsersRequest {
            page: Some(PageRequest {
                page_size: 1001,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .invalid("page.page_size");
    env.admin()
        .list_users(pb::ListUsersRequest {
            page: Some(PageRequest {
                page_size: 2,
                page_token: "not a token!".into(),
            }),
            ..Default::default()
        })
        .await
        .invalid("page.page_token");
}
