//! The gRPC API: one module per concern, each validating its requests and acting through
//! [`crate::core::Core`].

pub mod audit;
pub mod groups;
pub mod mappings;
pub mod members;
mod service;
pub mod settings;
pub mod workspaces;
pub mod zones;

pub use service::PolicyApi;
