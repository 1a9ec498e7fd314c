use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The JWT `kid`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Ed25519 seed, sealed with the secrets key.
    pub private_key_sealed: String,
    /// Raw public key, base64.
    pub public_key: String,
    pub created_at: DateTimeUtc,
    /// Set when a newer key took over; tokens it signed stay valid until they expire.
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
