//! The ledger's repository: every database access of billing-usage, with database errors
//! mapped to domain errors in one place.
//!
//! Ingestion keeps three derived views in the same transaction as the events: each session's
//! folded charge (`usage_sessions`), the open sessions of each subject (`usage_subjects`: the
//! owner and the owner's groups), and per-day totals of ended sessions (`usage_rollups`). A
//! check then reads at most a month of day rows plus the subject's open sessions: it never
//! scans the ledger.

use std::collections::{BTreeMap, BTreeSet};

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::{
    ledger_meta, usage_event, usage_rollup, usage_session, usage_subject, workspace_rate,
};
use crate::ledger::{Charge, Kind};
use crate::window::{self, Tz, Window};

/// The rollup row that holds a subject's all-time total.
pub const TOTAL_DAY: i32 = 0;
/// Rows per statement: well inside SQLite's and PostgreSQL's parameter limits.
const CHUNK: usize = 1000;

fn db_err(e: sea_orm::DbErr) -> ApiError {
    ApiError::internal(anyhow::Error::new(e).context("usage database"))
}

/// The subject key of a user's own allowance.
pub fn user_subject(user_id: &str) -> String {
    format!("u:{user_id}")
}

/// The subject key of a group's shared allowance.
pub fn group_subject(group_id: &str) -> String {
    format!("g:{group_id}")
}

/// A validated lifecycle event with the session's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub session_id: String,
    pub kind: Kind,
    pub at_ms: i64,
    pub user_id: String,
    pub username: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub zone_id: String,
    pub group_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: u32,
    pub duplicates: u32,
    /// The subjects whose usage changed.
    pub subjects: BTreeSet<String>,
}

/// A subject's usage in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectUsage {
    pub used_ms: i64,
    /// Open sessions charging the subject right now.
    pub accruing: u32,
}

impl SubjectUsage {
    /// Ended sessions' total plus the open sessions' charge within `window` up to `now_ms`.
    pub fn of(closed_ms: i64, open: &[Charge], window: Option<Window>, now_ms: i64) -> Self {
        let (from, to) = window.map_or((i64::MIN, i64::MAX), |w| (w.start_ms, w.end_ms));
        let mut usage = SubjectUsage {
            used_ms: closed_ms,
            accruing: 0,
        };
        for charge in open {
            usage.used_ms += charge.charged_ms(from, to, now_ms);
            if charge.accruing() {
                usage.accruing += 1;
            }
        }
        usage
    }
}

/// One session as the ledger holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerSession {
    pub session_id: String,
    pub user_id: String,
    pub username: String,
    pub workspace_id: String,
    pub zone_id: String,
    pub group_ids: Vec<String>,
    pub charge: Charge,
}

