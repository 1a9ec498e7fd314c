//! The lifecycle outbox as billing-usage receives it: undelivered events in id order (UUIDv7,
//! so time order), and marking exactly the delivered ones.

use atrium_proto::usage::v1 as usage_pb;
use atrium_service_kit::ApiResult;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, db_err, decode_groups};
use crate::entity::session_event;

/// How many ids one `UPDATE … WHERE id IN (…)` names.
const MARK_CHUNK: usize = 1000;

/// The event as billing-usage's `IngestEvents` takes it.
fn usage_event(e: &session_event::Model) -> usage_pb::SessionEvent {
    usage_pb::SessionEvent {
        id: e.id.clone(),
        session_id: e.session_id.clone(),
        kind: e.kind.clone(),
        at: Some(prost_types::Timestamp {
            seconds: e.at.timestamp(),
            nanos: i32::try_from(e.at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        user_id: e.user_id.clone(),
        username: e.username.clone(),
        workspace_id: e.workspace_id.clone(),
        agent_id: e.agent_id.clone(),
        zone_id: e.zone_id.clone(),
        group_ids: decode_groups(&e.group_ids),
    }
}

impl Store {
    /// Up to `limit` events not yet delivered, oldest first.
    pub async fn undelivered(&self, limit: usize) -> ApiResult<Vec<usage_pb::SessionEvent>> {
        let rows = session_event::Entity::find()
            .filter(session_event::Column::DeliveredAt.is_null())
            .order_by_asc(session_event::Column::Id)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(usage_event).collect())
    }

    /// Marks these events delivered (those already marked by another replica stay as they
    /// are); how many it marked.
    pub async fn mark_delivered(&self, ids: &[String]) -> ApiResult<u64> {
        let now = Utc::now();
        let mut marked = 0;
        for chunk in ids.chunks(MARK_CHUNK) {
            marked += session_event::Entity::update_many()
                .col_expr(session_event::Column::DeliveredAt, Expr::value(Some(now)))
                .filter(session_event::Column::Id.is_in(chunk.iter().cloned()))
                .filter(session_event::Column::DeliveredAt.is_null())
                .exec(&self.db)
                .await
                .map_err(db_err)?
                .rows_affected;
        }
        Ok(marked)
    }

    /// Deletes events delivered before `before`; how many.
    pub async fn prune_delivered(&self, before: chrono::DateTime<Utc>) -> ApiResult<u64> {
        Ok(session_event::Entity::delete_many()
            .filter(session_event::Column::DeliveredAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?
            .rows_affected)
    }
}
