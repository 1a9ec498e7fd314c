use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub username: String,
    /// Lower-cased username; unique, so usernames are unique case-insensitively.
    #[sea_orm(unique)]
    pub username_key: String,
    pub password_hash: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub realm: String,
    pub notes: String,
    pub locked: bool,
    pub disabled: bool,
    pub organization: String,
    pub phone: String,
    pub email: String,
    pub custom_attribute_1: String,
    pub custom_attribute_2: String,
    pub custom_attribute_3: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub password_set_at: Option<DateTimeUtc>,
    pub last_session_at: Option<DateTimeUtc>,
    pub force_password_reset: bool,
    pub failed_login_count: i32,
    pub is_admin: bool,
    /// Confirmed TOTP secret, sealed with the secrets key.
    pub totp_secret: Option<String>,
    /// Enrolment awaiting confirmation, sealed.
    pub totp_pending_secret: Option<String>,
    /// Two-factor is required at login: set once the user enrolled, kept through an admin reset
    /// so the user enrols again at their next login.
    pub totp_required: bool,
    /// The last TOTP time step accepted: a code is accepted once only.
    pub totp_last_step: Option<i64>,
    /// An automatic lockout (failed attempts) lasts until then; `locked` is an admin's manual
    /// lock, which stays until unlocked.
    pub locked_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
