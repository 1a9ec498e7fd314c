use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Docker image reference.
    pub name: String,
    pub friendly_name: String,
    pub description: String,
    /// JSON array of strings.
    pub categories: String,
    pub enabled: bool,
    pub hidden: bool,
    pub cores: f64,
    pub memory_mib: i64,
    pub gpu_count: i32,
    pub require_gpu: bool,
    /// JSON object (allow-listed docker-run parameters).
    pub run_config: String,
    /// JSON of the ExecConfig hooks.
    pub exec_config: String,
    /// JSON array of volume mappings.
    pub volume_mappings: String,
    pub persistent_profile_path: String,
    pub session_time_limit_secs: Option<i64>,
    pub zone_id: Option<String>,
    pub thumbnail_url: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
