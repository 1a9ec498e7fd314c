//! The gateway's channels to the services, and calls on them with a caller's credential.
//!
//! The gateway forwards the caller's own credential (access token or API key) on every call, so
//! each service authorizes the caller itself and the gateway confers no rights of its own. Calls
//! without a credential go out under the gateway's service identity (its client certificate),
//! which the services' table limits to reading a session and its proxy secret.

use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_proto::session::v1::session_service_client::SessionServiceClient;
use atrium_proto::usage::v1::usage_service_client::UsageServiceClient;
use atrium_service_kit::auth::Credential;
use atrium_service_kit::client::Dialer;
use atrium_service_kit::http::HttpError;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::config::GatewayConfig;

pub type Intercepted = InterceptedService<Channel, OutgoingInterceptor>;
pub type IdentityClient = IdentityServiceClient<Intercepted>;
pub type PolicyClient = PolicyServiceClient<Intercepted>;
pub type SessionClient = SessionServiceClient<Intercepted>;
pub type UsageClient = UsageServiceClient<Intercepted>;

/// Which service serves a gRPC package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Identity,
    Policy,
    Session,
    Usage,
}

impl Backend {
    /// The backend of a fully qualified service name (`atrium.policy.v1.PolicyService`).
    pub fn of_service(service: &str) -> Option<Backend> {
        match service.split('.').nth(1)? {
            "identity" => Some(Backend::Identity),
            "policy" => Some(Backend::Policy),
            "session" => Some(Backend::Session),
            "usage" => Some(Backend::Usage),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Backends {
    identity: Channel,
    policy: Channel,
    session: Channel,
    usage: Option<Channel>,
}

impl Backends {
    pub fn new(config: &GatewayConfig, dialer: &Dialer) -> anyhow::Result<Self> {
        let lazy = |field: &str, url: &str| {
            dialer
                .lazy(url)
                .map_err(|e| anyhow::anyhow!("{field}: {e:#}"))
        };
        Ok(Self {
            identity: lazy("identity_endpoint", &config.identity_endpoint)?,
            policy: lazy("policy_endpoint", &config.policy_endpoint)?,
            session: lazy("session_endpoint", &config.session_endpoint)?,
            usage: match &config.usage_endpoint {
                Some(url) => Some(lazy("usage_endpoint", url)?),
                None => None,
            },
        })
    }

    pub fn channel(&self, backend: Backend) -> Result<Channel, HttpError> {
        Ok(match backend {
            Backend::Identity => self.identity.clone(),
            Backend::Policy => self.policy.clone(),
            Backend::Session => self.session.clone(),
            Backend::Usage => self.usage.clone().ok_or_else(|| {
                HttpError::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "billing-usage is not part of this deployment",
                )
            })?,
        })
    }

    fn intercepted(
        &self,
        backend: Backend,
        credential: Option<&Credential>,
    ) -> Result<Intercepted, HttpError> {
        let interceptor = OutgoingInterceptor::new(credential).map_err(|_| {
            HttpError::unauthenticated("authorization: the credential has characters not allowed")
        })?;
        Ok(InterceptedService::new(self.channel(backend)?, interceptor))
    }

    /// Identity, as the caller (`None`: anonymously, for public calls such as Login).
    pub fn identity(&self, credential: Option<&Credential>) -> Result<IdentityClient, HttpError> {
        Ok(IdentityServiceClient::new(
            self.intercepted(Backend::Identity, credential)?,
        ))
    }

    pub fn policy(&self, credential: &Credential) -> Result<PolicyClient, HttpError> {
        Ok(PolicyServiceClient::new(
            self.intercepted(Backend::Policy, Some(credential))?,
        ))
    }

    pub fn session(&self, credential: &Credential) -> Result<SessionClient, HttpError> {
        Ok(SessionServiceClient::new(
            self.intercepted(Backend::Session, Some(credential))?,
        ))
    }

    /// The session-manager under the gateway's own identity: only GetSession, WatchSession and
    /// GetSessionSecret are allowed to it (for the proxy).
    pub fn session_as_gateway(&self) -> SessionClient {
        SessionServiceClient::new(InterceptedService::new(
            self.session.clone(),
            OutgoingInterceptor::anonymous(),
        ))
    }

    pub fn usage(&self, credential: &Credential) -> Result<UsageClient, HttpError> {
        Ok(UsageServiceClient::new(
            self.intercepted(Backend::Usage, Some(credential))?,
        ))
    }
}
