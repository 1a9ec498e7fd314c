//! Users: create, read, update, delete, and input validation.

use crate::common::{
    Backend, Code, Env, Outcome, PASSWORD, both_backends, by_id, by_name, nanos, pb, update,
};

both_backends!(
    create_round_trips_every_field,
    usernames_are_unique_ignoring_case,
    update_changes_only_given_fields,
    delete_removes_the_user,
    bad_input_names_the_field_and_writes_nothing,
);

fn full_request() -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        username: "Alice.Smith".into(),
        password: PASSWORD.into(),
        first_name: "Alice".into(),
        last_name: "Smith".into(),
        realm: pb::Realm::Local as i32,
        notes: "line one\nline two".into(),
        locked: true,
        disabled: true,
        organization: "Acme".into(),
        phone: "+1 (555) 010-0199".into(),
        email: "alice@example.com".into(),
        custom_attribute_1: "c1".into(),
        custom_attribute_2: "c2".into(),
        custom_attribute_3: "c3".into(),
        city: "Springfield".into(),
        state: "Oregon".into(),
        country: "US".into(),
        force_password_reset: true,
    }
}

async fn create_round_trips_every_field(backend: Backend) {
    let env = Env::start(backend).await;
    let before = chrono::Utc::now().timestamp();
    let req = full_request();
    let created = env.create(req.clone()).await;

    assert!(uuid::Uuid::parse_str(&created.id).is_ok(), "{}", created.id);
    assert_eq!(created.username, req.username);
    assert_eq!(created.first_name, req.first_name);
    assert_eq!(created.last_name, req.last_name);
    assert_eq!(created.realm(), pb::Realm::Local);
    assert_eq!(created.notes, req.notes);
    assert!(created.locked);
    assert!(created.disabled);
    assert_eq!(created.organization, req.organization);
    assert_eq!(created.phone, req.phone);
    assert_eq!(created.email, req.email);
    assert_eq!(created.custom_attribute_1, "c1");
    assert_eq!(created.custom_attribute_2, "c2");
    assert_eq!(created.custom_attribute_3, "c3");
    assert_eq!(created.city, req.city);
    assert_eq!(created.state, req.state);
    assert_eq!(created.country, req.country);
    assert!(created.force_password_reset);
    assert!(!created.two_factor_enrolled);
    assert!(!created.is_admin);
    assert_eq!(created.failed_login_count, 0);
    assert!(created.last_session_at.is_none());
    let created_at = created.created_at.expect("created_at").seconds;
    assert!((before..=before + 5).contains(&created_at), "{created_at}");
    assert_eq!(created.updated_at, created.created_at);
    assert_eq!(created.password_set_at, created.created_at);

    // Reading back gives exactly what create answered, by id in any UUID spelling and by
    // username in any case.
    let admin = env.admin();
    assert_eq!(env.get_user(&created.id).await, created);
    let simple = created.id.replace('-', "").to_uppercase();
    assert_eq!(admin.clone().get_user(by_id(&simple)).await.must(), created);
    assert_eq!(
        admin.clone().get_user(by_name("alice.SMITH")).await.must(),
        created
    );
    assert_eq!(
        admin
            .clone()
            .get_user(by_name(" Alice.Smith "))
            .await
            .must(),
        created
    );

    // An SSO user needs no password and has none set.
    let sso = env
        .create(pb::CreateUserRequest {
            username: "bob@corp".into(),
            realm: pb::Realm::Ldap as i32,
            ..Default::default()
        })
        .await;
    assert_eq!(sso.realm(), pb::Realm::Ldap);
    assert!(sso.password_set_at.is_none());
    assert_eq!(env.get_user(&sso.id).await, sso);
    // An unspecified realm means local.
    let local = env.create_user("carol").await;
    assert_eq!(local.realm(), pb::Realm::Local);
    assert_eq!(env.get_user(&local.id).await, local);
}

