//! The service kit: what every Atrium service shares and nothing service-specific —
//! layered configuration, telemetry, the gRPC server bootstrap with health and reflection,
//! graceful shutdown, database connection and migration, the authentication layer, and the one
//! error type that maps to gRPC status codes. Domain logic belongs in the services.

pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod host_path;
pub mod http;
pub mod metrics;
pub mod paging;
pub mod pki;
pub mod run_config;
pub mod sealed;
pub mod server;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod tls;
pub mod validate;

pub use config::Secret;
pub use error::{ApiError, ApiResult};
pub use shutdown::Shutdown;
