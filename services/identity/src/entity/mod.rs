//! Identity's tables, as sea-orm entities. Only `repo` uses them.

pub mod api_key;
pub mod audit_event;
pub mod login_session;
pub mod policy_outbox;
pub mod revocation;
pub mod signing_key;
pub mod ssh_key;
pub mod user;
pub mod user_settings;
