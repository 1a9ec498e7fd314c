//! The gRPC API: one module per concern, each converting and validating its requests and then
//! acting through [`crate::core::Core`].

pub mod api_keys;
pub mod audit;
pub mod login;
pub mod logout;
pub mod profile;
pub mod revocations;
mod service;
pub mod twofa;
pub mod users;

pub use service::IdentityApi;
