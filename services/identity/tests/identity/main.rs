//! Integration tests of the identity service: each scenario starts the real server from the
//! library on an ephemeral port over a fresh database and talks to it through the generated gRPC
//! client, once on SQLite and once on PostgreSQL (`ATRIUM_TEST_POSTGRES_URL`, which
//! `scripts/test` provides).
//!
//! One test binary with a module per concern, so the suite links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod api_keys;
mod attacks;
mod audit;
mod authz;
mod bruteforce;
mod delegation;
mod health;
mod keys;
mod listing;
mod lockout;
mod login;
mod passwords;
mod profile;
mod revocation;
mod service_table;
mod twofa;
mod users;