async fn usernames_are_unique_ignoring_case(backend: Backend) {
    let env = Env::start(backend).await;
    env.create_user("Dave").await;
    let before = env.all_users().await;
    for name in ["dave", "DAVE", " Dave", "ADMIN"] {
        let status = env
            .admin()
            .create_user(pb::CreateUserRequest {
                username: name.into(),
                password: PASSWORD.into(),
                ..Default::default()
            })
            .await
            .fails(Code::AlreadyExists);
        assert!(status.message().contains("already exists"), "{status:?}");
    }
    assert_eq!(env.all_users().await, before);
    // Renaming onto another user's name (in another case) is refused too.
    let erin = env.create_sso_user("erin", "").await;
    env.admin()
        .update_user(pb::UpdateUserRequest {
            username: Some("dAVE".into()),
            ..update(&erin.id)
        })
        .await
        .fails(Code::AlreadyExists);
    assert_eq!(env.get_user(&erin.id).await.username, "erin");
    // Renaming to a new case of one's own name is fine.
    let renamed = env
        .admin()
        .update_user(pb::UpdateUserRequest {
            username: Some("ERIN".into()),
            ..update(&erin.id)
        })
        .await
        .must();
    assert_eq!(renamed.username, "ERIN");
}

async fn update_changes_only_given_fields(backend: Backend) {
    let env = Env::start(backend).await;
    let created = env.create(full_request()).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let updated = env
        .admin()
        .update_user(pb::UpdateUserRequest {
            first_name: Some("Alicia".into()),
            email: Some("alicia@example.org".into()),
            city: Some(String::new()),
            ..update(&created.id)
        })
        .await
        .must();
    let expected = pb::User {
        first_name: "Alicia".into(),
        email: "alicia@example.org".into(),
        city: String::new(),
        updated_at: updated.updated_at,
        ..created.clone()
    };
    assert_eq!(updated, expected);
    assert!(nanos(&updated.updated_at) > nanos(&created.updated_at));
    assert_eq!(env.get_user(&created.id).await, updated);

    // Flags and realm change when given, and only then.
    let flags = env
        .admin()
        .update_user(pb::UpdateUserRequest {
            locked: Some(false),
            force_password_reset: Some(false),
            ..update(&created.id)
        })
        .await
        .must();
    assert!(!flags.locked);
    assert!(flags.disabled, "disabled was not given and stays set");
    assert!(!flags.force_password_reset);
    assert_eq!(flags.first_name, "Alicia");
    let realm = env
        .admin()
        .update_user(pb::UpdateUserRequest {
            realm: Some(pb::Realm::Oidc as i32),
            ..update(&created.id)
        })
        .await
        .must();
    assert_eq!(realm.realm(), pb::Realm::Oidc);
    assert_eq!(env.get_user(&created.id).await, realm);

    // An empty update changes nothing, not even updated_at.
    let same = env.admin().update_user(update(&created.id)).await.must();
    assert_eq!(same, realm);

    // Unknown users.
    env.admin()
        .update_user(pb::UpdateUserRequest {
            first_name: Some("x".into()),
            ..update(&uuid::Uuid::now_v7().to_string())
        })
        .await
        .fails(Code::NotFound);
}

async fn delete_removes_the_user(backend: Backend) {
    let env = Env::start(backend).await;
    let gone = env.create_user("frank").await;
    let kept = env.create_sso_user("grace", "").await;
    let (login, _) = env.login_ok("frank", PASSWORD).await;

    env.admin()
        .delete_user(pb::DeleteUserRequest {
            user_id: gone.id.clone(),
        })
        .await
        .must();
    env.admin()
        .get_user(by_id(&gone.id))
        .await
        .fails(Code::NotFound);
    env.admin()
        .get_user(by_name("frank"))
        .await
        .fails(Code::NotFound);
    env.admin()
        .delete_user(pb::DeleteUserRequest {
            user_id: gone.id.clone(),
        })
        .await
        .fails(Code::NotFound);
    let names: Vec<String> = env
        .all_users()
        .await
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"grace".to_owned()) && names.contains(&"admin".to_owned()));
    assert_eq!(env.get_user(&kept.id).await, kept);
    // The deleted user can neither log in nor refresh, and the name is free again.
    env.login("frank", PASSWORD)
        .await
        .fails(Code::Unauthenticated);
    env.refresh(&login.refresh_token)
        .await
        .fails(Code::Unauthenticated);
    env.create_user("FRANK").await;

    // Admins cannot delete themselves.
    let admin_id = env.admin_id().await;
    env.admin()
        .delete_user(pb::DeleteUserRequest { user_id: admin_id })
        .await
        .fails(Code::FailedPrecondition);
}

