//! The container runtime the agent drives: a Docker-Engine-shaped interface with the real
//! implementation ([`docker::DockerRuntime`], through bollard) and an in-memory one
//! ([`memory::MemoryRuntime`]) for tests of the code that calls it.
//!
//! The runtime knows containers, images and labels, nothing about sessions: turning a session
//! into a container specification is [`crate::spec`]'s job.

pub mod archive;
mod convert;
pub mod docker;
pub mod memory;

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::models::ContainerCreateBody;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

/// A file or directory written into a container before its first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute path inside the container. Missing parent directories not listed as entries
    /// of their own are created by the engine (owned by root, mode 0755).
    pub path: String,
    pub kind: FileKind,
    /// Permission bits (e.g. `0o600`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    File(Vec<u8>),
    Directory,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub body: ContainerCreateBody,
    pub files: Vec<FileEntry>,
}

/// A container's lifecycle state, as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    /// Exited.
    Stopped,
    Restarting,
    Removing,
    Dead,
}

/// What the agent needs to know about a container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    pub labels: HashMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    /// Published host ports by container port (`6901/tcp` → 32768); present while running.
    pub ports: HashMap<String, u16>,
    /// `KEY=VALUE` environment (inspect only; empty in listings).
    pub env: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub tags: Vec<String>,
    pub size_bytes: i64,
}

/// A command to run inside a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub user: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    /// Standard output and error interleaved, cut at [`EXEC_OUTPUT_LIMIT`] bytes.
    pub output: String,
}

/// Output beyond this many bytes is dropped (and the cut is marked).
pub const EXEC_OUTPUT_LIMIT: usize = 64 * 1024;

/// One step of an image pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullEvent {
    pub status: String,
    pub detail: String,
    /// 0–100 where known.
    pub percent: u32,
}

/// What the node (as seen by the engine) has.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub cpus: f64,
    pub memory_bytes: i64,
    /// Engine version, for logs.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// The name is taken (create) or the operation conflicts with the container's state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The engine refused the request as malformed (e.g. a bad run_config value).
    #[error("the container engine refused the request: {0}")]
    Rejected(String),
    /// The engine cannot be reached.
    #[error("the container engine is unreachable: {0}")]
    Unavailable(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("container engine error: {0}")]
    Other(String),
}

pub type RuntimeResult<T> = Result<T, RuntimeError>;

/// A Docker-Engine-shaped container runtime. Every call is a single engine operation with the
/// engine's semantics; idempotency and session rules live in the caller.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// The node's resources; fails with `Unavailable` when the engine cannot be reached.
    async fn node_info(&self) -> RuntimeResult<NodeInfo>;
    /// Creates the container and writes `spec.files` into it (before any start). On failure
    /// nothing is left behind. `Conflict` when the name is taken.
    async fn create(&self, spec: &ContainerSpec) -> RuntimeResult<String>;
    async fn start(&self, id: &str) -> RuntimeResult<()>;
    /// Stops with `timeout_secs` of grace; a stopped container is left as it is.
    async fn stop(&self, id: &str, timeout_secs: u32) -> RuntimeResult<()>;
    async fn pause(&self, id: &str) -> RuntimeResult<()>;
    async fn unpause(&self, id: &str) -> RuntimeResult<()>;
    /// Force-removes the container and its anonymous volumes.
    async fn remove(&self, id: &str) -> RuntimeResult<()>;
    /// By id or name; `None` when there is no such container.
    async fn inspect(&self, id_or_name: &str) -> RuntimeResult<Option<ContainerInfo>>;
    /// Every container (running or not) carrying all of these `label=value` pairs.
    async fn list(&self, labels: &[(&str, &str)]) -> RuntimeResult<Vec<ContainerInfo>>;
    async fn exec(&self, id: &str, spec: &ExecSpec) -> RuntimeResult<ExecOutput>;
    async fn list_images(&self) -> RuntimeResult<Vec<ImageInfo>>;
    /// Pulls an image; the stream ends after the last step or the first error.
    fn pull(&self, image: &str) -> BoxStream<'static, RuntimeResult<PullEvent>>;
}
