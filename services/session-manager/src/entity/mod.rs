//! The session-manager's tables.

pub mod audit_event;
pub mod placement_lock;
pub mod session;
pub mod session_event;