async fn bad_input_names_the_field_and_writes_nothing(backend: Backend) {
    let env = Env::start(backend).await;
    let existing = env.create_user("heidi").await;
    let users_before = env.all_users().await;
    let creates_before = env.audit_kind("user.create").await;
    let good = || pb::CreateUserRequest {
        username: "ivan".into(),
        password: PASSWORD.into(),
        ..Default::default()
    };
    let cases: Vec<(&str, pb::CreateUserRequest)> = vec![
        (
            "username",
            pb::CreateUserRequest {
                username: String::new(),
                ..good()
            },
        ),
        (
            "username",
            pb::CreateUserRequest {
                username: "   ".into(),
                ..good()
            },
        ),
        (
            "username",
            pb::CreateUserRequest {
                username: "ivan the terrible".into(),
                ..good()
            },
        ),
        (
            "email",
            pb::CreateUserRequest {
                email: "ivan@nowhere".into(),
                ..good()
            },
        ),
        (
            "email",
            pb::CreateUserRequest {
                email: "not an email".into(),
                ..good()
            },
        ),
        (
            "password",
            pb::CreateUserRequest {
                password: "short".into(),
                ..good()
            },
        ),
        (
            "password",
            pb::CreateUserRequest {
                password: String::new(),
                ..good()
            },
        ),
        (
            "password",
            pb::CreateUserRequest {
                password: "IVANIVAN".into(),
                username: "ivanivan".into(),
                ..good()
            },
        ),
        (
            "realm",
            pb::CreateUserRequest {
                realm: 42,
                ..good()
            },
        ),
        (
            "phone",
            pb::CreateUserRequest {
                phone: "call me".into(),
                ..good()
            },
        ),
        (
            "first_name",
            pb::CreateUserRequest {
                first_name: "x".repeat(256),
                ..good()
            },
        ),
        (
            "force_password_reset",
            pb::CreateUserRequest {
                realm: pb::Realm::Saml as i32,
                password: String::new(),
                force_password_reset: true,
                ..good()
            },
        ),
    ];
    for (field, request) in cases {
        let status = env.admin().create_user(request).await.invalid(field);
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "{status:?}"
        );
    }

    let admin = env.admin();
    admin
        .clone()
        .get_user(by_id("not-a-uuid"))
        .await
        .invalid("user_id");
    admin.clone().get_user(by_id("")).await.invalid("user_id");
    admin
        .clone()
        .get_user(by_name(""))
        .await
        .invalid("username");
    admin
        .clone()
        .get_user(pb::GetUserRequest { key: None })
        .await
        .invalid("key");
    admin
        .clone()
        .update_user(update("42"))
        .await
        .invalid("user_id");
    let bad_updates = [
        (
            "email",
            pb::UpdateUserRequest {
                email: Some("@example.com".into()),
                ..update(&existing.id)
            },
        ),
        (
            "realm",
            pb::UpdateUserRequest {
                realm: Some(99),
                ..update(&existing.id)
            },
        ),
        (
            "realm",
            pb::UpdateUserRequest {
                realm: Some(0),
                ..update(&existing.id)
            },
        ),
        (
            "username",
            pb::UpdateUserRequest {
                username: Some(String::new()),
                ..update(&existing.id)
            },
        ),
        (
            "phone",
            pb::UpdateUserRequest {
                phone: Some("555-CALL-NOW".into()),
                ..update(&existing.id)
            },
        ),
        (
            "force_password_reset",
            pb::UpdateUserRequest {
                realm: Some(pb::Realm::Ldap as i32),
                force_password_reset: Some(true),
                ..update(&existing.id)
            },
        ),
    ];
    for (field, request) in bad_updates {
        admin.clone().update_user(request).await.invalid(field);
    }
    admin
        .clone()
        .delete_user(pb::DeleteUserRequest {
            user_id: "nope".into(),
        })
        .await
        .invalid("user_id");
    // A duplicate fails after validation and hashing, inside the transaction.
    admin
        .clone()
        .create_user(pb::CreateUserRequest {
            username: "HEIDI".into(),
            ..good()
        })
        .await
        .fails(Code::AlreadyExists);

    assert_eq!(env.all_users().await, users_before, "a failed call wrote");
    assert_eq!(env.audit_kind("user.create").await, creates_before);
    assert!(env.audit_kind("user.update").await.is_empty());
}
