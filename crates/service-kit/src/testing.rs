//! Test support: a fresh database per test, on SQLite (a temp file) or on the PostgreSQL server
//! named by `ATRIUM_TEST_POSTGRES_URL` (which `scripts/test` starts).

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, Database};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().context("create temp dir")?;
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Ok(Self {
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = std::env::var("ATRIUM_TEST_POSTGRES_URL").context(
                    "ATRIUM_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts PostgreSQL",
                )?;
                let name = format!("atrium_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .context("connect to test PostgreSQL")?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .context("create test database")?;
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                })
            }
        }
    }
}

impl TestDatabase {
    /// PostgreSQL only: drops the database under whoever uses it (closing their connections),
    /// to test what a service does when its database goes away.
    pub async fn destroy(&self) -> anyhow::Result<()> {
        let (base, name) = self
            .url
            .rsplit_once('/')
            .context("a PostgreSQL test database URL")?;
        anyhow::ensure!(
            self._dir.is_none(),
            "only PostgreSQL test databases can be destroyed"
        );
        let admin = Database::connect(format!("{base}/postgres").as_str())
            .await
            .context("connect to test PostgreSQL")?;
        admin
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .context("drop test database")?;
        admin.close().await.ok();
        Ok(())
    }
}

/// What a unary call answers.
pub type Reply<T> = Result<tonic::Response<T>, tonic::Status>;

/// Assertions on the outcome of a unary call, for service tests.
pub trait Outcome<T> {
    /// The successful response.
    fn must(self) -> T;
    /// The error, asserting its code.
    fn fails(self, code: tonic::Code) -> tonic::Status;
    /// InvalidArgument naming `field` in its error detail.
    fn invalid(self, field: &str) -> tonic::Status;
}

impl<T: std::fmt::Debug> Outcome<T> for Reply<T> {
    #[track_caller]
    fn must(self) -> T {
        match self {
            Ok(response) => response.into_inner(),
            Err(status) => panic!("call failed: {:?}: {}", status.code(), status.message()),
        }
    }

    #[track_caller]
    fn fails(self, code: tonic::Code) -> tonic::Status {
        match self {
            Ok(response) => panic!("expected {code:?}, got success: {:?}", response.get_ref()),
            Err(status) => {
                assert_eq!(status.code(), code, "{}", status.message());
                status
            }
        }
    }

    #[track_caller]
    fn invalid(self, field: &str) -> tonic::Status {
        let status = self.fails(tonic::Code::InvalidArgument);
        let Some(detail) = crate::error::error_detail(&status) else {
            panic!(
                "InvalidArgument without an ErrorDetail: {}",
                status.message()
            );
        };
        assert_eq!(detail.field, field, "{}", status.message());
        assert_eq!(detail.reason, "invalid_field");
        status
    }
}

/// One CA per test process, with a certificate for every service (in a temp dir that lives
/// as long as the process).
pub fn pki() -> &'static crate::pki::LocalCa {
    static PKI: std::sync::OnceLock<(crate::pki::LocalCa, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir for the test CA");
        let ca = crate::pki::LocalCa::ensure(dir.path()).expect("create the test CA");
        (ca, dir)
    })
    .0
}

/// The TLS settings of `service` under the test CA.
pub fn tls_for(service: crate::auth::ServiceId) -> crate::tls::TlsConfig {
    pki().tls_config(service)
}

/// Dials as `service` (presenting its certificate).
pub fn dialer_as(service: crate::auth::ServiceId) -> crate::client::Dialer {
    crate::client::Dialer::for_service(&tls_for(service)).expect("a service dialer")
}

/// Dials as a user's program: trusts the test CA, presents no certificate.
pub fn user_dialer() -> crate::client::Dialer {
    crate::client::Dialer::trusting(&pki().ca_path()).expect("a user dialer")
}

/// A connection to `endpoint`: TLS with the test CA for `https://`, plaintext for `http://`.
pub async fn channel(endpoint: &str) -> anyhow::Result<tonic::transport::Channel> {
    if endpoint.starts_with("https://") {
        user_dialer().connect(endpoint).await
    } else {
        crate::client::Dialer::plaintext().connect(endpoint).await
    }
}

/// What `grpc.health.v1.Health/Check` answers for `service` ("" = the server as a whole).
pub async fn health_status(
    endpoint: &str,
    service: &str,
) -> Result<tonic_health::pb::health_check_response::ServingStatus, tonic::Status> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(
        channel(endpoint)
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?,
    );
    let request = tonic_health::pb::HealthCheckRequest {
        service: service.to_owned(),
    };
    Ok(client.check(request).await?.into_inner().status())
}

/// The service names gRPC reflection (v1) lists.
pub async fn reflected_services(endpoint: &str) -> anyhow::Result<Vec<String>> {
    use futures::StreamExt as _;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(channel(endpoint).await?);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let response = responses
        .next()
        .await
        .context("reflection answered nothing")??;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    }
}

/// `GET path` over HTTPS/1.1 with the test CA (for `/metrics`): the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls = crate::tls::ClientTls::http1(&pki().ca_path())?;
    let mut stream = tls.connect(&addr.ip().to_string(), addr.port()).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    // A TLS peer may close without close_notify after the body; what arrived is the answer.
    if let Err(e) = stream.read_to_string(&mut response).await
        && response.is_empty()
    {
        return Err(e.into());
    }
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("an HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("an HTTP status line")?;
    Ok((status, body.to_owned()))
}

/// In an OpenMetrics (Prometheus) text exposition, the value of the sample whose name and labels are exactly
/// `series` (e.g. `atrium_x_total{a="b"}`).
pub fn metric_sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// Whether a Docker-backed test should run (`ATRIUM_TEST_DOCKER=1`, which `scripts/test` sets
/// when Docker answers). Under `CI=true` a missing Docker fails the test instead of letting it
/// pass by doing nothing.
#[track_caller]
pub fn docker_enabled(test: &str) -> bool {
    if std::env::var("ATRIUM_TEST_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: Docker is required under CI=true, but ATRIUM_TEST_DOCKER is not 1"
    );
    eprintln!("{test}: ATRIUM_TEST_DOCKER is not 1; this Docker test did nothing");
    false
}
