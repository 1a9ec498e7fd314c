//! A user's settings and SSH key.

use ssh_key::{LineEnding, PrivateKey};

use crate::common::{Backend, Code, Env, Outcome, both_backends, pb};

both_backends!(settings_defaults_and_updates, ssh_keys);

async fn settings_defaults_and_updates(backend: Backend) {
    let env = Env::start(backend).await;
    let (bob, client) = env.user_client("bob").await;
    let (_, carol) = env.user_client("carol").await;
    let me = || client.clone();

    let defaults = me()
        .get_user_settings(pb::GetUserSettingsRequest::default())
        .await
        .must();
    assert_eq!(
        defaults,
        pb::UserSettings {
            user_id: bob.id.clone(),
            auto_launch_session: false,
            chat_sound_effects: true,
            default_workspace_image: String::new(),
            show_tips_during_session: true,
            toggle_control_panel: true,
            theme: pb::Theme::Auto as i32,
        }
    );
    let same = me()
        .get_user_settings(pb::GetUserSettingsRequest {
            user_id: bob.id.clone(),
        })
        .await
        .must();
    assert_eq!(same, defaults);

    let updated = me()
        .update_user_settings(pb::UpdateUserSettingsRequest {
            theme: Some(pb::Theme::Dark as i32),
            auto_launch_session: Some(true),
            default_workspace_image: Some("ws-ubuntu".into()),
            ..Default::default()
        })
        .await
        .must();
    let expected = pb::UserSettings {
        theme: pb::Theme::Dark as i32,
        auto_launch_session: true,
        default_workspace_image: "ws-ubuntu".into(),
        ..defaults.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(
        me().get_user_settings(pb::GetUserSettingsRequest::default())
            .await
            .must(),
        expected
    );
    // Only given fields change.
    let again = me()
        .update_user_settings(pb::UpdateUserSettingsRequest {
            chat_sound_effects: Some(false),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(
        again,
        pb::UserSettings {
            chat_sound_effects: false,
            ..expected.clone()
        }
    );

    for theme in [99, pb::Theme::Unspecified as i32] {
        me().update_user_settings(pb::UpdateUserSettingsRequest {
            theme: Some(theme),
            auto_launch_session: Some(false),
            ..Default::default()
        })
        .await
        .invalid("theme");
    }
    me().update_user_settings(pb::UpdateUserSettingsRequest {
        default_workspace_image: Some("x".repeat(300)),
        ..Default::default()
    })
    .await
    .invalid("default_workspace_image");
    assert_eq!(
        me().get_user_settings(pb::GetUserSettingsRequest::default())
            .await
            .must(),
        again,
        "a refused update wrote"
    );

    // Other users can neither read nor change them; admins can.
    carol
        .clone()
        .get_user_settings(pb::GetUserSettingsRequest {
            user_id: bob.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    carol
        .clone()
        .update_user_settings(pb::UpdateUserSettingsRequest {
            user_id: bob.id.clone(),
            theme: Some(pb::Theme::Light as i32),
            ..Default::default()
        })
        .await
        .fails(Code::PermissionDenied);
    let seen = env
        .admin()
        .get_user_settings(pb::GetUserSettingsRequest {
            user_id: bob.id.clone(),
        })
        .await
        .must();
    assert_eq!(seen, again);
    let light = env
        .admin()
        .update_user_settings(pb::UpdateUserSettingsRequest {
            user_id: bob.id.clone(),
            theme: Some(pb::Theme::Light as i32),
            ..Default::default()
        })
        .await
        .must();
    assert_eq!(light.theme(), pb::Theme::Light);
    env.admin()
        .get_user_settings(pb::GetUserSettingsRequest {
            user_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .fails(Code::NotFound);
    env.service()
        .await
        .get_user_settings(pb::GetUserSettingsRequest::default())
        .await
        .fails(Code::PermissionDenied);
}

pub(crate) fn keypair(seed: u8, comment: &str) -> (String, String) {
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
    let private = PrivateKey::new(ssh_key::private::KeypairData::Ed25519(pair), comment)
        .expect("private key");
    let public = private.public_key().to_openssh().expect("public key");
    let pem = private.to_openssh(LineEnding::LF).expect("pem").to_string();
    (public, pem)
}

async fn ssh_keys(backend: Backend) {
    let env = Env::start(backend).await;
    let (bob, client) = env.user_client("bob").await;
    let (_, carol) = env.user_client("carol").await;
    let me = || client.clone();

    me().get_ssh_key(pb::GetSshKeyRequest::default())
        .await
        .fails(Code::NotFound);
    let generated = me()
        .generate_ssh_key(pb::GenerateSshKeyRequest::default())
        .await
        .must();
    assert_eq!(generated.user_id, bob.id);
    assert!(
        generated.public_key.starts_with("ssh-ed25519 "),
        "{}",
        generated.public_key
    );
    assert!(generated.public_key.ends_with(" bob@atrium"));
    assert!(generated.fingerprint.starts_with("SHA256:"));
    assert!(
        generated
            .private_key
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        "{}",
        generated.private_key
    );
    let parsed = PrivateKey::from_openssh(&generated.private_key).expect("OpenSSH private key");
    assert_eq!(
        parsed.public_key().to_openssh().expect("public"),
        generated.public_key
    );

    // Without include_private_key nobody gets it; the user never gets it back.
    let public_only = me()
        .get_ssh_key(pb::GetSshKeyRequest::default())
        .await
        .must();
    assert_eq!(
        public_only,
        pb::SshKey {
            private_key: String::new(),
            ..generated.clone()
        }
    );
    me().get_ssh_key(pb::GetSshKeyRequest {
        user_id: String::new(),
        include_private_key: true,
    })
    .await
    .fails(Code::PermissionDenied);
    let session_manager = env
        .server
        .as_service(atrium_service_kit::auth::ServiceId::SessionManager)
        .await
        .expect("session-manager client");
    for privileged in [env.admin(), session_manager] {
        let with_private = privileged
            .clone()
            .get_ssh_key(pb::GetSshKeyRequest {
                user_id: bob.id.clone(),
                include_private_key: true,
            })
            .await
            .must();
        assert_eq!(with_private, generated);
    }
    carol
        .clone()
        .get_ssh_key(pb::GetSshKeyRequest {
            user_id: bob.id.clone(),
            include_private_key: false,
        })
        .await
        .fails(Code::PermissionDenied);
    carol
        .clone()
        .generate_ssh_key(pb::GenerateSshKeyRequest {
            user_id: bob.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);

    // The private key is stored sealed, not as text.
    let stored = env.sql("SELECT private_key_sealed FROM ssh_keys").await;
    assert_eq!(stored.len(), 1);
    let stored = stored[0].clone().expect("sealed key");
    assert!(!stored.contains("OPENSSH PRIVATE KEY"), "{stored}");
    let body: String = generated
        .private_key
        .lines()
        .nth(1)
        .expect("pem body")
        .into();
    assert!(!stored.contains(&body));

    // Setting a key: the pair must match and parse.
    let (public_a, private_a) = keypair(1, "a@laptop");
    let (public_b, _) = keypair(2, "b@laptop");
    let set = |public: &str, private: &str| {
        let mut client = client.clone();
        let request = pb::SetSshKeyRequest {
            user_id: String::new(),
            public_key: public.into(),
            private_key: private.into(),
        };
        async move { client.set_ssh_key(request).await }
    };
    set(&public_b, &private_a).await.invalid("public_key");
    set("ssh-ed25519 not-base64", &private_a)
        .await
        .invalid("public_key");
    set(&public_a, "-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n")
        .await
        .invalid("private_key");
    assert_eq!(
        me().get_ssh_key(pb::GetSshKeyRequest::default())
            .await
            .must()
            .public_key,
        generated.public_key,
        "a refused SetSshKey replaced the key"
    );
    let replaced = set(&public_a, &private_a).await.must();
    assert_eq!(replaced.public_key, public_a);
    assert!(replaced.private_key.is_empty());
    assert_ne!(replaced.fingerprint, generated.fingerprint);
    let fetched = env
        .admin()
        .get_ssh_key(pb::GetSshKeyRequest {
            user_id: bob.id.clone(),
            include_private_key: true,
        })
        .await
        .must();
    assert_eq!(fetched.public_key, public_a);
    assert_eq!(fetched.private_key.trim(), private_a.trim());
    assert_eq!(env.sql("SELECT user_id FROM ssh_keys").await.len(), 1);
    let events: Vec<String> = env
        .audit(pb::ListAuditEventsRequest {
            user_id: bob.id.clone(),
            ..Default::default()
        })
        .await
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| k.starts_with("ssh_key."))
        .collect();
    assert_eq!(events, ["ssh_key.set", "ssh_key.generate"]);
}
