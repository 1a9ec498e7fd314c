//! Every database access of the identity service, and the one place database errors become
//! domain errors. Login sessions and their revocations are in `sessions`; retention pruning in
//! `retention`.

mod admins;
mod api_keys;
mod retention;
mod sessions;
pub use sessions::REVOCATION_RELEVANCE;

use std::sync::Arc;

use atrium_service_kit::db::contains_pattern;
use atrium_service_kit::error::unique_as;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::Notify;

use crate::entity::{
    audit_event, login_session, policy_outbox, signing_key, ssh_key, user, user_settings,
};

/// Filters for listing users.
#[derive(Debug, Default)]
pub struct UserFilter {
    pub username_contains: String,
    pub email_contains: String,
    pub realm: Option<String>,
    pub locked: Option<bool>,
    pub disabled: Option<bool>,
}

/// Filters for the audit trail.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Repo {
    db: DatabaseConnection,
    /// Whether user lifecycle events are queued for the policy service.
    outbox: bool,
    /// Notified after a commit that wrote revocations, so the feed picks them up at once.
    revoked: Arc<Notify>,
}

/// An outbox row for a user lifecycle event.
fn outbox_event(
    user: &str,
    username: &str,
    kind: &str,
    administrator: bool,
) -> policy_outbox::Model {
    policy_outbox::Model {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        user_id: user.to_owned(),
        username: username.to_owned(),
        kind: kind.to_owned(),
        administrator,
        created_at: Utc::now(),
        attempts: 0,
    }
}

impl Repo {
    pub fn new(db: DatabaseConnection, outbox: bool) -> Self {
        Self {
            db,
            outbox,
            revoked: Arc::new(Notify::new()),
        }
    }

