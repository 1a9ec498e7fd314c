//! Sessions end to end: identity, policy, the session-manager and an agent over real
//! PostgreSQL, Redis and Docker with the demo workspace image. Docker scenarios run only with
//! `ATRIUM_TEST_DOCKER=1` (scripts/test sets it when Docker answers; required under CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod expiry;
mod faults;
mod lifecycle;
mod rights;
mod usage;
