//! Integration tests of the agent: each scenario starts the real server from the library on an
//! ephemeral port and talks to it through the generated gRPC client — over the in-memory
//! runtime, or over the real Docker Engine when `ATRIUM_TEST_DOCKER=1` (which `scripts/test`
//! sets when `docker info` works). Heartbeats land in the Redis at `ATRIUM_TEST_REDIS_URL`; the
//! heartbeat stores' own conformance suite is in the atrium-heartbeat crate.
//!
//! One test binary with a module per concern, so the suite links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod admission;
mod api;
mod binary;
mod docker;
mod docker_support;
mod drain;
mod heartbeat;
