//! The agent heartbeat contract, shared by the agents that write heartbeats and the
//! session-manager that reads them: the [`HeartbeatStore`] trait, its Redis implementation
//! (every real deployment) and its in-process one (`atrium up` without Redis), the key layout,
//! the TTL rule and the value's encoding. The value is the protobuf message
//! [`atrium.agent.v1.AgentStatus`](AgentStatus), never a service's Rust type, so a reader needs
//! no agent code.
//!
//! What does not belong here: the agent's heartbeat loop and health reporting (the agent),
//! placement or liveness decisions over the statuses (the session-manager), and any other
//! contract — a new one gets its own small crate.

mod memory;
mod redis;
#[cfg(feature = "test-util")]
pub mod testing;

use std::time::Duration;

use async_trait::async_trait;
pub use atrium_proto::agent::v1::{AgentStatus, Capacity};
use prost::Message as _;

pub use self::memory::MemoryHeartbeats;
pub use self::redis::RedisHeartbeats;

/// Every heartbeat key starts with this; the agent id follows.
pub const KEY_PREFIX: &str = "atrium:agent:";

/// The namespace keys live under unless a deployment names its own.
pub const DEFAULT_NAMESPACE: &str = "atrium";

/// The key an agent's heartbeat lives under: `atrium:agent:<agent_id>`.
pub fn key(agent_id: &str) -> String {
    format!("{KEY_PREFIX}{agent_id}")
}

/// The TTL heartbeats are written with: three intervals, so one or two lost writes do not make
/// an agent disappear, and an agent that stopped is gone within three.
pub fn ttl(interval: Duration) -> Duration {
    interval * 3
}

/// The value stored for `status`: its protobuf encoding.
pub fn encode(status: &AgentStatus) -> Vec<u8> {
    status.encode_to_vec()
}

/// Reads the value stored under `agent_id`'s key. A value that is not an encoded
/// `AgentStatus`, or is another agent's, is [`HeartbeatError::Corrupt`].
pub fn decode(agent_id: &str, value: &[u8]) -> Result<AgentStatus, HeartbeatError> {
    let corrupt = |error: String| HeartbeatError::Corrupt {
        agent_id: agent_id.to_owned(),
        error,
    };
    let status = AgentStatus::decode(value).map_err(|e| corrupt(e.to_string()))?;
    if status.agent_id != agent_id {
        return Err(corrupt(format!(
            "it carries agent_id {:?}",
            status.agent_id
        )));
    }
    Ok(status)
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("heartbeat store unavailable: {0}")]
    Unavailable(String),
    #[error("heartbeat of agent {agent_id} is unreadable: {error}")]
    Corrupt { agent_id: String, error: String },
    /// A value or setting the store refuses (named in the message).
    #[error("{0}")]
    Invalid(String),
}

/// Where agents' heartbeats live. The contract, whichever the implementation:
///
/// - **Key**: one entry per agent, `atrium:agent:<agent_id>` ([`key`]).
/// - **Value**: the agent's [`AgentStatus`] as protobuf bytes ([`encode`]/[`decode`]) — in Redis
///   the raw bytes of the string value, not JSON. Its `agent_id` is the key's; `updated_at` is
///   when the agent computed it. New fields come only under new field numbers.
/// - **TTL**: an agent writes every interval with a TTL of three intervals ([`ttl`]); an entry
///   with no `put` for its TTL is gone, which is how a dead agent leaves the view. An agent that
///   finishes a drain removes its entry; after a plain shutdown it is left to expire.
///
/// Readers: [`get`](Self::get) answers `None` for a missing or expired entry and
/// [`HeartbeatError::Corrupt`] for a value that does not decode; [`list`](Self::list) answers
/// every live, well-formed entry sorted by agent id and logs (and skips) corrupt ones, so one
/// bad value never hides the other agents.
#[async_trait]
pub trait HeartbeatStore: Send + Sync + 'static {
    /// Writes (or replaces) `status` under its agent's key, expiring `ttl` from now. Refuses an
    /// empty `agent_id` or a zero `ttl`.
    async fn put(&self, status: &AgentStatus, ttl: Duration) -> Result<(), HeartbeatError>;
    /// The live heartbeat of one agent.
    async fn get(&self, agent_id: &str) -> Result<Option<AgentStatus>, HeartbeatError>;
    /// Every live, well-formed heartbeat, sorted by agent id.
    async fn list(&self) -> Result<Vec<AgentStatus>, HeartbeatError>;
    /// Deletes an agent's heartbeat; deleting a missing one succeeds.
    async fn remove(&self, agent_id: &str) -> Result<(), HeartbeatError>;
}

/// Checks a `put`'s arguments; the encoded value when they are fine.
fn checked(status: &AgentStatus, ttl: Duration) -> Result<Vec<u8>, HeartbeatError> {
    if status.agent_id.is_empty() {
        return Err(HeartbeatError::Invalid(
            "agent_id: a heartbeat needs the agent's id".into(),
        ));
    }
    if ttl.is_zero() {
        return Err(HeartbeatError::Invalid(
            "ttl: a heartbeat needs a TTL above zero".into(),
        ));
    }
    Ok(encode(status))
}

/// Decodes the values `list` found, skipping (and logging) corrupt ones.
fn well_formed<'a>(
    found: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> impl Iterator<Item = AgentStatus> {
    found
        .into_iter()
        .filter_map(|(agent_id, value)| match decode(agent_id, value) {
            Ok(status) => Some(status),
            Err(e) => {
                tracing::warn!(%agent_id, error = %e, "skipping an unreadable heartbeat");
                None
            }
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_and_ttls_follow_the_contract() {
        assert_eq!(key("node-1"), "atrium:agent:node-1");
        assert_eq!(ttl(Duration::from_secs(5)), Duration::from_secs(15));
    }

    #[test]
    fn a_value_round_trips_and_names_its_agent() {
        let status = AgentStatus {
            agent_id: "node-1".into(),
            state: "active".into(),
            ..AgentStatus::default()
        };
        assert_eq!(decode("node-1", &encode(&status)).unwrap(), status);
        let other = decode("node-2", &encode(&status)).unwrap_err();
        assert!(other.to_string().contains("node-2"), "{other}");
        assert!(matches!(
            decode("node-1", b"{\"agent_id\":\"node-1\"}"),
            Err(HeartbeatError::Corrupt { .. })
        ));
    }
}
