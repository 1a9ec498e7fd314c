//! The tonic service: authenticate, convert, delegate. No logic lives here.

use atrium_proto::identity::v1 as pb;
use atrium_proto::identity::v1::identity_service_server::IdentityService;
use atrium_service_kit::auth::principal;
use tonic::{Request, Response, Status};

use super::{api_keys, audit, login, logout, profile, revocations, twofa, users};
use crate::core::SharedCore;

pub struct IdentityApi {
    core: SharedCore,
}

impl IdentityApi {
    pub fn new(core: SharedCore) -> Self {
        Self { core }
    }
}

/// The service impl: each listed RPC authenticates its caller and calls
/// `$f(core, principal, request)`; `$($rest)*` holds the hand-written methods. (The macro
/// emits the whole impl so that `async_trait` sees the expanded methods.)
macro_rules! identity_service {
    ($($name:ident($req:ty) -> $resp:ty = $f:path;)* @rest $($rest:tt)*) => {
        #[tonic::async_trait]
        impl IdentityService for IdentityApi {
            $(
                async fn $name(&self, request: Request<$req>) -> Result<Response<$resp>, Status> {
                    let principal = principal(&request)?;
                    Ok(Response::new($f(&self.core, &principal, request.into_inner()).await?))
                }
            )*
            $($rest)*
        }
    };
}

identity_service! {
    create_user(pb::CreateUserRequest) -> pb::User = users::create;
    get_user(pb::GetUserRequest) -> pb::User = users::get;
    update_user(pb::UpdateUserRequest) -> pb::User = users::update;
    delete_user(pb::DeleteUserRequest) -> pb::DeleteUserResponse = users::delete;
    list_users(pb::ListUsersRequest) -> pb::ListUsersResponse = users::list;
    reset_two_factor(pb::ResetTwoFactorRequest) -> pb::User = users::reset_two_factor;
    set_password(pb::SetPasswordRequest) -> pb::User = users::set_password;
    change_password(pb::ChangePasswordRequest) -> pb::LoginResponse = login::change_password;
    logout(pb::LogoutRequest) -> pb::LogoutResponse = logout::logout;
    logout_everywhere(pb::LogoutEverywhereRequest) -> pb::LogoutResponse = logout::logout_everywhere;
    enroll_totp(pb::EnrollTotpRequest) -> pb::EnrollTotpResponse = twofa::enroll;
    confirm_totp(pb::ConfirmTotpRequest) -> pb::LoginResponse = twofa::confirm;
    get_user_settings(pb::GetUserSettingsRequest) -> pb::UserSettings = profile::get_settings;
    update_user_settings(pb::UpdateUserSettingsRequest) -> pb::UserSettings = profile::update_settings;
    generate_ssh_key(pb::GenerateSshKeyRequest) -> pb::SshKey = profile::generate;
    set_ssh_key(pb::SetSshKeyRequest) -> pb::SshKey = profile::set;
    get_ssh_key(pb::GetSshKeyRequest) -> pb::SshKey = profile::get;
    create_api_key(pb::CreateApiKeyRequest) -> pb::CreateApiKeyResponse = api_keys::create;
    list_api_keys(pb::ListApiKeysRequest) -> pb::ListApiKeysResponse = api_keys::list;
    revoke_api_key(pb::RevokeApiKeyRequest) -> pb::ApiKey = api_keys::revoke;
    authenticate_api_key(pb::AuthenticateApiKeyRequest) -> pb::ApiKey = api_keys::authenticate_rpc;
    list_audit_events(pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse = audit::list;
    @rest

    type WatchRevocationsStream = revocations::RevocationStream;

    async fn watch_revocations(
        &self,
        request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let principal = principal(&request)?;
        Ok(Response::new(revocations::watch(self.core.clone(), &principal, request.into_inner()).await?))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        // The per-source limit is for end users' addresses; a login relayed by one of Atrium's
        // services (the gateway, with its client certificate) is limited per account here and
        // per end user there.
        let source = request
            .extensions()
            .get::<atrium_service_kit::tls::PeerInfo>()
            .filter(|peer| peer.service.is_none())
            .and_then(|peer| peer.remote_addr)
            .map(|addr| addr.ip());
        Ok(Response::new(login::login(&self.core, source, request.into_inner()).await?))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        Ok(Response::new(login::refresh(&self.core, request.into_inner()).await?))
    }

    async fn who_am_i(&self, request: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let principal = principal(&request)?;
        Ok(Response::new(login::who_am_i(&self.core, &principal).await?))
    }

    async fn get_verification_keys(
        &self,
        _request: Request<pb::GetVerificationKeysRequest>,
    ) -> Result<Response<pb::VerificationKeys>, Status> {
        Ok(Response::new(self.core.tokens.verification_keys()))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::VerificationKeys>, Status> {
        let principal = principal(&request)?;
        self.core.require(&principal, atrium_service_kit::auth::permissions::SIGNING_KEYS_MANAGE).await?;
        self.core.tokens.rotate(&self.core.repo, &self.core.secrets).await?;
        crate::core::record(&self.core, crate::core::event("signing_key.rotate", None, &principal.actor(), serde_json::json!({}))).await;
        Ok(Response::new(self.core.tokens.verification_keys()))
    }
}
