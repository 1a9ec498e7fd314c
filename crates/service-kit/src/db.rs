//! Database connection and migration. SQLite or PostgreSQL, chosen by the URL; migrations run
//! under a lock so replicas starting together do not race.

use std::time::Duration;

use anyhow::Context as _;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

/// Connects to `url` (`sqlite://path/file.db` or `postgres://…`). SQLite files and their
/// directories are created if missing. SQLite gets one connection: it serialises writers anyway,
/// and one connection never fails with "database is locked".
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut url = url.to_owned();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        if let Some(path) = sqlite_path(&url)
            && let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
    } else if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        anyhow::bail!("database_url must start with sqlite:// or postgres://");
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(if is_sqlite { 1 } else { 16 })
        .min_connections(if is_sqlite { 1 } else { 2 })
        .acquire_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .context("connect to the database")?;
    if is_sqlite {
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;",
        )
        .await
        .context("configure sqlite")?;
    }
    Ok(db)
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Applies `M`'s pending migrations. On PostgreSQL they run in one transaction holding an
/// advisory lock named after `lock_name`; SQLite's single writer serialises them already.
pub async fn migrate<M: MigratorTrait>(
    db: &DatabaseConnection,
    lock_name: &str,
) -> anyhow::Result<()> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let txn = db.begin().await.context("begin migration transaction")?;
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [lock_key(lock_name).into()],
            ))
            .await
            .context("take the migration lock")?;
            M::up(&txn, None).await.context("run migrations")?;
            txn.commit().await.context("commit migrations")?;
        }
        _ => M::up(db, None).await.context("run migrations")?,
    }
    Ok(())
}

/// A case-insensitive LIKE pattern matching `needle` anywhere (compare it with a lower-cased
/// column), with the needle's own wildcards escaped.
pub fn contains_pattern(needle: &str) -> sea_orm::sea_query::LikeExpr {
    let mut escaped = String::with_capacity(needle.len() + 2);
    escaped.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    sea_orm::sea_query::LikeExpr::new(escaped).escape('\\')
}

/// A stable 64-bit key for an advisory lock (FNV-1a).
fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Connects and migrates.
pub async fn connect_and_migrate<M: MigratorTrait>(
    url: &str,
    lock_name: &str,
) -> anyhow::Result<DatabaseConnection> {
    let db = connect(url).await?;
    migrate::<M>(&db, lock_name).await?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db?mode=rwc"),
            Some("/tmp/a.db")
        );
        assert_eq!(sqlite_path("sqlite://data/a.db"), Some("data/a.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("identity"), lock_key("identity"));
        assert_ne!(lock_key("identity"), lock_key("policy"));
    }
}
