//! The session table and what is written with it: the lifecycle outbox and the audit trail,
//! each in the same transaction as the change it records.

use std::collections::HashMap;

use atrium_service_kit::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::entity::{audit_event, placement_lock, session, session_event};
use crate::placement::Resources;
use crate::state::{DesiredState, ObservedState};

mod outbox;

pub type Row = session::Model;

/// Group ids as stored on sessions and events: a JSON array of strings, strongest first
/// ('' for none, as on rows written before groups were recorded).
pub fn encode_groups(group_ids: &[String]) -> String {
    if group_ids.is_empty() {
        String::new()
    } else {
        serde_json::to_string(group_ids).unwrap_or_default()
    }
}

/// Reads [`encode_groups`]' form; anything else reads as no groups.
pub fn decode_groups(stored: &str) -> Vec<String> {
    if stored.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(stored).unwrap_or_default()
}

fn db_err(e: sea_orm::DbErr) -> ApiError {
    ApiError::internal(anyhow::Error::new(e).context("session database"))
}

impl session::Model {
    pub fn desired(&self) -> DesiredState {
        self.desired_state.parse().unwrap_or(DesiredState::Deleted)
    }

    pub fn observed(&self) -> ObservedState {
        self.observed_state.parse().unwrap_or(ObservedState::Failed)
    }

    pub fn reserved(&self) -> Resources {
        Resources {
            cores: self.reserve_cores,
            memory_mib: self.reserve_memory_mib,
            gpus: u32::try_from(self.reserve_gpus).unwrap_or(0),
        }
    }

    /// The owner's groups at admission, strongest first.
    pub fn groups(&self) -> Vec<String> {
        decode_groups(&self.group_ids)
    }

    /// The hard deadline from session_time_limit, if one applies.
    pub fn hard_deadline(&self) -> Option<DateTime<Utc>> {
        self.time_limit_secs
            .map(|s| self.created_at + chrono::Duration::seconds(Ord::max(s, 0)))
    }
}

/// A requested session of `user_id` on `agent_id`, wanting to run, with every field a test does
/// not care about filled in (tests set what they do with struct update syntax).
#[cfg(any(test, feature = "test-util"))]
impl session::Model {
    pub fn sample(id: &str, user_id: &str, agent_id: &str) -> Row {
        let now = Utc::now();
        Row {
            id: id.into(),
            user_id: user_id.into(),
            username: "u".into(),
            workspace_id: "w".into(),
            image: "atrium/workspace-demo:latest".into(),
            zone_id: String::new(),
            agent_id: agent_id.into(),
            desired_state: "running".into(),
            observed_state: "requested".into(),
            generation: 1,
            progress: 5,
            message: String::new(),
            host: String::new(),
            port: 0,
            container_id: String::new(),
            secret_sealed: None,
            spec_sealed: "x".into(),
            url: String::new(),
            reserve_cores: 1.0,
            reserve_memory_mib: 256,
            reserve_gpus: 0,
            keepalive_secs: 60,
            time_limit_secs: None,
            expiration_action: "delete".into(),
            first_launch_done: false,
            attempts: 0,
            created_at: now,
            started_at: None,
            last_keepalive_at: None,
            updated_at: now,
            state_since: now,
            ended_at: None,
            lease_owner: None,
            lease_until: None,
            group_ids: String::new(),
            usage_unchecked: false,
        }
    }
}

/// A lifecycle event for the outbox, with the owner's name and groups.
pub fn event(row: &Row, kind: &str, at: DateTime<Utc>) -> session_event::ActiveModel {
    session_event::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        session_id: Set(row.id.clone()),
        user_id: Set(row.user_id.clone()),
        workspace_id: Set(row.workspace_id.clone()),
        agent_id: Set(row.agent_id.clone()),
        zone_id: Set(row.zone_id.clone()),
        kind: Set(kind.to_owned()),
        at: Set(at),
        delivered_at: Set(None),
        username: Set(row.username.clone()),
        group_ids: Set(row.group_ids.clone()),
    }
}

