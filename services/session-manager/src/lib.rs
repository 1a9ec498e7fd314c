//! The session-manager: admits sessions (launchable, within the user's limits, placed on an
//! agent with room), records intent, and converges the agents toward it with one reconciler;
//! keepalive deadlines live in Redis and the reaper applies each expiry exactly once.

pub mod config;
pub mod deadlines;
pub mod decide;
mod entity;
pub mod migration;
pub mod peers;
pub mod placement;
pub mod state;
pub mod store;

pub use crate::config::SessionManagerConfig;

pub const SERVICE_NAME: &str = "atrium.session.v1.SessionService";
