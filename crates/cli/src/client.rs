//! The connections to the services and the caller's credential.
//!
//! The credential is `--token`, else `--api-key`, else the login stored by `atrium login`.
//! A stored login is refreshed (Refresh RPC to identity, saved back) when its access token has
//! expired, or once when a call answers Unauthenticated, and the call is then retried. The
//! same credential and refresh serve calls to other services ([`Identity::call_on`]): a policy
//! call (or a session-manager or billing-usage call) carries the identity login's access
//! token.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_proto::identity::v1::{LoginResponse, LoginStatus, RefreshRequest};
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_proto::session::v1::session_service_client::SessionServiceClient;
use atrium_proto::usage::v1::usage_service_client::UsageServiceClient;
use atrium_service_kit::auth::Credential;
use atrium_service_kit::client::Dialer;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::cli::{DEFAULT_ENDPOINT, GlobalArgs};
use crate::credentials::{self, StoredCredentials};
use crate::error::{CliError, CliResult, usage, with_message};
use crate::json::instant;

pub type Client = IdentityServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;
pub type PolicyClient = PolicyServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;
pub type SessionClient = SessionServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;
pub type UsageClient = UsageServiceClient<InterceptedService<Channel, OutgoingInterceptor>>;

const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the caller's credential comes from.
#[derive(Debug)]
enum Auth {
    None,
    /// `--token` or `--api-key`: used as is, never refreshed.
    Fixed(Credential),
    /// The login stored by `atrium login`.
    Stored(StoredCredentials),
}

/// A service address and, once dialled, the channel to it.
#[derive(Debug)]
pub struct Lazy {
    endpoint: String,
    /// The flag that names the address, for error messages (`--endpoint`).
    flag: &'static str,
    channel: Option<Channel>,
}