fn decode_groups(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

fn decode_charge(row: &usage_session::Model) -> ApiResult<Charge> {
    serde_json::from_str(&row.charge).map_err(|e| {
        ApiError::internal(
            anyhow::Error::new(e)
                .context(format!("decode the charge of session {}", row.session_id)),
        )
    })
}

fn subjects_of(user_id: &str, group_ids: &[String]) -> Vec<String> {
    let mut subjects = vec![user_subject(user_id)];
    subjects.extend(group_ids.iter().map(|g| group_subject(g)));
    subjects
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    tz: Tz,
    /// One ingestion at a time in this process; on PostgreSQL an advisory lock extends that to
    /// every replica (each batch reads a session's charge, then writes its difference).
    ingest: std::sync::Arc<tokio::sync::Mutex<()>>,
}

mod ingest;

impl Store {
    /// Opens the ledger bucketed in `tz`; a ledger bucketed in another timezone is re-bucketed.
    pub async fn open(db: DatabaseConnection, tz: Tz) -> ApiResult<Self> {
        let store = Self {
            db,
            tz,
            ingest: Default::default(),
        };
        let recorded = ledger_meta::Entity::find_by_id("timezone".to_owned())
            .one(&store.db)
            .await
            .map_err(db_err)?;
        if recorded.as_ref().map(|m| m.value.as_str()) != Some(tz.name()) {
            if let Some(old) = &recorded {
                tracing::info!(from = %old.value, to = %tz.name(), "re-bucketing the usage ledger");
            }
            store.rebuild_rollups().await?;
        }
        Ok(store)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// A subject's charged time within `window` (None: all time), open sessions up to `now_ms`.
    pub async fn usage(
        &self,
        subject: &str,
        window: Option<Window>,
        now_ms: i64,
    ) -> ApiResult<SubjectUsage> {
        let closed = self.closed_ms(subject, window).await?;
        let open = self.open_charges(subject).await?;
        Ok(SubjectUsage::of(closed, &open, window, now_ms))
    }

    /// The rollups of a subject's ended sessions within `window` (None: all time).
    pub async fn closed_ms(&self, subject: &str, window: Option<Window>) -> ApiResult<i64> {
        let mut closed = usage_rollup::Entity::find()
            .select_only()
            .column_as(Expr::cust("CAST(COALESCE(SUM(ms), 0) AS BIGINT)"), "total")
            .filter(usage_rollup::Column::Subject.eq(subject));
        closed = match window {
            Some(w) => closed
                .filter(
                    usage_rollup::Column::Day
                        .gte(window::day_key(window::local_day(self.tz, w.start_ms))),
                )
                .filter(
                    usage_rollup::Column::Day
                        .lt(window::day_key(window::local_day(self.tz, w.end_ms))),
                ),
            None => closed.filter(usage_rollup::Column::Day.eq(TOTAL_DAY)),
        };
        let closed: Option<i64> = closed.into_tuple().one(&self.db).await.map_err(db_err)?;
        Ok(closed.unwrap_or(0))
    }

    /// The charges of a subject's open sessions (one indexed query).
    pub async fn open_charges(&self, subject: &str) -> ApiResult<Vec<Charge>> {
        let open = Query::select()
            .column(usage_subject::Column::SessionId)
            .from(usage_subject::Entity)
            .and_where(usage_subject::Column::Subject.eq(subject))
            .and_where(usage_subject::Column::EndMs.is_null())
            .to_owned();
        let rows = usage_session::Entity::find()
            .filter(usage_session::Column::SessionId.in_subquery(open))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        rows.iter().map(decode_charge).collect()
    }

    /// A subject's charged time per local day in `[first, last]` (day keys), zeros left out.
    pub async fn by_day(
        &self,
        subject: &str,
        first: i32,
        last: i32,
        now_ms: i64,
    ) -> ApiResult<BTreeMap<i32, i64>> {
        let rows = usage_rollup::Entity::find()
            .filter(usage_rollup::Column::Subject.eq(subject))
            .filter(usage_rollup::Column::Day.gte(Ord::max(first, TOTAL_DAY + 1)))
            .filter(usage_rollup::Column::Day.lte(last))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut days: BTreeMap<i32, i64> = rows.into_iter().map(|r| (r.day, r.ms)).collect();
        for charge in self.open_charges(subject).await? {
            for (from, to) in charge.intervals_until(now_ms) {
                for (day, ms) in window::split_by_day(self.tz, from, to) {
                    let key = window::day_key(day);
                    if (first..=last).contains(&key) {
                        *days.entry(key).or_default() += ms;
                    }
                }
            }
        }
        days.retain(|_, ms| *ms != 0);
        Ok(days)
    }

    /// Sessions whose charge may overlap `[from_ms, to_ms)`.
    pub async fn sessions_overlapping(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> ApiResult<Vec<LedgerSession>> {
        let rows = usage_session::Entity::find()
            .filter(usage_session::Column::StartMs.lt(to_ms))
            .filter(
                usage_session::Column::EndMs
                    .is_null()
                    .or(usage_session::Column::EndMs.gt(from_ms)),
            )
            .order_by_asc(usage_session::Column::SessionId)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|row| {
                Ok(LedgerSession {
                    charge: decode_charge(&row)?,
                    group_ids: decode_groups(&row.group_ids),
                    session_id: row.session_id,
                    user_id: row.user_id,
                    username: row.username,
                    workspace_id: row.workspace_id,
                    zone_id: row.zone_id,
                })
            })
            .collect()
    }

    /// Events the ledger holds (benchmarks, tests).
    pub async fn event_count(&self) -> ApiResult<u64> {
        use sea_orm::PaginatorTrait;
        usage_event::Entity::find()
            .count(&self.db)
            .await
            .map_err(db_err)
    }

    pub async fn set_rate(&self, rate: workspace_rate::Model) -> ApiResult<()> {
        workspace_rate::Entity::insert(workspace_rate::ActiveModel {
            workspace_id: Set(rate.workspace_id),
            per_hour: Set(rate.per_hour),
            currency: Set(rate.currency),
            updated_ms: Set(rate.updated_ms),
        })
        .on_conflict(
            OnConflict::column(workspace_rate::Column::WorkspaceId)
                .update_columns([
                    workspace_rate::Column::PerHour,
                    workspace_rate::Column::Currency,
                    workspace_rate::Column::UpdatedMs,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// False when the workspace had no rate.
    pub async fn delete_rate(&self, workspace_id: &str) -> ApiResult<bool> {
        let result = workspace_rate::Entity::delete_by_id(workspace_id.to_owned())
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(result.rows_affected > 0)
    }

    pub async fn rates(&self) -> ApiResult<Vec<workspace_rate::Model>> {
        workspace_rate::Entity::find()
            .order_by_asc(workspace_rate::Column::WorkspaceId)
            .all(&self.db)
            .await
            .map_err(db_err)
    }
}
