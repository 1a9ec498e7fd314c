//! Unit-test fixtures: a core on a fresh SQLite database, in-process deadlines and heartbeats,
//! peers that cannot be reached (policy falls back to what the session recorded), and the
//! in-memory usage gate.

use std::sync::Arc;

use atrium_heartbeat::MemoryHeartbeats;
use atrium_service_kit::client::Dialer;
use atrium_service_kit::sealed::SecretBox;
use atrium_service_kit::testing::{Backend, TestDatabase};
use chrono::Utc;

use crate::config::{SessionManagerConfig, UsageConfig};
use crate::core::{Core, SharedCore};
use crate::deadlines::MemoryDeadlines;
use crate::migration::Migrator;
use crate::peers::Peers;
use crate::store::{Row, Store};
use crate::usage::Usage;
use crate::usage::memory::MemoryUsage;

/// Nothing answers here.
const NOWHERE: &str = "http://127.0.0.1:1";

/// A core whose usage gate is `gate` (none: no usage service configured).
pub async fn core(gate: Option<Arc<MemoryUsage>>) -> (SharedCore, TestDatabase) {
    let db = TestDatabase::new(Backend::Sqlite)
        .await
        .expect("test database");
    let conn = atrium_service_kit::db::connect_and_migrate::<Migrator>(&db.url, "sm-unit")
        .await
        .expect("migrate");
    let config = SessionManagerConfig {
        identity_endpoint: NOWHERE.into(),
        policy_endpoint: NOWHERE.into(),
        usage: UsageConfig {
            endpoint: gate.as_ref().map(|_| NOWHERE.to_owned()),
            ..UsageConfig::default()
        },
        ..SessionManagerConfig::default()
    };
    let peers = Peers::new(NOWHERE, NOWHERE, Dialer::plaintext()).expect("peers");
    let usage = match gate {
        Some(gate) => Usage::new(gate, &config.usage),
        None => Usage::disabled(),
    };
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("secrets key");
    let (core, _nudges) = Core::new(
        config,
        Store::new(conn),
        Arc::new(MemoryDeadlines::new()),
        Arc::new(MemoryHeartbeats::new()),
        peers,
        usage,
        secrets,
    );
    (Arc::new(core), db)
}

/// A session of `user` on agent-1, requested now, wanting to run.
pub fn row(id: &str, user: &str) -> Row {
    let now = Utc::now();
    Row {
        id: id.into(),
        user_id: user.into(),
        username: format!("{user}-name"),
        workspace_id: "w".into(),
        image: "atrium/workspace-demo:latest".into(),
        zone_id: String::new(),
        agent_id: "agent-1".into(),
        desired_state: "running".into(),
        observed_state: "running".into(),
        generation: 1,
        progress: 100,
        message: String::new(),
        host: String::new(),
        port: 0,
        container_id: String::new(),
        secret_sealed: None,
        spec_sealed: "x".into(),
        url: String::new(),
        reserve_cores: 1.0,
        reserve_memory_mib: 256,
        reserve_gpus: 0,
        keepalive_secs: 600,
        time_limit_secs: None,
        expiration_action: "stop".into(),
        first_launch_done: false,
        attempts: 0,
        created_at: now,
        started_at: Some(now),
        last_keepalive_at: None,
        updated_at: now,
        state_since: now,
        ended_at: None,
        lease_owner: None,
        lease_until: None,
        group_ids: crate::store::encode_groups(&["g-students".into()]),
        usage_unchecked: false,
    }
}