impl Lazy {
    pub fn new(endpoint: String, flag: &'static str) -> Self {
        Self {
            endpoint,
            flag,
            channel: None,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The channel, connecting on first use.
    pub async fn channel(&mut self) -> CliResult<Channel> {
        if let Some(channel) = &self.channel {
            return Ok(channel.clone());
        }
        let channel = connect_channel(&self.endpoint, self.flag).await?;
        self.channel = Some(channel.clone());
        Ok(channel)
    }
}

/// An identity client that knows how to authenticate its calls (to identity or, through
/// [`Identity::call_on`], to another service).
#[derive(Debug)]
pub struct Identity {
    conn: Lazy,
    auth: Auth,
    config_dir: Option<PathBuf>,
}

impl Identity {
    /// Connects to the identity service. `use_stored` is false for `atrium login`, which must
    /// work even when the stored credentials are unreadable.
    pub async fn connect(global: &GlobalArgs, use_stored: bool) -> CliResult<Self> {
        let mut identity = Self::prepare(global, use_stored)?;
        identity.conn.channel().await?;
        Ok(identity)
    }

    /// Works out the endpoint and credential without dialling: identity is then connected at
    /// its first call (a refresh, a username to look up), so commands for other services work
    /// with `--token` while identity is unreachable.
    pub fn prepare(global: &GlobalArgs, use_stored: bool) -> CliResult<Self> {
        let config_dir = global
            .config_dir
            .clone()
            .or_else(credentials::default_config_dir);
        let stored = match (&config_dir, use_stored) {
            (Some(dir), true) if global.token.is_none() && global.api_key.is_none() => {
                credentials::load(dir)?
            }
            _ => None,
        };
        let endpoint = global
            .endpoint
            .clone()
            .or_else(|| stored.as_ref().map(|s| s.endpoint.clone()))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let auth = if let Some(token) = &global.token {
            Auth::Fixed(Credential::Bearer(token.clone()))
        } else if let Some(key) = &global.api_key {
            Auth::Fixed(key.clone())
        } else {
            // Tokens go only to the server that issued them.
            match stored {
                Some(s) if s.is_for(&endpoint) => Auth::Stored(s),
                _ => Auth::None,
            }
        };
        Ok(Self {
            conn: Lazy::new(endpoint, "--endpoint"),
            auth,
            config_dir,
        })
    }

    pub fn endpoint(&self) -> &str {
        self.conn.endpoint()
    }

    /// The stored login in use, if the credential came from the credentials file.
    pub fn stored(&self) -> Option<&StoredCredentials> {
        match &self.auth {
            Auth::Stored(s) => Some(s),
            _ => None,
        }
    }

    /// Whether calls carry any credential (`--token`, `--api-key` or a stored login).
    pub fn has_credential(&self) -> bool {
        !matches!(self.auth, Auth::None)
    }

    pub fn config_dir(&self) -> CliResult<&Path> {
        self.config_dir.as_deref().ok_or_else(|| {
            usage("cannot tell where to keep credentials: set --config-dir, ATRIUM_CONFIG_DIR or HOME")
        })
    }

    /// A client calling with `credential` (or anonymously); only after [`Identity::connect`].
    pub fn client_with(&self, credential: Option<&Credential>) -> CliResult<Client> {
        let channel =
            self.conn.channel.clone().ok_or_else(|| {
                CliError::Local(anyhow!("not connected to the identity service yet"))
            })?;
        let interceptor = OutgoingInterceptor::new(credential)?;
        Ok(IdentityServiceClient::with_interceptor(
            channel,
            interceptor,
        ))
    }

    /// The credential calls carry now (a stored login's current access token).
    fn credential(&self) -> Option<Credential> {
        match &self.auth {
            Auth::None => None,
            Auth::Fixed(c) => Some(c.clone()),
            Auth::Stored(s) => Some(Credential::Bearer(s.access_token.clone())),
        }
    }

    /// A client of any service over `channel`, calling with the current credential.
    fn client_on<C>(
        &self,
        channel: &Channel,
        wrap: &impl Fn(Channel, OutgoingInterceptor) -> C,
    ) -> CliResult<C> {
        let interceptor = OutgoingInterceptor::new(self.credential().as_ref())?;
        Ok(wrap(channel.clone(), interceptor))
    }

    /// Makes one identity call with the caller's credential, refreshing a stored login when
    /// needed: `identity.call(req, |mut c, r| async move { c.get_user(r).await })`.
    pub async fn call<Req, T, F, Fut>(&mut self, request: Req, f: F) -> CliResult<T>
    where
        Req: Clone,
        F: Fn(Client, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channel = self.conn.channel().await?;
        self.call_on(
            &channel,
            IdentityServiceClient::with_interceptor,
            request,
            f,
        )
        .await
    }

    /// Makes one call to any service over `channel` with the caller's credential, refreshing a
    /// stored login (against identity) when needed. `wrap` builds the client, e.g.
    /// `PolicyServiceClient::with_interceptor`.
    pub async fn call_on<C, W, Req, T, F, Fut>(
        &mut self,
        channel: &Channel,
        wrap: W,
        request: Req,
        f: F,
    ) -> CliResult<T>
    where
        W: Fn(Channel, OutgoingInterceptor) -> C,
        Req: Clone,
        F: Fn(C, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut refreshed = false;
        if let Auth::Stored(s) = &self.auth
            && s.access_expired(chrono::Utc::now())
        {
            self.refresh().await?;
            refreshed = true;
        }
        match f(self.client_on(channel, &wrap)?, request.clone()).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status)
                if status.code() == Code::Unauthenticated
                    && !refreshed
                    && matches!(self.auth, Auth::Stored(_)) =>
            {
                self.refresh().await?;
                let response = f(self.client_on(channel, &wrap)?, request).await;
                response
                    .map(tonic::Response::into_inner)
                    .map_err(|s| self.explain(s))
            }
            Err(status) => Err(self.explain(status)),
        }
    }

    /// Makes one policy call (see [`Identity::call_on`]).
    pub async fn call_policy<Req, T, F, Fut>(
        &mut self,
        policy: &mut Lazy,
        request: Req,
        f: F,
    ) -> CliResult<T>
    where
        Req: Clone,
        F: Fn(PolicyClient, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channel = policy.channel().await?;
        self.call_on(&channel, PolicyServiceClient::with_interceptor, request, f)
            .await
    }

