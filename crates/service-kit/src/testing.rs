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
