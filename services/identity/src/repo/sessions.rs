//! Login sessions and their revocations. Every path that ends sessions (lock, disable, delete,
//! logout, a new password, a forced reset, 2FA reset) goes through [`Repo::revoke_user_sessions`]
//! or [`Repo::revoke_login_session`], which write a `revocations` row per ended session in the
//! same transaction, for `WatchRevocations` and the auth layers fed by it.

use atrium_service_kit::ApiResult;
use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, NotSet, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::Repo;
use crate::entity::{login_session, revocation};

/// Access tokens live at most this long (the configured TTL is capped at it), so a revocation
/// may be forgotten this long (plus clock skew) after it was written.
pub const REVOCATION_RELEVANCE: Duration = Duration::seconds(15 * 60 + 60);

impl Repo {
    pub async fn insert_login_session(&self, row: login_session::Model) -> ApiResult<()> {
        login_session::Entity::insert(row.into_active_model())
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    pub async fn login_session(&self, id: &str) -> ApiResult<Option<login_session::Model>> {
        Ok(login_session::Entity::find_by_id(id).one(&self.db).await?)
    }

    pub async fn login_session_by_refresh(
        &self,
        hash: &str,
    ) -> ApiResult<Option<login_session::Model>> {
        Ok(login_session::Entity::find()
            .filter(login_session::Column::RefreshHash.eq(hash))
            .one(&self.db)
            .await?)
    }

    pub async fn login_session_by_previous_refresh(
        &self,
        hash: &str,
    ) -> ApiResult<Option<login_session::Model>> {
        Ok(login_session::Entity::find()
            .filter(login_session::Column::PreviousRefreshHash.eq(hash))
            .one(&self.db)
            .await?)
    }

    /// Replaces the refresh token if it is still `old`; false when another refresh won.
    pub async fn rotate_refresh(
        &self,
        id: &str,
        old: &str,
        new: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<bool> {
        let result = login_session::Entity::update_many()
            .col_expr(login_session::Column::RefreshHash, Expr::value(new))
            .col_expr(login_session::Column::PreviousRefreshHash, Expr::value(old))
            .col_expr(login_session::Column::LastUsedAt, Expr::value(now))
            .filter(login_session::Column::Id.eq(id))
            .filter(login_session::Column::RefreshHash.eq(old))
            .filter(login_session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Revokes live login sessions of a user (all, or all but `except`), writing their
    /// revocations on `conn` (a transaction, so with the change that caused it); returns how
    /// many ended.
    pub async fn revoke_user_sessions<C: ConnectionTrait>(
        conn: &C,
        user_id: &str,
        except: Option<&str>,
        now: DateTime<Utc>,
    ) -> ApiResult<u64> {
        let mut live = login_session::Entity::find()
            .select_only()
            .column(login_session::Column::Id)
            .filter(login_session::Column::UserId.eq(user_id))
            .filter(login_session::Column::RevokedAt.is_null());
        if let Some(except) = except {
            live = live.filter(login_session::Column::Id.ne(except));
        }
        let ids: Vec<String> = live.into_tuple().all(conn).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ended = login_session::Entity::update_many()
            .col_expr(login_session::Column::RevokedAt, Expr::value(now))
            .filter(login_session::Column::Id.is_in(ids.iter().map(String::as_str)))
            .filter(login_session::Column::RevokedAt.is_null())
            .exec(conn)
            .await?
            .rows_affected;
        insert_revocations(conn, user_id, &ids, now).await?;
        Ok(ended)
    }

    /// Ends every live login session of a user (LogoutEverywhere), in one transaction.
    pub async fn end_user_sessions(&self, user_id: &str, now: DateTime<Utc>) -> ApiResult<u64> {
        let txn = self.db.begin().await?;
        let ended = Self::revoke_user_sessions(&txn, user_id, None, now).await?;
        txn.commit().await?;
        if ended > 0 {
            self.revoked.notify_one();
        }
        Ok(ended)
    }

    /// Ends one login session (and writes its revocation); returns 1 if it was live.
    pub async fn revoke_login_session(&self, id: &str, now: DateTime<Utc>) -> ApiResult<u64> {
        let txn = self.db.begin().await?;
        let Some(session) = login_session::Entity::find_by_id(id).one(&txn).await? else {
            return Ok(0);
        };
        let ended = login_session::Entity::update_many()
            .col_expr(login_session::Column::RevokedAt, Expr::value(now))
            .filter(login_session::Column::Id.eq(id))
            .filter(login_session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected;
        if ended > 0 {
            insert_revocations(&txn, &session.user_id, &[session.id], now).await?;
        }
        txn.commit().await?;
        if ended > 0 {
            self.revoked.notify_one();
        }
        Ok(ended)
    }

    /// Revocations with a cursor above `after` that still matter at `now`, oldest first.
    pub async fn revocations_after(
        &self,
        after: i64,
        now: DateTime<Utc>,
        limit: u64,
    ) -> ApiResult<Vec<revocation::Model>> {
        Ok(revocation::Entity::find()
            .filter(revocation::Column::Id.gt(after))
            .filter(revocation::Column::ForgetAfter.gt(now))
            .order_by_asc(revocation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Revocations written since `since`, whatever their cursor: a transaction that took its
    /// cursor earlier may commit after a later one, so the feed looks back over a short window.
    pub async fn revocations_since(
        &self,
        since: DateTime<Utc>,
    ) -> ApiResult<Vec<revocation::Model>> {
        Ok(revocation::Entity::find()
            .filter(revocation::Column::CreatedAt.gte(since))
            .order_by_asc(revocation::Column::Id)
            .limit(10_000)
            .all(&self.db)
            .await?)
    }

    /// Forgets revocations whose tokens have all expired.
    pub async fn prune_revocations(&self, now: DateTime<Utc>) -> ApiResult<u64> {
        Ok(revocation::Entity::delete_many()
            .filter(revocation::Column::ForgetAfter.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}

async fn insert_revocations<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    session_ids: &[String],
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let rows = session_ids.iter().map(|sid| revocation::ActiveModel {
        id: NotSet,
        login_session_id: Set(sid.clone()),
        user_id: Set(user_id.to_owned()),
        forget_after: Set(now + REVOCATION_RELEVANCE),
        created_at: Set(now),
    });
    revocation::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