    /// Makes one session-manager call (see [`Identity::call_on`]); a streaming call answers
    /// with its stream once the server has accepted it.
    pub async fn call_session<Req, T, F, Fut>(
        &mut self,
        session: &mut Lazy,
        request: Req,
        f: F,
    ) -> CliResult<T>
    where
        Req: Clone,
        F: Fn(SessionClient, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channel = session.channel().await?;
        self.call_on(&channel, SessionServiceClient::with_interceptor, request, f)
            .await
    }

    /// Makes one billing-usage call (see [`Identity::call_on`]).
    pub async fn call_usage<Req, T, F, Fut>(
        &mut self,
        usage: &mut Lazy,
        request: Req,
        f: F,
    ) -> CliResult<T>
    where
        Req: Clone,
        F: Fn(UsageClient, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channel = usage.channel().await?;
        self.call_on(&channel, UsageServiceClient::with_interceptor, request, f)
            .await
    }

    /// Adds a hint to Unauthenticated answers given to a caller without a credential.
    fn explain(&self, status: tonic::Status) -> CliError {
        if status.code() == Code::Unauthenticated && matches!(self.auth, Auth::None) {
            let hint = format!(
                "{} (not logged in to {}: run `atrium login`, or pass --token or --api-key)",
                status.message(),
                self.conn.endpoint
            );
            return CliError::Status(with_message(&status, hint));
        }
        CliError::Status(status)
    }

    /// Trades the stored refresh token for new tokens and saves them.
    async fn refresh(&mut self) -> CliResult<()> {
        let Auth::Stored(stored) = &self.auth else {
            return Ok(());
        };
        if stored.refresh_token.is_empty() {
            return Err(expired(&tonic::Status::unauthenticated("no refresh token")));
        }
        let request = RefreshRequest {
            refresh_token: stored.refresh_token.clone(),
        };
        let channel = self.conn.channel().await?;
        let response =
            IdentityServiceClient::with_interceptor(channel, OutgoingInterceptor::new(None)?)
                .refresh(request)
                .await
                .map_err(|s| match s.code() {
                    Code::Unauthenticated | Code::PermissionDenied | Code::NotFound => expired(&s),
                    _ => CliError::Status(s),
                })?
                .into_inner();
        if response.status != LoginStatus::Success as i32 || response.access_token.is_empty() {
            return Err(CliError::Local(anyhow!(
                "the server answered the refresh without an access token; run `atrium login`"
            )));
        }
        let updated = apply_login(Some(stored), &self.conn.endpoint, &response);
        credentials::save(self.config_dir()?, &updated)?;
        self.auth = Auth::Stored(updated);
        Ok(())
    }

    /// Stores a completed login (status SUCCESS) as the credentials file and uses it.
    pub fn save_login(&mut self, response: &LoginResponse) -> CliResult<PathBuf> {
        let creds = apply_login(None, &self.conn.endpoint, response);
        let dir = self.config_dir()?;
        credentials::save(dir, &creds)?;
        let path = credentials::path_in(dir);
        self.auth = Auth::Stored(creds);
        Ok(path)
    }

    /// Removes the credentials file (when the credential came from it).
    pub fn forget_stored(&self) -> CliResult<bool> {
        match (&self.auth, &self.config_dir) {
            (Auth::Stored(_), Some(dir)) => Ok(credentials::remove(dir)?),
            _ => Ok(false),
        }
    }
}

fn expired(status: &tonic::Status) -> CliError {
    CliError::Status(with_message(
        status,
        format!(
            "the stored login has expired or was ended ({}); run `atrium login`",
            status.message()
        ),
    ))
}

/// The credentials after a Login or Refresh answer; a refresh that does not rotate the refresh
/// token keeps the previous one.
fn apply_login(
    previous: Option<&StoredCredentials>,
    endpoint: &str,
    r: &LoginResponse,
) -> StoredCredentials {
    let keep = |new: &str, old: Option<&str>| {
        if new.is_empty() {
            old.unwrap_or_default().to_owned()
        } else {
            new.to_owned()
        }
    };
    let user = r.user.as_ref();
    StoredCredentials {
        endpoint: endpoint.to_owned(),
        access_token: r.access_token.clone(),
        access_token_expires_at: instant(r.access_token_expires_at.as_ref()),
        refresh_token: keep(&r.refresh_token, previous.map(|p| p.refresh_token.as_str())),
        refresh_token_expires_at: instant(r.refresh_token_expires_at.as_ref())
            .or_else(|| previous.and_then(|p| p.refresh_token_expires_at)),
        login_session_id: keep(
            &r.login_session_id,
            previous.map(|p| p.login_session_id.as_str()),
        ),
        user_id: keep(
            user.map(|u| u.id.as_str()).unwrap_or_default(),
            previous.map(|p| p.user_id.as_str()),
        ),
        username: keep(
            user.map(|u| u.username.as_str()).unwrap_or_default(),
            previous.map(|p| p.username.as_str()),
        ),
    }
}

