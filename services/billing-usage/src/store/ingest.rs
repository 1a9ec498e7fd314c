//! Ingestion: new events are recorded and every session they touch is folded again, with the
//! difference applied to its subjects and day totals, in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use atrium_service_kit::{ApiError, ApiResult};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};

use super::{
    CHUNK, Ingested, NewEvent, Store, TOTAL_DAY, db_err, decode_charge, decode_groups, subjects_of,
};
use crate::entity::{ledger_meta, usage_event, usage_rollup, usage_session, usage_subject};
use crate::ledger::{self, Charge, Kind};
use crate::window::{self, Tz};

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

impl Store {
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
    pub(super) async fn rebuild_rollups(&self) -> ApiResult<()> {
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
        // One statement per chunk inserts the new events and names them (RETURNING): those
        // the ledger held already are left alone and counted as duplicates.
        let mut fresh_ids: HashSet<String> = HashSet::new();
        for chunk in events.chunks(CHUNK) {
            let mut insert = Query::insert();
            insert.into_table(usage_event::Entity).columns([
                usage_event::Column::Id,
                usage_event::Column::SessionId,
                usage_event::Column::Kind,
                usage_event::Column::AtMs,
            ]);
            for e in chunk {
                insert
                    .values([
                        e.id.clone().into(),
                        e.session_id.clone().into(),
                        e.kind.as_str().into(),
                        e.at_ms.into(),
                    ])
                    .map_err(ApiError::internal)?;
            }
            insert
                .on_conflict(
                    OnConflict::column(usage_event::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .returning_col(usage_event::Column::Id);
            let statement = txn.get_database_backend().build(&insert);
            for row in txn.query_all_raw(statement).await.map_err(db_err)? {
                fresh_ids.insert(row.try_get::<String>("", "id").map_err(db_err)?);
            }
        }
        let received = events.len();
        let fresh: Vec<NewEvent> = events
            .into_iter()
            .filter(|e| fresh_ids.contains(&e.id))
            .collect();
        duplicates += u32::try_from(received - fresh.len()).unwrap_or(u32::MAX);
        if fresh.is_empty() {
            txn.commit().await.map_err(db_err)?;
            return Ok(Ingested {
                accepted: 0,
                duplicates,
                subjects: BTreeSet::new(),
            });
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
        let mut new_events: HashMap<&str, Vec<ledger::Event>> = HashMap::new();
        for e in &fresh {
            new_events
                .entry(e.session_id.as_str())
                .or_default()
                .push(ledger::Event {
                    id: e.id.clone(),
                    kind: e.kind,
                    at_ms: e.at_ms,
                });
        }
        let mut old_rows: HashMap<String, usage_session::Model> = HashMap::new();
        for chunk in session_ids.chunks(CHUNK) {
            let rows = usage_session::Entity::find()
                .filter(usage_session::Column::SessionId.is_in(chunk.iter().cloned()))
                .all(&txn)
                .await
                .map_err(db_err)?;
            old_rows.extend(rows.into_iter().map(|r| (r.session_id.clone(), r)));
        }
        // Each session's new charge: a new session's from its events here; a known one's by
        // continuing its stored charge with events that all come after it (the usual case);
        // otherwise (late or out-of-order events) folded again from every event it has.
        let mut charges: HashMap<String, Charge> = HashMap::new();
        let mut refold = Vec::new();
        for id in &session_ids {
            let events = new_events.get(id.as_str()).map_or(&[][..], Vec::as_slice);
            let charge = match old_rows.get(id) {
                None => ledger::fold(events),
                Some(old) => ledger::extend(&decode_charge(old)?, events),
            };
            match charge {
                Some(c) => {
                    charges.insert(id.clone(), c);
                }
                None => refold.push(id.clone()),
            }
        }
        for chunk in refold.chunks(CHUNK) {
            let rows = usage_event::Entity::find()
                .filter(usage_event::Column::SessionId.is_in(chunk.iter().cloned()))
                .all(&txn)
                .await
                .map_err(db_err)?;
            let mut all: HashMap<String, Vec<ledger::Event>> = HashMap::new();
            for row in rows {
                let Some(kind) = Kind::parse(&row.kind) else {
                    continue;
                };
                all.entry(row.session_id).or_default().push(ledger::Event {
                    id: row.id,
                    kind,
                    at_ms: row.at_ms,
                });
            }
            for (id, events) in all {
                if let Some(c) = ledger::fold(&events) {
                    charges.insert(id, c);
                }
            }
        }
        let mut deltas = BTreeMap::new();
        let mut sessions = Vec::with_capacity(session_ids.len());
        let mut subjects = Vec::new();
        let mut stale_subjects = Vec::new();
        let mut touched = BTreeSet::new();
        let mut ended = Vec::new();
        for id in &session_ids {
            let Some(charge) = charges.remove(id) else {
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
            // Subject rows index the open sessions only (an ended one is in the day totals):
            // written when a session opens or its start or owners change, removed when it
            // ends, and never written for one that opens and ends within a batch.
            let was_open = old.is_some_and(|o| o.end_ms.is_none());
            if charge.end_ms.is_none() {
                let changed = old.is_none_or(|o| {
                    o.start_ms != charge.start_ms
                        || subjects_of(&o.user_id, &decode_groups(&o.group_ids)) != new_subjects
                });
                if changed {
                    for s in &new_subjects {
                        subjects.push(usage_subject::ActiveModel {
                            subject: Set(s.clone()),
                            session_id: Set(id.clone()),
                            start_ms: Set(charge.start_ms),
                            end_ms: Set(None),
                        });
                    }
                }
            } else if was_open {
                ended.push(id.clone());
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
        for chunk in ended.chunks(CHUNK) {
            usage_subject::Entity::delete_many()
                .filter(usage_subject::Column::SessionId.is_in(chunk.iter().cloned()))
                .exec(&txn)
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
