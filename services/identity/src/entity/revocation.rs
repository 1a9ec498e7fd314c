use sea_orm::entity::prelude::*;

/// A login session whose access tokens must be refused; `id` is the feed's cursor.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revocations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub login_session_id: String,
    pub user_id: String,
    /// The last access token of the session expires by then: the row may be forgotten.
    pub forget_after: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
