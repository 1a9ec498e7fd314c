//! Ready-made dialers and gRPC clients for the roles of a launch: as a user's program (trusting
//! the launch's CA, with a login or an API key) or as one of Atrium's services (presenting that
//! service's certificate).

use anyhow::Context as _;
use atrium_proto::agent::v1::agent_service_client::AgentServiceClient;
use atrium_proto::identity::v1::LoginRequest;
use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_proto::session::v1::session_service_client::SessionServiceClient;
use atrium_proto::usage::v1::usage_service_client::UsageServiceClient;
use atrium_service_kit::auth::{Credential, ServiceId};
use atrium_service_kit::client::Dialer;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_service_kit::tls::TlsConfig;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::role::Role;
use crate::running::Running;

/// A channel that adds the caller's credential (and trace context) to every call.
pub type Authed = InterceptedService<Channel, OutgoingInterceptor>;
pub type IdentityClient = IdentityServiceClient<Authed>;
pub type PolicyClient = PolicyServiceClient<Authed>;
pub type AgentClient = AgentServiceClient<Authed>;
pub type SessionClient = SessionServiceClient<Authed>;
pub type UsageClient = UsageServiceClient<Authed>;

/// Who a client calls as.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A user's program with no credential (login, public calls).
    Anonymous,
    /// A user's program with a login token or an API key.
    User(Credential),
    /// One of Atrium's services, proven by its certificate.
    Service(ServiceId),
}

impl Running {
    /// Dials as a user's program: trusts the launch's CA, presents no certificate.
    pub fn user_dialer(&self) -> anyhow::Result<Dialer> {
        Dialer::trusting(self.ca_path())
    }

    /// Dials as `service`, presenting its certificate from the launch's CA directory.
    pub fn dialer_as(&self, service: ServiceId) -> anyhow::Result<Dialer> {
        Dialer::for_service(&TlsConfig::in_dir(self.ca_dir(), service))
    }

    /// A channel to `role`, connected now, as `caller`'s transport (its certificate when it
    /// is a service).
    pub async fn channel(&self, role: Role, caller: &Caller) -> anyhow::Result<Channel> {
        let endpoint = self
            .endpoint(role)
            .with_context(|| format!("{role} is not part of this launch"))?;
        let dialer = match caller {
            Caller::Service(service) => self.dialer_as(*service)?,
            Caller::Anonymous | Caller::User(_) => self.user_dialer()?,
        };
        dialer.connect(&endpoint).await
    }

    async fn authed(&self, role: Role, caller: &Caller) -> anyhow::Result<Authed> {
        let channel = self.channel(role, caller).await?;
        let credential = match caller {
            Caller::User(credential) => Some(credential),
            Caller::Anonymous | Caller::Service(_) => None,
        };
        Ok(InterceptedService::new(
            channel,
            OutgoingInterceptor::new(credential)?,
        ))
    }

    pub async fn identity(&self, caller: &Caller) -> anyhow::Result<IdentityClient> {
        Ok(IdentityServiceClient::new(
            self.authed(Role::Identity, caller).await?,
        ))
    }

    pub async fn policy(&self, caller: &Caller) -> anyhow::Result<PolicyClient> {
        Ok(PolicyServiceClient::new(
            self.authed(Role::Policy, caller).await?,
        ))
    }

    pub async fn agent(&self, caller: &Caller) -> anyhow::Result<AgentClient> {
        Ok(AgentServiceClient::new(
            self.authed(Role::Agent, caller).await?,
        ))
    }

    pub async fn session(&self, caller: &Caller) -> anyhow::Result<SessionClient> {
        Ok(SessionServiceClient::new(
            self.authed(Role::SessionManager, caller).await?,
        ))
    }

    pub async fn usage(&self, caller: &Caller) -> anyhow::Result<UsageClient> {
        Ok(UsageServiceClient::new(
            self.authed(Role::BillingUsage, caller).await?,
        ))
    }

    /// Logs `username` in through identity; the credential carries the access token.
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<Credential> {
        let answer = self
            .identity(&Caller::Anonymous)
            .await?
            .login(LoginRequest {
                username: username.into(),
                password: password.into(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("log in as {username}"))?
            .into_inner();
        anyhow::ensure!(
            !answer.access_token.is_empty(),
            "the login of {username} gave no token (status {})",
            answer.status
        );
        Ok(Credential::Bearer(answer.access_token))
    }

    /// Logs the administrator in (its password must be known: configured or generated on
    /// this start).
    pub async fn admin(&self) -> anyhow::Result<Credential> {
        let password = self
            .admin_password()
            .context("the administrator's password is not known to this launch")?;
        self.login("admin", password.expose()).await
    }

    /// What `role`'s health check answers for the server as a whole (the gateway's is
    /// `GET /healthz`, the others' gRPC health).
    pub async fn health(&self, role: Role) -> anyhow::Result<ServingStatus> {
        let endpoint = self
            .endpoint(role)
            .with_context(|| format!("{role} is not part of this launch"))?;
        match role {
            Role::Gateway => crate::ready::http_health(self.ca_path(), &endpoint).await,
            _ => crate::ready::check(&self.user_dialer()?, &endpoint).await,
        }
    }
}