/// The CA the CLI trusts, chosen once per process from `--ca`, `ATRIUM_CA` or the CA that
/// `atrium up` made under its data directory.
static TRUSTED_CA: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Picks the CA to trust: `--ca`, else `tls/ca.pem` under `$ATRIUM_DATA_DIR` or `./.atrium`.
pub fn trust(global: &GlobalArgs) {
    let found = global.ca.clone().or_else(|| {
        let dir = std::env::var_os("ATRIUM_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".atrium"));
        Some(dir.join("tls").join("ca.pem")).filter(|p| p.exists())
    });
    let _ = TRUSTED_CA.set(found);
}

async fn connect_channel(endpoint: &str, flag: &str) -> CliResult<Channel> {
    let target = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| usage(format!("{flag}: `{endpoint}` is not a valid URI ({e})")))?;
    let dialer = match target.uri().scheme_str() {
        Some("https") => {
            let ca = TRUSTED_CA.get().cloned().flatten().ok_or_else(|| {
                usage(format!(
                    "{flag}: `{endpoint}` speaks TLS; pass --ca with the CA certificate (atrium up keeps it in <data dir>/tls/ca.pem)"
                ))
            })?;
            Dialer::trusting(&ca).map_err(|e| usage(format!("--ca {}: {e:#}", ca.display())))?
        }
        Some("http") => Dialer::plaintext(),
        _ => {
            return Err(usage(format!(
                "{flag}: `{endpoint}` must be an https:// (or, for a plaintext server, http://) URL"
            )));
        }
    }
    .request_timeout(CALL_TIMEOUT);
    dialer
        .connect(endpoint)
        .await
        .map_err(|e| CliError::Connect {
            endpoint: endpoint.to_owned(),
            message: error_chain(e.as_ref()),
        })
}

/// "outer: inner: innermost", skipping repeated texts.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use atrium_proto::identity::v1::User;

    #[test]
    fn a_refresh_without_rotation_keeps_the_old_refresh_token() {
        let previous = StoredCredentials {
            endpoint: "http://e".into(),
            access_token: "old".into(),
            access_token_expires_at: None,
            refresh_token: "r1".into(),
            refresh_token_expires_at: None,
            login_session_id: "s1".into(),
            user_id: "u1".into(),
            username: "alice".into(),
        };
        let answer = LoginResponse {
            status: LoginStatus::Success as i32,
            access_token: "new".into(),
            ..Default::default()
        };
        let next = apply_login(Some(&previous), "http://e", &answer);
        assert_eq!(next.access_token, "new");
        assert_eq!(next.refresh_token, "r1");
        assert_eq!(next.username, "alice");
    }

    #[test]
    fn a_login_takes_everything_from_the_answer() {
        let answer = LoginResponse {
            status: LoginStatus::Success as i32,
            access_token: "a".into(),
            refresh_token: "r".into(),
            login_session_id: "s".into(),
            access_token_expires_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            user: Some(User {
                id: "u".into(),
                username: "bob".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let creds = apply_login(None, "http://e", &answer);
        assert_eq!(creds.refresh_token, "r");
        assert_eq!(creds.username, "bob");
        assert!(creds.access_token_expires_at.is_some());
    }

    #[tokio::test]
    async fn bad_endpoints_are_usage_errors() {
        let err = connect_channel("not a uri", "--endpoint").await.err();
        assert!(matches!(err, Some(CliError::Usage(m)) if m.contains("--endpoint")));
        let mut policy = Lazy::new("not a uri".into(), "--policy-endpoint");
        let err = policy.channel().await.err();
        assert!(matches!(err, Some(CliError::Usage(m)) if m.contains("--policy-endpoint")));
    }
}
