//! Each service's database URL: a SQLite file under the data directory, or a PostgreSQL
//! database of its own (created when missing).

use std::path::Path;

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use crate::config::Storage;
use crate::role::Role;

/// The database name part for `role` (`session_manager` for the session-manager).
fn database_name(role: Role) -> String {
    role.name().replace('-', "_")
}

/// The URL `role` connects to.
pub(crate) fn url(storage: &Storage, data_dir: &Path, role: Role) -> anyhow::Result<String> {
    match storage {
        Storage::Sqlite => Ok(format!(
            "sqlite://{}",
            data_dir.join(format!("{}.db", role.name())).display()
        )),
        Storage::Postgres { admin_url, prefix } => {
            let mut url = url::Url::parse(admin_url.expose())
                .context("the PostgreSQL URL is not a valid URL")?;
            url.set_path(&format!("/{prefix}{}", database_name(role)));
            Ok(url.to_string())
        }
    }
}

/// Creates the PostgreSQL databases of `roles` that do not exist yet (nothing for SQLite,
/// whose files the services create).
pub(crate) async fn ensure_databases(storage: &Storage, roles: &[Role]) -> anyhow::Result<()> {
    let Storage::Postgres { admin_url, prefix } = storage else {
        return Ok(());
    };
    let admin = Database::connect(admin_url.expose())
        .await
        .context("connect to PostgreSQL to create the service databases")?;
    for role in roles {
        let name = format!("{prefix}{}", database_name(*role));
        let exists = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_database WHERE datname = $1",
                [name.clone().into()],
            ))
            .await
            .with_context(|| format!("look for database {name}"))?
            .is_some();
        if exists {
            continue;
        }
        // `name` is checked to be `[a-z0-9_]` (LaunchConfig::validate), so quoting suffices.
        if let Err(e) = admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            // Another process may have created it in between.
            let created_meanwhile = admin
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT 1 FROM pg_database WHERE datname = $1",
                    [name.clone().into()],
                ))
                .await
                .ok()
                .flatten()
                .is_some();
            if !created_meanwhile {
                return Err(e).with_context(|| format!("create database {name}"));
            }
        }
        tracing::info!(database = %name, "created the {role} database");
    }
    admin.close().await.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use atrium_service_kit::Secret;

    use super::*;

    #[test]
    fn urls_name_one_database_per_service() {
        let dir = Path::new("/data");
        assert_eq!(
            url(&Storage::Sqlite, dir, Role::Identity).expect("a url"),
            "sqlite:///data/identity.db"
        );
        let postgres = Storage::Postgres {
            admin_url: Secret::new("postgres://atrium:pw@db:5432/postgres?sslmode=disable"),
            prefix: "atrium_".into(),
        };
        assert_eq!(
            url(&postgres, dir, Role::SessionManager).expect("a url"),
            "postgres://atrium:pw@db:5432/atrium_session_manager?sslmode=disable"
        );
        assert_eq!(
            url(&Storage::Sqlite, dir, Role::BillingUsage).expect("a url"),
            "sqlite:///data/billing-usage.db"
        );
        assert_eq!(
            url(&postgres, dir, Role::BillingUsage).expect("a url"),
            "postgres://atrium:pw@db:5432/atrium_billing_usage?sslmode=disable"
        );
    }
}
