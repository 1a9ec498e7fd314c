//! Service certificates are not master keys: an agent node's certificate (or any service's
//! outside its row of the kit's call table) cannot read SSH private keys, set passwords, mint
//! API keys or create users; what its row allows still works.

use atrium_service_kit::auth::ServiceId;

use crate::common::{Backend, Code, Env, Outcome, both_backends, pb};

both_backends!(an_agent_certificate_reaches_only_its_row);

async fn an_agent_certificate_reaches_only_its_row(backend: Backend) {
    let env = Env::start(backend).await;
    let bob = env.create_user("bob").await;
    let mut agent = env.server.as_service(ServiceId::Agent).await.unwrap();
    agent
        .get_ssh_key(pb::GetSshKeyRequest {
            user_id: bob.id.clone(),
            include_private_key: true,
        })
        .await
        .fails(Code::PermissionDenied);
    agent
        .set_password(pb::SetPasswordRequest {
            user_id: bob.id.clone(),
            new_password: "taken-over-1".into(),
            force_password_reset: false,
        })
        .await
        .fails(Code::PermissionDenied);
    agent
        .create_api_key(pb::CreateApiKeyRequest {
            name: "mine".into(),
            permissions: vec!["users.modify".into()],
            ..Default::default()
        })
        .await
        .fails(Code::PermissionDenied);
    agent
        .create_user(pb::CreateUserRequest {
            username: "mallory".into(),
            password: "mallory-password-1".into(),
            ..Default::default()
        })
        .await
        .fails(Code::PermissionDenied);
    agent
        .reset_two_factor(pb::ResetTwoFactorRequest {
            user_id: bob.id.clone(),
        })
        .await
        .fails(Code::PermissionDenied);
    // Its own row: verification keys.
    agent
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .expect("the agent's row allows GetVerificationKeys");
}