/// An audit event.
pub fn audit(
    kind: &str,
    user_id: Option<&str>,
    actor: &str,
    target: &str,
    detail: serde_json::Value,
) -> audit_event::ActiveModel {
    audit_event::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        at: Set(Utc::now()),
        kind: Set(kind.to_owned()),
        user_id: Set(user_id.map(str::to_owned)),
        actor: Set(actor.to_owned()),
        target: Set(target.to_owned()),
        detail: Set(detail.to_string()),
    }
}

/// What admission sees inside its transaction.
pub struct AdmissionView {
    /// The user's sessions that count against max_kasms_per_user.
    pub user_live: u64,
    /// Resources reserved per agent by live sessions.
    pub reserved: HashMap<String, Resources>,
}

/// Filters for listing.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub agent_id: Option<String>,
    pub observed: Option<ObservedState>,
    pub include_ended: bool,
}

/// An observed-state write, applied only if the session's generation is still `generation`.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub observed: Option<ObservedState>,
    pub progress: Option<i32>,
    pub message: Option<String>,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub container_id: Option<String>,
    pub secret_sealed: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub first_launch_done: Option<bool>,
    pub attempts: Option<i32>,
    /// The lifecycle event to record with it.
    pub event: Option<&'static str>,
}

const LIVE: [&str; 8] = [
    "requested",
    "starting",
    "running",
    "pausing",
    "paused",
    "stopping",
    "stopped",
    "deleting",
];

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Admits a session: in one transaction that first takes the admission lock (so replicas
    /// admit one at a time), `decide` sees the user's live count and every agent's
    /// reservations, and either refuses or returns the row to insert (placed).
    pub async fn admit<F>(&self, user_id: &str, decide: F, actor: &str) -> ApiResult<Row>
    where
        F: FnOnce(&AdmissionView) -> ApiResult<Row>,
    {
        let txn = self.db.begin().await.map_err(db_err)?;
        placement_lock::Entity::update_many()
            .col_expr(
                placement_lock::Column::Admissions,
                Expr::col(placement_lock::Column::Admissions).add(1),
            )
            .filter(placement_lock::Column::Id.eq(1))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let view = admission_view(&txn, user_id).await?;
        let row = decide(&view)?;
        let now = row.created_at;
        session::Entity::insert(active(&row))
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        session_event::Entity::insert(event(&row, "created", now))
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        audit_event::Entity::insert(audit(
            "session.create",
            Some(&row.user_id),
            actor,
            &row.id,
            serde_json::json!({
                "workspace_id": row.workspace_id,
                "agent_id": row.agent_id,
                "image": row.image,
                "usage_checked": !row.usage_unchecked,
            }),
        ))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(row)
    }

    /// Inserts sessions as they are, in batches (imports and scale benchmarks: no admission,
    /// no events).
    pub async fn import(&self, rows: &[Row]) -> ApiResult<()> {
        for chunk in rows.chunks(500) {
            session::Entity::insert_many(chunk.iter().map(active))
                .exec_without_returning(&self.db)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Every audit event of `kind` (benchmarks, tests).
    pub async fn audit_of_kind(&self, kind: &str) -> ApiResult<Vec<audit_event::Model>> {
        audit_event::Entity::find()
            .filter(audit_event::Column::Kind.eq(kind))
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// The current reservations, outside any admission (for ExplainPlacement).
    pub async fn reservations(&self, user_id: &str) -> ApiResult<AdmissionView> {
        admission_view(&self.db, user_id).await
    }

    pub async fn get(&self, id: &str) -> ApiResult<Option<Row>> {
        session::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)
    }

    /// Several sessions by id (any order; missing ones are left out).
    pub async fn get_many(&self, ids: &[String]) -> ApiResult<Vec<Row>> {
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            rows.extend(
                session::Entity::find()
                    .filter(session::Column::Id.is_in(chunk.iter().cloned()))
                    .all(&self.db)
                    .await
                    .map_err(db_err)?,
            );
        }
        Ok(rows)
    }

    /// Records one new desired state for many sessions in one transaction (the reaper's
    /// batches), with an audit event for each session it changed; the changed rows.
    pub async fn set_desired_many(
        &self,
        ids: &[String],
        desired: DesiredState,
        audit_for: impl Fn(&Row) -> audit_event::ActiveModel,
    ) -> ApiResult<Vec<Row>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin().await.map_err(db_err)?;
        // The write's own timestamp tells the rows it changed from those it left alone.
        let marker = Utc::now();
        session::Entity::update_many()
            .col_expr(session::Column::DesiredState, Expr::value(desired.as_str()))
            .col_expr(
                session::Column::Generation,
                Expr::col(session::Column::Generation).add(1),
            )
            .col_expr(session::Column::UpdatedAt, Expr::value(marker))
            .filter(session::Column::Id.is_in(ids.iter().cloned()))
            .filter(session::Column::DesiredState.ne("deleted"))
            .filter(session::Column::DesiredState.ne(desired.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let changed: Vec<Row> = session::Entity::find()
            .filter(session::Column::Id.is_in(ids.iter().cloned()))
            .filter(session::Column::UpdatedAt.eq(marker))
            .filter(session::Column::DesiredState.eq(desired.as_str()))
            .all(&txn)
            .await
            .map_err(db_err)?;
        if !changed.is_empty() {
            audit_event::Entity::insert_many(changed.iter().map(&audit_for))
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(changed)
    }

    pub async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<Vec<Row>> {
        let mut q = session::Entity::find();
        if let Some(u) = &filter.user_id {
            q = q.filter(session::Column::UserId.eq(u.clone()));
        }
        if let Some(w) = &filter.workspace_id {
            q = q.filter(session::Column::WorkspaceId.eq(w.clone()));
        }
        if let Some(a) = &filter.agent_id {
            q = q.filter(session::Column::AgentId.eq(a.clone()));
        }
        if let Some(o) = filter.observed {
            q = q.filter(session::Column::ObservedState.eq(o.as_str()));
        } else if !filter.include_ended {
            q = q.filter(
                session::Column::ObservedState
                    .is_in(LIVE)
                    .or(session::Column::ObservedState.eq("lost")),
            );
        }
        if let Some(after) = after {
            q = q.filter(session::Column::Id.gt(after.to_owned()));
        }
        q.order_by_asc(session::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// Records a new desired state (bumping the generation) with an audit event; `None` when
    /// the session is gone or already deleted.
    pub async fn set_desired(
        &self,
        id: &str,
        desired: DesiredState,
        audit_event: Option<audit_event::ActiveModel>,
    ) -> ApiResult<Option<Row>> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let now = Utc::now();
        let result = session::Entity::update_many()
            .col_expr(session::Column::DesiredState, Expr::value(desired.as_str()))
            .col_expr(
                session::Column::Generation,
                Expr::col(session::Column::Generation).add(1),
            )
            .col_expr(session::Column::UpdatedAt, Expr::value(now))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::DesiredState.ne("deleted"))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if result.rows_affected == 0 {
            txn.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        if let Some(a) = audit_event {
            audit_event::Entity::insert(a)
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        let row = session::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(row)
    }

    /// Applies `obs` if the session is still at `generation`; `None` when it moved on (the
    /// result is stale and dropped) or is gone.
    pub async fn observe(
        &self,
        id: &str,
        generation: i64,
        obs: Observation,
    ) -> ApiResult<Option<Row>> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let now = Utc::now();
        let mut update = session::Entity::update_many()
            .col_expr(session::Column::UpdatedAt, Expr::value(now))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::Generation.eq(generation));
        if let Some(o) = obs.observed {
            update = update
                .col_expr(session::Column::ObservedState, Expr::value(o.as_str()))
                .col_expr(session::Column::StateSince, Expr::value(now));
            if o.is_terminal() {
                update = update.col_expr(session::Column::EndedAt, Expr::value(Some(now)));
            }
        }
        if let Some(p) = obs.progress {
            update = update.col_expr(session::Column::Progress, Expr::value(p));
        }
        if let Some(m) = &obs.message {
            update = update.col_expr(session::Column::Message, Expr::value(m.clone()));
        }
        if let Some(h) = &obs.host {
            update = update.col_expr(session::Column::Host, Expr::value(h.clone()));
        }
        if let Some(p) = obs.port {
            update = update.col_expr(session::Column::Port, Expr::value(p));
        }
        if let Some(c) = &obs.container_id {
            update = update.col_expr(session::Column::ContainerId, Expr::value(c.clone()));
        }
        if let Some(s) = &obs.secret_sealed {
            update = update.col_expr(session::Column::SecretSealed, Expr::value(Some(s.clone())));
        }
        if let Some(t) = obs.started_at {
            update = update.col_expr(session::Column::StartedAt, Expr::value(Some(t)));
        }
        if let Some(f) = obs.first_launch_done {
            update = update.col_expr(session::Column::FirstLaunchDone, Expr::value(f));
        }
        if let Some(a) = obs.attempts {
            update = update.col_expr(session::Column::Attempts, Expr::value(a));
        }
        let result = update.exec(&txn).await.map_err(db_err)?;
        if result.rows_affected == 0 {
            txn.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        let row = session::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await
            .map_err(db_err)?;
        if let (Some(kind), Some(row)) = (obs.event, &row) {
            session_event::Entity::insert(event(row, kind, now))
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(row)
    }

    /// Marks a session deleted whatever its generation (force delete), with its events.
    pub async fn force_deleted(
        &self,
        id: &str,
        audit_event: audit_event::ActiveModel,
    ) -> ApiResult<Option<Row>> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let now = Utc::now();
        let Some(row) = session::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let was_deleted = row.observed() == ObservedState::Deleted;
        session::Entity::update_many()
            .col_expr(session::Column::DesiredState, Expr::value("deleted"))
            .col_expr(session::Column::ObservedState, Expr::value("deleted"))
            .col_expr(
                session::Column::Generation,
                Expr::col(session::Column::Generation).add(1),
            )
            .col_expr(session::Column::Message, Expr::value("force-deleted"))
            .col_expr(session::Column::UpdatedAt, Expr::value(now))
            .col_expr(session::Column::StateSince, Expr::value(now))
            .col_expr(session::Column::EndedAt, Expr::value(Some(now)))
            .filter(session::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if !was_deleted {
            session_event::Entity::insert(event(&row, "deleted", now))
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        audit_event::Entity::insert(audit_event)
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        let row = session::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(row)
    }

    /// Takes the lease on a session for `owner` (free, expired, or already `owner`'s).
    pub async fn lease(&self, id: &str, owner: &str, until: DateTime<Utc>) -> ApiResult<bool> {
        let now = Utc::now();
        let result = session::Entity::update_many()
            .col_expr(
                session::Column::LeaseOwner,
                Expr::value(Some(owner.to_owned())),
            )
            .col_expr(session::Column::LeaseUntil, Expr::value(Some(until)))
            .filter(session::Column::Id.eq(id))
            .filter(
                session::Column::LeaseOwner
                    .is_null()
                    .or(session::Column::LeaseOwner.eq(owner))
                    .or(session::Column::LeaseUntil.lt(now)),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(result.rows_affected == 1)
    }

    pub async fn release(&self, id: &str, owner: &str) -> ApiResult<()> {
        session::Entity::update_many()
            .col_expr(session::Column::LeaseOwner, Expr::value(None::<String>))
            .col_expr(
                session::Column::LeaseUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Sessions the reconciler looks at: everything not yet deleted.
    pub async fn active(&self, limit: u64) -> ApiResult<Vec<Row>> {
        session::Entity::find()
            .filter(session::Column::ObservedState.ne("deleted"))
            .filter(
                session::Column::ObservedState
                    .ne("failed")
                    .or(session::Column::DesiredState.eq("deleted")),
            )
            .order_by_asc(session::Column::StateSince)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// Session ids an agent's containers may belong to without being orphans.
    pub async fn live_ids_on(&self, agent_id: &str) -> ApiResult<Vec<String>> {
        session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::AgentId.eq(agent_id))
            .filter(session::Column::ObservedState.ne("deleted"))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// Live sessions that should have a deadline (rebuild after Redis lost its data).
    pub async fn with_deadlines(&self) -> ApiResult<Vec<Row>> {
        session::Entity::find()
            .filter(session::Column::ObservedState.is_in(LIVE))
            .filter(session::Column::DesiredState.ne("deleted"))
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// Writes audit events in one transaction (the keepalive trail is written in batches).
    pub async fn audit_batch(&self, events: Vec<audit_event::ActiveModel>) -> ApiResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        audit_event::Entity::insert_many(events)
            .exec_without_returning(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn audit_events(&self, target: &str) -> ApiResult<Vec<audit_event::Model>> {
        audit_event::Entity::find()
            .filter(audit_event::Column::Target.eq(target))
            .order_by_asc(audit_event::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    pub async fn events(&self, session_id: &str) -> ApiResult<Vec<session_event::Model>> {
        session_event::Entity::find()
            .filter(session_event::Column::SessionId.eq(session_id))
            .order_by_asc(session_event::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    pub async fn undelivered_events(&self) -> ApiResult<u64> {
        session_event::Entity::find()
            .filter(session_event::Column::DeliveredAt.is_null())
            .count(&self.db)
            .await
            .map_err(db_err)
    }
}

async fn admission_view<C: ConnectionTrait>(db: &C, user_id: &str) -> ApiResult<AdmissionView> {
    let rows: Vec<(String, String, String, f64, i64, i32)> = session::Entity::find()
        .select_only()
        .column(session::Column::UserId)
        .column(session::Column::DesiredState)
        .column(session::Column::AgentId)
        .column(session::Column::ReserveCores)
        .column(session::Column::ReserveMemoryMib)
        .column(session::Column::ReserveGpus)
        .filter(session::Column::ObservedState.is_in(LIVE))
        .into_tuple()
        .all(db)
        .await
        .map_err(db_err)?;
    let mut reserved: HashMap<String, Resources> = HashMap::new();
    let mut user_live = 0;
    for (user, desired, agent, cores, memory, gpus) in &rows {
        if user == user_id && desired != "deleted" {
            user_live += 1;
        }
        let r = reserved.entry(agent.clone()).or_default();
        *r = r.plus(Resources {
            cores: *cores,
            memory_mib: *memory,
            gpus: u32::try_from(*gpus).unwrap_or(0),
        });
    }
    Ok(AdmissionView {
        user_live,
        reserved,
    })
}

fn active(row: &Row) -> session::ActiveModel {
    let r = row.clone();
    session::ActiveModel {
        id: Set(r.id),
        user_id: Set(r.user_id),
        username: Set(r.username),
        workspace_id: Set(r.workspace_id),
        image: Set(r.image),
        zone_id: Set(r.zone_id),
        agent_id: Set(r.agent_id),
        desired_state: Set(r.desired_state),
        observed_state: Set(r.observed_state),
        generation: Set(r.generation),
        progress: Set(r.progress),
        message: Set(r.message),
        host: Set(r.host),
        port: Set(r.port),
        container_id: Set(r.container_id),
        secret_sealed: Set(r.secret_sealed),
        spec_sealed: Set(r.spec_sealed),
        url: Set(r.url),
        reserve_cores: Set(r.reserve_cores),
        reserve_memory_mib: Set(r.reserve_memory_mib),
        reserve_gpus: Set(r.reserve_gpus),
        keepalive_secs: Set(r.keepalive_secs),
        time_limit_secs: Set(r.time_limit_secs),
        expiration_action: Set(r.expiration_action),
        first_launch_done: Set(r.first_launch_done),
        attempts: Set(r.attempts),
        created_at: Set(r.created_at),
        started_at: Set(r.started_at),
        last_keepalive_at: Set(r.last_keepalive_at),
        updated_at: Set(r.updated_at),
        state_since: Set(r.state_since),
        ended_at: Set(r.ended_at),
        lease_owner: Set(r.lease_owner),
        lease_until: Set(r.lease_until),
        group_ids: Set(r.group_ids),
        usage_unchecked: Set(r.usage_unchecked),
    }
}
