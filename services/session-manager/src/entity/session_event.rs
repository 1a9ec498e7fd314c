use sea_orm::entity::prelude::*;

/// The lifecycle outbox for billing-usage: written in the same transaction as the change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_events")]
pub struct Model {
    /// UUIDv7: ordered by time; billing-usage deduplicates by it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub session_id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub zone_id: String,
    /// created, running, paused, resumed, stopped, deleted, failed, lost.
    pub kind: String,
    pub at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
    /// The owner's name and groups (JSON array of ids, strongest first), copied from the
    /// session: billing-usage charges per-group allowances by them.
    pub username: String,
    #[sea_orm(column_type = "Text")]
    pub group_ids: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
