use sea_orm::entity::prelude::*;

/// One session's charge, folded from all its events, with what reports group by.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: String,
    pub user_id: String,
    pub username: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub zone_id: String,
    /// JSON array of the owner's group ids at admission.
    #[sea_orm(column_type = "Text")]
    pub group_ids: String,
    pub start_ms: i64,
    /// Set once the session was deleted or failed.
    pub end_ms: Option<i64>,
    /// The folded charge (`ledger::Charge`) as JSON: intervals and time per phase.
    #[sea_orm(column_type = "Text")]
    pub charge: String,
    pub updated_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
