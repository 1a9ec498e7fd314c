//! The demo workspace: a tiny HTTPS server that speaks the protocol of Kasm's images (port
//! 6901, a self-signed certificate, basic auth `kasm_user:$VNC_PW`) and shows who and where it
//! runs plus a notes box saved under the container's home, and the builder that packages it
//! into a `FROM scratch` image with its shared libraries, so tests, benchmarks and `atrium up`
//! have a workspace image without any registry.
//!
//! What does not belong here: anything about scheduling or tracking sessions (the agent and
//! the services do that), and real desktops (see `deploy/images/README.md`).

pub mod auth;
pub mod client;
pub mod config;
pub mod echo;
pub mod image;
mod libs;
pub mod notes;
mod page;
pub mod server;

pub use config::Config;
pub use image::{BinarySource, BuildError, BuildOptions, BuiltImage, DEFAULT_TAG, build_image};
pub use server::{Workspace, serve};
