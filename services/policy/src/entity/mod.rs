//! Policy's tables, as sea-orm entities. Only `repo` uses them.

pub mod audit_event;
pub mod file_mapping;
pub mod group;
pub mod group_permission;
pub mod group_setting;
pub mod group_workspace;
pub mod membership;
pub mod sso_mapping;
pub mod workspace;
pub mod zone;
