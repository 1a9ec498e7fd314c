use sea_orm::entity::prelude::*;

/// An open session charged to a subject (`u:<user id>` or `g:<group id>`). The row goes when
/// the session ends (its time is then in the day totals); `end_ms` stays null.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_subjects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
