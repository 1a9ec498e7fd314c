use sea_orm::entity::prelude::*;

/// A session: what was asked for, what the agent holds, and where.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub workspace_id: String,
    pub image: String,
    pub zone_id: String,
    pub agent_id: String,
    pub desired_state: String,
    pub observed_state: String,
    /// Bumps with every change of desired state; observed writes carry the one they acted on.
    pub generation: i64,
    pub progress: i32,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub host: String,
    pub port: i32,
    pub container_id: String,
    /// The VNC password, sealed with the secrets key.
    #[sea_orm(column_type = "Text", nullable)]
    pub secret_sealed: Option<String>,
    /// The launch spec (environment, mounts, options), sealed: it may hold secrets.
    #[sea_orm(column_type = "Text")]
    pub spec_sealed: String,
    pub url: String,
    pub reserve_cores: f64,
    pub reserve_memory_mib: i64,
    pub reserve_gpus: i32,
    /// The owner's keepalive_expiration at launch (refreshed from policy on keepalive).
    pub keepalive_secs: i64,
    /// session_time_limit (the workspace's or the owner's), absent when unlimited.
    pub time_limit_secs: Option<i64>,
    pub expiration_action: String,
    pub first_launch_done: bool,
    pub attempts: i32,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub last_keepalive_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// When the observed state last changed (timeouts count from here).
    pub state_since: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    /// The replica driving the session, and until when.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    /// The owner's groups at admission, strongest first: a JSON array of ids ('' before
    /// they were recorded). Read with `Row::groups`.
    #[sea_orm(column_type = "Text")]
    pub group_ids: String,
    /// Admitted while billing-usage could not answer (`usage.when_unavailable = allow`).
    pub usage_unchecked: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
