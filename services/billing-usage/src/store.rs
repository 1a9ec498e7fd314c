//! The ledger's repository: every database access of billing-usage, with database errors
//! mapped to domain errors in one place.
//!
//! Ingestion keeps three derived views in the same transaction as the events: each session's
//! folded charge (`usage_sessions`), the subjects it is charged to (`usage_subjects`: its owner
//! and the owner's groups), and per-day totals of ended sessions (`usage_rollups`). A check then
//! reads at most a month of day rows plus the subject's open sessions: it never scans the ledger.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};

use crate::entity::{
    ledger_meta, usage_event, usage_rollup, usage_session, usage_subject, workspace_rate,
};
use crate::ledger::{self, Charge, Kind};
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

/// What an ended session adds to the rollups: per subject, per local day, and the total.
fn contributions(
    tz: Tz,
    charge: &Charge,
    subjects: &[String],
    into: &mut BTreeMap<(String, i32), i64>,
    sign: i64,
) {
    let Some(end) = charge.end_ms else {
        return;
    };
    for (from, to) in charge.intervals_until(end) {
        for (day, ms) in window::split_by_day(tz, from, to) {
            let key = window::day_key(day);
            for subject in subjects {
                *into.entry((subject.clone(), key)).or_default() += sign * ms;
                *into.entry((subject.clone(), TOTAL_DAY)).or_default() += sign * ms;
            }
        }
    }
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    tz: Tz,
    /// One ingestion at a time in this process; on PostgreSQL an advisory lock extends that to
    /// every replica (each batch reads a session's charge, then writes its difference).
    ingest: std::sync::Arc<tokio::sync::Mutex<()>>,
}

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

    async fn lock_ingestion<C: ConnectionTrait>(&self, txn: &C) -> ApiResult<()> {
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock(7305001)",
            ))
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    /// Recomputes every rollup from the ended sessions, and records the timezone.
    async fn rebuild_rollups(&self) -> ApiResult<()> {
        let _guard = self.ingest.lock().await;
        let txn = self.db.begin().await.map_err(db_err)?;
        self.lock_ingestion(&txn).await?;
        usage_rollup::Entity::delete_many()
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let ended = usage_session::Entity::find()
            .filter(usage_session::Column::EndMs.is_not_null())
            .all(&txn)
            .await
            .map_err(db_err)?;
        let mut deltas = BTreeMap::new();
        for row in &ended {
            let charge = decode_charge(row)?;
            let subjects = subjects_of(&row.user_id, &decode_groups(&row.group_ids));
            contributions(self.tz, &charge, &subjects, &mut deltas, 1);
        }
        apply_rollups(&txn, deltas).await?;
        ledger_meta::Entity::insert(ledger_meta::ActiveModel {
            key: Set("timezone".into()),
            value: Set(self.tz.name().to_owned()),
        })
        .on_conflict(
            OnConflict::column(ledger_meta::Column::Key)
                .update_column(ledger_meta::Column::Value)
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)
    }

    /// Records new events and folds each touched session again, all in one transaction.
    pub async fn ingest(&self, batch: Vec<NewEvent>) -> ApiResult<Ingested> {
        let mut seen = BTreeSet::new();
        let mut events = Vec::with_capacity(batch.len());
        let mut duplicates = 0u32;
        for event in batch {
            if seen.insert(event.id.clone()) {
                events.push(event);
            } else {
                duplicates += 1;
            }
        }
        let _guard = self.ingest.lock().await;
        let txn = self.db.begin().await.map_err(db_err)?;
        self.lock_ingestion(&txn).await?;
        let mut known = BTreeSet::new();
        for chunk in events.chunks(CHUNK) {
            let ids: Vec<String> = usage_event::Entity::find()
                .select_only()
                .column(usage_event::Column::Id)
                .filter(usage_event::Column::Id.is_in(chunk.iter().map(|e| e.id.clone())))
                .into_tuple()
                .all(&txn)
                .await
                .map_err(db_err)?;
            known.extend(ids);
        }
        let fresh: Vec<NewEvent> = events
            .into_iter()
            .filter(|e| !known.contains(&e.id))
            .collect();
        duplicates += u32::try_from(known.len()).unwrap_or(u32::MAX);
        if fresh.is_empty() {
            txn.commit().await.map_err(db_err)?;
            return Ok(Ingested {
                accepted: 0,
                duplicates,
                subjects: BTreeSet::new(),
            });
        }
        for chunk in fresh.chunks(CHUNK) {
            usage_event::Entity::insert_many(chunk.iter().map(|e| usage_event::ActiveModel {
                id: Set(e.id.clone()),
                session_id: Set(e.session_id.clone()),
                kind: Set(e.kind.as_str().to_owned()),
                at_ms: Set(e.at_ms),
            }))
            .on_conflict(
                OnConflict::column(usage_event::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        }
        // The newest facts per session among the fresh events.
        let mut facts: HashMap<&str, &NewEvent> = HashMap::new();
        for e in &fresh {
            let slot = facts.entry(e.session_id.as_str()).or_insert(e);
            if (e.at_ms, &e.id) > (slot.at_ms, &slot.id) {
                *slot = e;
            }
        }
        let session_ids: Vec<String> = facts.keys().map(|s| (*s).to_owned()).collect();
        let mut all_events: HashMap<String, Vec<ledger::Event>> = HashMap::new();
        let mut old_rows: HashMap<String, usage_session::Model> = HashMap::new();
        for chunk in session_ids.chunks(CHUNK) {
            let rows = usage_event::Entity::find()
                .filter(usage_event::Column::SessionId.is_in(chunk.iter().cloned()))
                .all(&txn)
                .await
                .map_err(db_err)?;
            for row in rows {
                let Some(kind) = Kind::parse(&row.kind) else {
                    continue;
                };
                all_events
                    .entry(row.session_id)
                    .or_default()
                    .push(ledger::Event {
                        id: row.id,
                        kind,
                        at_ms: row.at_ms,
                    });
            }
            let rows = usage_session::Entity::find()
                .filter(usage_session::Column::SessionId.is_in(chunk.iter().cloned()))
                .all(&txn)
                .await
                .map_err(db_err)?;
            old_rows.extend(rows.into_iter().map(|r| (r.session_id.clone(), r)));
        }
        let mut deltas = BTreeMap::new();
        let mut sessions = Vec::with_capacity(session_ids.len());
        let mut subjects = Vec::new();
        let mut stale_subjects = Vec::new();
        let mut touched = BTreeSet::new();
        for id in &session_ids {
            let Some(charge) = all_events.get(id).and_then(|e| ledger::fold(e)) else {
                continue;
            };
            let newest = facts[id.as_str()];
            let old = old_rows.get(id);
            // Facts come from the newest event that carried them (a late, older event does
            // not overwrite a newer agent or zone).
            let newer = old.is_none_or(|o| newest.at_ms >= o.updated_ms);
            // The old value stays unless a newer event brings a non-empty one.
            let pick = |new: &str, old: Option<&String>| -> String {
                let keep_old = !newer || new.is_empty();
                match old {
                    Some(o) if keep_old && !o.is_empty() => o.clone(),
                    _ => new.to_owned(),
                }
            };
            let user_id = pick(&newest.user_id, old.map(|o| &o.user_id));
            let groups = match old {
                Some(o) if !newer || newest.group_ids.is_empty() => decode_groups(&o.group_ids),
                _ => newest.group_ids.clone(),
            };
            let new_subjects = subjects_of(&user_id, &groups);
            if let Some(o) = old {
                if o.end_ms.is_some() {
                    let old_subjects = subjects_of(&o.user_id, &decode_groups(&o.group_ids));
                    contributions(self.tz, &decode_charge(o)?, &old_subjects, &mut deltas, -1);
                    for s in old_subjects {
                        if !new_subjects.contains(&s) {
                            stale_subjects.push((s, id.clone()));
                        }
                    }
                } else {
                    for s in subjects_of(&o.user_id, &decode_groups(&o.group_ids)) {
                        if !new_subjects.contains(&s) {
                            stale_subjects.push((s, id.clone()));
                        }
                    }
                }
            }
            contributions(self.tz, &charge, &new_subjects, &mut deltas, 1);
            touched.extend(new_subjects.iter().cloned());
            for s in &new_subjects {
                subjects.push(usage_subject::ActiveModel {
                    subject: Set(s.clone()),
                    session_id: Set(id.clone()),
                    start_ms: Set(charge.start_ms),
                    end_ms: Set(charge.end_ms),
                });
            }
            let charge_json = serde_json::to_string(&charge).map_err(ApiError::internal)?;
            sessions.push(usage_session::ActiveModel {
                session_id: Set(id.clone()),
                user_id: Set(user_id),
                username: Set(pick(&newest.username, old.map(|o| &o.username))),
                workspace_id: Set(pick(&newest.workspace_id, old.map(|o| &o.workspace_id))),
                agent_id: Set(pick(&newest.agent_id, old.map(|o| &o.agent_id))),
                zone_id: Set(pick(&newest.zone_id, old.map(|o| &o.zone_id))),
                group_ids: Set(serde_json::to_string(&groups).map_err(ApiError::internal)?),
                start_ms: Set(charge.start_ms),
                end_ms: Set(charge.end_ms),
                charge: Set(charge_json),
                updated_ms: Set(match old {
                    Some(o) if !newer => o.updated_ms,
                    _ => newest.at_ms,
                }),
            });
        }
        for chunk in sessions.chunks(CHUNK / 2) {
            usage_session::Entity::insert_many(chunk.iter().cloned())
                .on_conflict(
                    OnConflict::column(usage_session::Column::SessionId)
                        .update_columns([
                            usage_session::Column::UserId,
                            usage_session::Column::Username,
                            usage_session::Column::WorkspaceId,
                            usage_session::Column::AgentId,
                            usage_session::Column::ZoneId,
                            usage_session::Column::GroupIds,
                            usage_session::Column::StartMs,
                            usage_session::Column::EndMs,
                            usage_session::Column::Charge,
                            usage_session::Column::UpdatedMs,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        for chunk in subjects.chunks(CHUNK) {
            usage_subject::Entity::insert_many(chunk.iter().cloned())
                .on_conflict(
                    OnConflict::columns([
                        usage_subject::Column::Subject,
                        usage_subject::Column::SessionId,
                    ])
                    .update_columns([usage_subject::Column::StartMs, usage_subject::Column::EndMs])
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        touched.extend(stale_subjects.iter().map(|(s, _)| s.clone()));
        for (subject, session_id) in stale_subjects {
            usage_subject::Entity::delete_many()
                .filter(usage_subject::Column::Subject.eq(subject))
                .filter(usage_subject::Column::SessionId.eq(session_id))
                .exec(&txn)
                .await
                .map_err(db_err)?;
        }
        apply_rollups(&txn, deltas).await?;
        txn.commit().await.map_err(db_err)?;
        Ok(Ingested {
            accepted: u32::try_from(fresh.len()).unwrap_or(u32::MAX),
            duplicates,
            subjects: touched,
        })
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

/// Adds each (subject, day) difference to its rollup row.
async fn apply_rollups<C: ConnectionTrait>(
    txn: &C,
    deltas: BTreeMap<(String, i32), i64>,
) -> ApiResult<()> {
    let rows: Vec<usage_rollup::ActiveModel> = deltas
        .into_iter()
        .filter(|(_, ms)| *ms != 0)
        .map(|((subject, day), ms)| usage_rollup::ActiveModel {
            subject: Set(subject),
            day: Set(day),
            ms: Set(ms),
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        usage_rollup::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([usage_rollup::Column::Subject, usage_rollup::Column::Day])
                    .value(
                        usage_rollup::Column::Ms,
                        Expr::col((usage_rollup::Entity, usage_rollup::Column::Ms))
                            .add(Expr::cust("excluded.ms")),
                    )
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}
