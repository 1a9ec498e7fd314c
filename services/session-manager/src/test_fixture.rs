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
    Row {
        username: format!("{user}-name"),
        observed_state: "running".into(),
        progress: 100,
        keepalive_secs: 600,
        expiration_action: "stop".into(),
        started_at: Some(Utc::now()),
        group_ids: crate::store::encode_groups(&["g-students".into()]),
        ..Row::sample(id, user, "agent-1")
    }
}
