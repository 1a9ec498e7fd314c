//! Integration tests of the policy service: each scenario starts the real server from the library
//! on an ephemeral port over a fresh database and talks to it through the generated gRPC client,
//! once on SQLite and once on PostgreSQL (`ATRIUM_TEST_POSTGRES_URL`, which `scripts/test`
//! provides).
//!
//! One test binary with a module per concern, so the suite links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod audit;
mod cleanup;
mod effective;
mod escalation;
mod file_mappings;
mod groups;
mod health;
mod host_access;
mod last_admin;
mod members;
mod metrics;
mod permissions;
mod settings;
mod sso;
mod workspaces;
mod zones;
