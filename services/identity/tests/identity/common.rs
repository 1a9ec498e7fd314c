//! What every scenario shares: starting a server, making users and clients, and asserting on
//! gRPC outcomes.

use std::time::Duration;

pub use atrium_identity::testing::Client;
use atrium_identity::testing::fake_policy::{
    FakePolicy, FakePolicyGuard, start_identity_with_policy,
};
use atrium_identity::testing::{ADMIN_PASSWORD, TestIdentity};
use atrium_identity::totp;
pub use atrium_proto::common::v1::PageRequest;
pub use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{Credential, Rights};
pub use atrium_service_kit::testing::Backend;
use sea_orm::{ConnectionTrait, Database, Statement};
pub use tonic::Code;

/// Generates `mod sqlite` and `mod postgres`, each with one `#[tokio::test]` per named scenario
/// calling `super::<scenario>(backend)`.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )+
        }
    };
}
pub(crate) use both_backends;

/// The password of every user the scenarios create.
pub const PASSWORD: &str = "correct horse battery";
pub const NEW_PASSWORD: &str = "staple tinned gherkin";

/// A running server and a client logged in as its bootstrap admin; with a fake policy service
/// when started by [`Env::start_with_policy`] (users' rights and 2FA settings come from it).
pub struct Env {
    pub server: TestIdentity,
    pub admin: Client,
    pub policy: Option<FakePolicy>,
    _policy_guard: Option<FakePolicyGuard>,
}

