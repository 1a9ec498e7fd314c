//! The launcher: starts any set of Atrium's roles in one process, wired together — each on its
//! own port with its own TLS identity under one local CA, each pointed at the others'
//! endpoints, sharing what one process can share (identity's key set with policy,
//! billing-usage and the session-manager, one heartbeat store between the agent and the
//! session-manager). `atrium up` is "every role"; the
//! integration tests' sandbox uses the same code.
//!
//! What belongs here is wiring and lifetime: secrets and the CA, binding, start order,
//! readiness, and stopping everything when one role ends. What a service does, and how one runs
//! alone (`atrium-<service>`), belongs to the service; printing and argument parsing belong to
//! the CLI.

mod billing_usage;
mod clients;
mod config;
mod gateway;
mod launch;
mod ready;
mod role;
mod running;
mod secrets;
mod services;
mod session_manager;
mod storage;

pub use atrium_identity::BootstrapAdmin;

pub use crate::clients::{
    AgentClient, Authed, Caller, IdentityClient, PolicyClient, SessionClient, UsageClient,
};
pub use crate::config::{LaunchConfig, MetricsPorts, Storage, Tuning, check_timezone};
pub use crate::launch::Launcher;
pub use crate::role::Role;
pub use crate::running::{Bound, Running};