    /// Fires after every commit that wrote revocations.
    pub fn revoked_signal(&self) -> Arc<Notify> {
        self.revoked.clone()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn count_users(&self) -> ApiResult<u64> {
        Ok(user::Entity::find().count(&self.db).await?)
    }

    /// Creates a user with default settings and an audit event, atomically.
    pub async fn create_user(
        &self,
        row: user::Model,
        settings: user_settings::Model,
        event: audit_event::Model,
    ) -> ApiResult<user::Model> {
        let what = format!("user {}", row.username);
        let txn = self.db.begin().await?;
        let created = user::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(|e| unique_as(e, &what))?;
        debug_assert_eq!(created, 1);
        user_settings::Entity::insert(settings.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        audit_event::Entity::insert(event.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        if self.outbox {
            let queued = outbox_event(&row.id, &row.username, "created", row.is_admin);
            policy_outbox::Entity::insert(queued.into_active_model())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(row)
    }

    pub async fn user(&self, id: &str) -> ApiResult<user::Model> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("user {id}")))
    }

    pub async fn user_by_username(&self, username: &str) -> ApiResult<Option<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::UsernameKey.eq(username.to_lowercase()))
            .one(&self.db)
            .await?)
    }

    /// Writes a changed user row and its audit event together; with `revoke_sessions`, ends
    /// every login session of the user in the same transaction (except `keep_session`).
    pub async fn save_user(
        &self,
        row: user::ActiveModel,
        event: Option<audit_event::Model>,
        revoke_sessions: bool,
        keep_session: Option<&str>,
    ) -> ApiResult<user::Model> {
        let txn = self.db.begin().await?;
        let saved = row
            .update(&txn)
            .await
            .map_err(|e| unique_as(e, "user with that username"))?;
        if let Some(event) = event {
            audit_event::Entity::insert(event.into_active_model())
                .exec_without_returning(&txn)
                .await?;
        }
        if revoke_sessions {
            Self::revoke_user_sessions(&txn, &saved.id, keep_session, Utc::now()).await?;
        }
        txn.commit().await?;
        if revoke_sessions {
            self.revoked.notify_one();
        }
        Ok(saved)
    }

    /// Deletes a user and everything hanging off them, atomically.
    pub async fn delete_user(&self, id: &str, event: audit_event::Model) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        let deleted = user::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(format!("user {id}")));
        }
        Self::revoke_user_sessions(&txn, id, None, Utc::now()).await?;
        login_session::Entity::delete_many()
            .filter(login_session::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        user_settings::Entity::delete_by_id(id).exec(&txn).await?;
        ssh_key::Entity::delete_by_id(id).exec(&txn).await?;
        audit_event::Entity::insert(event.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        if self.outbox {
            let queued = outbox_event(id, "", "deleted", false);
            policy_outbox::Entity::insert(queued.into_active_model())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        self.revoked.notify_one();
        Ok(())
    }

    pub async fn list_users(
        &self,
        filter: &UserFilter,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<user::Model>> {
        let mut cond = Condition::all();
        if !filter.username_contains.is_empty() {
            cond = cond.add(
                Expr::col(user::Column::UsernameKey)
                    .like(contains_pattern(&filter.username_contains)),
            );
        }
        if !filter.email_contains.is_empty() {
            cond = cond.add(
                Expr::expr(Func::lower(Expr::col(user::Column::Email)))
                    .like(contains_pattern(&filter.email_contains)),
            );
        }
        if let Some(realm) = &filter.realm {
            cond = cond.add(user::Column::Realm.eq(realm.as_str()));
        }
        if let Some(locked) = filter.locked {
            cond = cond.add(user::Column::Locked.eq(locked));
        }
        if let Some(disabled) = filter.disabled {
            cond = cond.add(user::Column::Disabled.eq(disabled));
        }
        if let Some(after) = after {
            cond = cond.add(user::Column::Id.gt(after));
        }
        Ok(user::Entity::find()
            .filter(cond)
            .order_by_asc(user::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Adds one failed login atomically and returns the new count and whether this attempt
    /// locked the account: at `lock_at` failures (0: never) it is locked until `until` (an
    /// automatic lockout, which expires), and its login sessions end, in one transaction.
    pub async fn record_failed_login(
        &self,
        id: &str,
        lock_at: u32,
        until: DateTime<Utc>,
    ) -> ApiResult<(i32, bool)> {
        let txn = self.db.begin().await?;
        user::Entity::update_many()
            .col_expr(
                user::Column::FailedLoginCount,
                Expr::col(user::Column::FailedLoginCount).add(1),
            )
            .filter(user::Column::Id.eq(id))
            // A locked account's count stays where the lock left it.
            .filter(user::Column::Locked.eq(false))
            .exec(&txn)
            .await?;
        let mut newly_locked = false;
        if lock_at > 0 {
            let locked = user::Entity::update_many()
                .col_expr(user::Column::Locked, Expr::value(true))
                .col_expr(user::Column::LockedUntil, Expr::value(until))
                .filter(user::Column::Id.eq(id))
                .filter(user::Column::Locked.eq(false))
                .filter(user::Column::FailedLoginCount.gte(i64::from(lock_at)))
                .exec(&txn)
                .await?;
            newly_locked = locked.rows_affected > 0;
        }
        if newly_locked {
            Self::revoke_user_sessions(&txn, id, None, Utc::now()).await?;
        }
        let row = user::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
        txn.commit().await?;
        if newly_locked {
            self.revoked.notify_one();
        }
        Ok((row.failed_login_count, newly_locked))
    }

    /// Lifts an automatic lockout whose time is up (a manual lock has no `locked_until` and
    /// stays); true if it did.
    pub async fn expire_lockout(&self, id: &str, now: DateTime<Utc>) -> ApiResult<bool> {
        let lifted = user::Entity::update_many()
            .col_expr(user::Column::Locked, Expr::value(false))
            .col_expr(
                user::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(user::Column::FailedLoginCount, Expr::value(0))
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::Locked.eq(true))
            .filter(user::Column::LockedUntil.lte(now))
            .exec(&self.db)
            .await?;
        Ok(lifted.rows_affected == 1)
    }

    /// Records that a TOTP code of `step` was used; false if that step (or a later one) was
    /// already used, atomically.
    pub async fn claim_totp_step(&self, id: &str, step: i64) -> ApiResult<bool> {
        let claimed = user::Entity::update_many()
            .col_expr(user::Column::TotpLastStep, Expr::value(step))
            .filter(user::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(user::Column::TotpLastStep.is_null())
                    .add(user::Column::TotpLastStep.lt(step)),
            )
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    /// After a correct password (and code): resets the failed count, atomically, only if the
    /// account is neither locked nor disabled now; false if it is.
    pub async fn claim_login(&self, id: &str) -> ApiResult<bool> {
        let claimed = user::Entity::update_many()
            .col_expr(user::Column::FailedLoginCount, Expr::value(0))
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::Locked.eq(false))
            .filter(user::Column::Disabled.eq(false))
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    pub async fn touch_last_session(&self, id: &str, at: DateTime<Utc>) -> ApiResult<()> {
        user::Entity::update_many()
            .col_expr(user::Column::LastSessionAt, Expr::value(at))
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    // ---- audit -------------------------------------------------------------------------

    pub async fn record<C: ConnectionTrait>(conn: &C, event: audit_event::Model) -> ApiResult<()> {
        audit_event::Entity::insert(event.into_active_model())
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<audit_event::Model>> {
        let mut query = audit_event::Entity::find()
            .order_by_desc(audit_event::Column::Id)
            .limit(limit);
        if let Some(user_id) = &filter.user_id {
            query = query.filter(audit_event::Column::UserId.eq(user_id.as_str()));
        }
        if let Some(kind) = &filter.kind {
            query = query.filter(audit_event::Column::Kind.eq(kind.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_event::Column::At.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_event::Column::At.lt(until));
        }
        if let Some(before) = before {
            query = query.filter(audit_event::Column::Id.lt(before));
        }
        Ok(query.all(&self.db).await?)
    }

    // ---- settings and SSH keys ---------------------------------------------------------

    pub async fn settings(&self, user_id: &str) -> ApiResult<Option<user_settings::Model>> {
        Ok(user_settings::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?)
    }

    pub async fn ssh_key(&self, user_id: &str) -> ApiResult<Option<ssh_key::Model>> {
        Ok(ssh_key::Entity::find_by_id(user_id).one(&self.db).await?)
    }

    /// Inserts or replaces a user's SSH key, with its audit event.
    pub async fn put_ssh_key(
        &self,
        row: ssh_key::Model,
        event: audit_event::Model,
    ) -> ApiResult<()> {
        let txn = self.db.begin().await?;
        ssh_key::Entity::delete_by_id(row.user_id.as_str())
            .exec(&txn)
            .await?;
        ssh_key::Entity::insert(row.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        audit_event::Entity::insert(event.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Writes a changed row of any identity table together with an audit event.
    pub async fn save_with_event<A>(&self, row: A, event: audit_event::Model) -> ApiResult<()>
    where
        A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
        <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    {
        let txn = self.db.begin().await?;
        row.update(&txn).await?;
        audit_event::Entity::insert(event.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    // ---- signing keys ------------------------------------------------------------------

    pub async fn signing_keys(&self) -> ApiResult<Vec<signing_key::Model>> {
        Ok(signing_key::Entity::find()
            .order_by_asc(signing_key::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn insert_signing_key(&self, row: signing_key::Model) -> ApiResult<()> {
        signing_key::Entity::insert(row.into_active_model())
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    pub async fn retire_signing_keys(&self, at: DateTime<Utc>) -> ApiResult<()> {
        signing_key::Entity::update_many()
            .col_expr(signing_key::Column::RetiredAt, Expr::value(at))
            .filter(signing_key::Column::RetiredAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn delete_signing_keys_retired_before(&self, cutoff: DateTime<Utc>) -> ApiResult<()> {
        signing_key::Entity::delete_many()
            .filter(signing_key::Column::RetiredAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    // ---- policy outbox -----------------------------------------------------------------

    pub async fn pending_outbox(&self, limit: u64) -> ApiResult<Vec<policy_outbox::Model>> {
        Ok(policy_outbox::Entity::find()
            .order_by_asc(policy_outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    pub async fn outbox_delivered(&self, id: &str) -> ApiResult<()> {
        policy_outbox::Entity::delete_by_id(id)
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn outbox_failed(&self, id: &str) -> ApiResult<()> {
        policy_outbox::Entity::update_many()
            .col_expr(
                policy_outbox::Column::Attempts,
                Expr::col(policy_outbox::Column::Attempts).add(1),
            )
            .filter(policy_outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
