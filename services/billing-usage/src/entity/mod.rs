//! Billing-usage's tables.

pub mod ledger_meta;
pub mod usage_event;
pub mod usage_rollup;
pub mod usage_session;
pub mod usage_subject;
pub mod workspace_rate;
