use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "file_mappings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// "user", "group" or "workspace".
    pub scope_kind: String,
    pub scope_id: String,
    pub name: String,
    pub description: String,
    pub destination: String,
    pub content: String,
    pub content_is_base64: bool,
    pub executable: bool,
    pub readable: bool,
    pub writable: bool,
    pub enabled: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