impl Env {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut atrium_identity::IdentityConfig),
    ) -> Self {
        let server = TestIdentity::start_with(backend, tweak)
            .await
            .expect("start identity");
        let admin = server.admin().await.expect("admin login");
        Self {
            server,
            admin,
            policy: None,
            _policy_guard: None,
        }
    }

    /// Identity wired to a fake policy service.
    pub async fn start_with_policy(
        backend: Backend,
        tweak: impl FnOnce(&mut atrium_identity::IdentityConfig),
    ) -> Self {
        let (server, policy, guard) = start_identity_with_policy(backend, tweak)
            .await
            .expect("start identity with a fake policy");
        let admin = server.admin().await.expect("admin login");
        Self {
            server,
            admin,
            policy: Some(policy),
            _policy_guard: Some(guard),
        }
    }

    /// The fake policy service (only with [`Env::start_with_policy`]).
    pub fn policy(&self) -> &FakePolicy {
        self.policy.as_ref().expect("started with a fake policy")
    }

    /// Gives `user_id` exactly `permissions` (not administrator).
    pub fn grant(&self, user_id: &str, permissions: &[&str]) {
        self.policy().set_rights(
            user_id,
            Rights::new(false, permissions.iter().map(|p| (*p).to_owned())),
        );
    }

    /// A new local user holding exactly `permissions`, and a client signed in as them.
    pub async fn principal(&self, username: &str, permissions: &[&str]) -> (pb::User, Client) {
        let user = self.create_user(username).await;
        self.grant(&user.id, permissions);
        let (_, client) = self.login_ok(username, PASSWORD).await;
        (user, client)
    }

    pub fn admin(&self) -> Client {
        self.admin.clone()
    }

    pub async fn anonymous(&self) -> Client {
        self.server.anonymous().await.expect("anonymous client")
    }

    pub async fn service(&self) -> Client {
        self.server.service().await.expect("service client")
    }

    pub async fn bearer(&self, token: &str) -> Client {
        self.client(Credential::Bearer(token.to_owned())).await
    }

    pub async fn client(&self, credential: Credential) -> Client {
        self.server
            .client(Some(credential))
            .await
            .expect("client with credential")
    }

    /// The bootstrap admin as the API shows it.
    pub async fn admin_user(&self) -> pb::User {
        self.get_user(&self.admin_id().await).await
    }

    pub async fn admin_id(&self) -> String {
        self.admin()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .must()
            .user_id
    }

    /// Creates a local user with [`PASSWORD`].
    pub async fn create_user(&self, username: &str) -> pb::User {
        self.create(pb::CreateUserRequest {
            username: username.into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
    }

    /// Creates an SSO user (no password, so no hashing: cheap).
    pub async fn create_sso_user(&self, username: &str, email: &str) -> pb::User {
        self.create(pb::CreateUserRequest {
            username: username.into(),
            realm: pb::Realm::Saml as i32,
            email: email.into(),
            ..Default::default()
        })
        .await
    }

    pub async fn create(&self, request: pb::CreateUserRequest) -> pb::User {
        self.admin().create_user(request).await.must()
    }

    pub async fn get_user(&self, user_id: &str) -> pb::User {
        self.admin().get_user(by_id(user_id)).await.must()
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply<pb::LoginResponse> {
        self.login_with(pb::LoginRequest {
            username: username.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
    }

    pub async fn login_with(&self, request: pb::LoginRequest) -> Reply<pb::LoginResponse> {
        self.anonymous().await.login(request).await
    }

    /// Logs in with full tokens (asserting SUCCESS) and returns the response and a client.
    pub async fn login_ok(&self, username: &str, password: &str) -> (pb::LoginResponse, Client) {
        let response = self.login(username, password).await.must();
        assert_eq!(response.status(), pb::LoginStatus::Success, "{response:?}");
        assert!(!response.access_token.is_empty());
        assert!(!response.refresh_token.is_empty());
        let client = self.bearer(&response.access_token).await;
        (response, client)
    }

    /// A client for a new local user `username`, and that user.
    pub async fn user_client(&self, username: &str) -> (pb::User, Client) {
        let user = self.create_user(username).await;
        let (_, client) = self.login_ok(username, PASSWORD).await;
        (user, client)
    }

    pub async fn refresh(&self, token: &str) -> Reply<pb::LoginResponse> {
        self.anonymous()
            .await
            .refresh(pb::RefreshRequest {
                refresh_token: token.into(),
            })
            .await
    }

    /// Every user, following pages to the end.
    pub async fn all_users(&self) -> Vec<pb::User> {
        let mut users = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .admin()
                .list_users(pb::ListUsersRequest {
                    page: Some(PageRequest {
                        page_size: 1000,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .must();
            users.extend(page.users);
            token = page.page.unwrap_or_default().next_page_token;
            if token.is_empty() {
                return users;
            }
        }
    }

    /// Every audit event matching `request` (newest first), following pages to the end.
    pub async fn audit(&self, mut request: pb::ListAuditEventsRequest) -> Vec<pb::AuditEvent> {
        let mut events = Vec::new();
        loop {
            let page = self.admin().list_audit_events(request.clone()).await.must();
            events.extend(page.events);
            let token = page.page.unwrap_or_default().next_page_token;
            if token.is_empty() {
                return events;
            }
            request.page = Some(PageRequest {
                page_size: request.page.map_or(0, |p| p.page_size),
                page_token: token,
            });
        }
    }

    pub async fn audit_kind(&self, kind: &str) -> Vec<pb::AuditEvent> {
        self.audit(pb::ListAuditEventsRequest {
            kind: kind.into(),
            ..Default::default()
        })
        .await
    }

    /// Runs a one-column query straight on the service's database: each row's value as text.
    pub async fn sql(&self, query: &str) -> Vec<Option<String>> {
        let db = Database::connect(self.server.config.database_url.as_str())
            .await
            .expect("connect to the test database");
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), query))
            .await
            .expect("query");
        db.close().await.ok();
        rows.iter()
            .map(|row| {
                row.try_get_by_index::<Option<String>>(0)
                    .expect("text column")
            })
            .collect()
    }
}

pub fn by_id(user_id: &str) -> pb::GetUserRequest {
    pb::GetUserRequest {
        key: Some(pb::get_user_request::Key::UserId(user_id.into())),
    }
}

pub fn by_name(username: &str) -> pb::GetUserRequest {
    pb::GetUserRequest {
        key: Some(pb::get_user_request::Key::Username(username.into())),
    }
}

pub fn update(user_id: &str) -> pb::UpdateUserRequest {
    pb::UpdateUserRequest {
        user_id: user_id.into(),
        ..Default::default()
    }
}

pub use atrium_service_kit::testing::{Outcome, Reply};

/// The base32 TOTP secret's code `offset` steps from now.
pub fn totp_code(secret_b32: &str, offset: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .expect("base32 secret");
    let step = chrono::Utc::now().timestamp().div_euclid(totp::STEP_SECS);
    totp::code_at(&secret, step + offset)
}

/// A six-digit code that is valid at no step within `radius` of now.
pub fn wrong_totp_code(secret_b32: &str, radius: i64) -> String {
    let near: Vec<String> = (-radius..=radius)
        .map(|d| totp_code(secret_b32, d))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .expect("some code is wrong")
}

/// Waits, if needed, so that the next few seconds stay inside one TOTP step: codes computed
/// here for "one step off" are then judged against the same step by the server.
pub async fn away_from_step_edge() {
    let into_step = chrono::Utc::now().timestamp().rem_euclid(totp::STEP_SECS);
    if into_step >= totp::STEP_SECS - 4 {
        let wait = u64::try_from(totp::STEP_SECS - into_step).unwrap_or(4);
        tokio::time::sleep(Duration::from_millis(wait * 1000 + 200)).await;
    }
}

/// The JWT header's `kid`.
pub fn token_kid(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().expect("JWT header");
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url header");
    let header: serde_json::Value = serde_json::from_slice(&header).expect("JSON header");
    header["kid"].as_str().expect("kid").to_owned()
}

pub fn admin_password() -> &'static str {
    ADMIN_PASSWORD
}

/// Seconds from now until `ts` (negative when past).
pub fn secs_from_now(ts: &Option<prost_types::Timestamp>) -> i64 {
    let ts = ts.as_ref().expect("timestamp");
    ts.seconds - chrono::Utc::now().timestamp()
}

/// A timestamp as nanoseconds since the epoch, for ordering.
pub fn nanos(ts: &Option<prost_types::Timestamp>) -> i128 {
    let ts = ts.as_ref().expect("timestamp");
    i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos)
}
