//! Every database access of the policy service, and the one place database errors become domain
//! errors. Every write takes the [`Change`] it makes and records it in the audit trail in the
//! same transaction; writes that could take administrator away from someone run under the
//! last-administrator guard ([`admins`]).

mod admins;
mod audit;
mod groups;
mod mappings;
mod workspaces;

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::sea_query::{LikeExpr, OnConflict};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, SqlErr};

pub use audit::{AuditFilter, Change};

fn map_err(error: DbErr, what: &str) -> ApiError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::AlreadyExists(what.to_owned()),
        _ => ApiError::from(error),
    }
}

fn contains_pattern(needle: &str) -> LikeExpr {
    let escaped: String = needle
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// Inserts a row unless its primary key exists; true when inserted.
async fn insert_if_missing<C, A>(
    conn: &C,
    row: A,
    key: impl IntoIterator<Item = <A::Entity as EntityTrait>::Column>,
) -> ApiResult<bool>
where
    C: ConnectionTrait,
    A: ActiveModelTrait + Send,
{
    let inserted = <A::Entity as EntityTrait>::insert(row)
        .on_conflict(OnConflict::columns(key).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(inserted > 0)
}

#[derive(Clone)]
pub struct Repo {
    db: DatabaseConnection,
}

impl Repo {
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}
