use sea_orm::entity::prelude::*;

/// User lifecycle events waiting to be delivered to the policy service (written in the same
/// transaction as the change, delivered and deleted by a background task).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_outbox")]
pub struct Model {
    /// UUIDv7: delivery order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub username: String,
    /// "created" or "deleted".
    pub kind: String,
    pub administrator: bool,
    pub created_at: DateTimeUtc,
    pub attempts: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
