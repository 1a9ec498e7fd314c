//! The session-manager's shared state: its store, deadlines, the agents' heartbeats, its peers
//! (billing-usage's allowances among them), and the channels that carry changes to watchers
//! and nudges to the reconciler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrium_heartbeat::{AgentStatus, HeartbeatStore};
use atrium_service_kit::sealed::SecretBox;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::config::SessionManagerConfig;
use crate::deadlines::Deadlines;
use crate::decide::AgentFact;
use crate::peers::{Peers, Settings};
use crate::state::{DesiredState, ObservedState};
use crate::store::{Row, Store};
use crate::usage::Usage;

pub type SharedCore = Arc<Core>;

/// How long a read of every heartbeat is reused.
const AGENTS_TTL: Duration = Duration::from_millis(500);
/// How long the keepalive path reuses a session's row. This replica's own writes refresh it at
/// once; another replica's change is seen within this time (and a stale row can never extend
/// a deadline it should not: see [`Core::session_for_keepalive`]).
const KEEPALIVE_ROW_TTL: Duration = Duration::from_secs(1);

/// What a session's container is made from, decided at admission and sealed in its row.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LaunchSpec {
    pub environment: Vec<(String, String)>,
    /// (host path, container path, read-only)
    pub volumes: Vec<(String, String, bool)>,
    pub files: Vec<LaunchFile>,
    pub run_config_json: String,
    pub expose_user_environment: bool,
    pub inject_ssh_keys: bool,
    /// The workspace's exec hooks (JSON of `ExecConfig`'s fields).
    pub hooks: HashMap<String, Hook>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LaunchFile {
    pub destination: String,
    pub content: Vec<u8>,
    pub executable: bool,
    pub readable: bool,
    pub writable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hook {
    pub cmd: String,
    pub user: String,
    pub environment: Vec<(String, String)>,
    pub workdir: String,
    pub privileged: bool,
}

struct AgentCache {
    at: Option<Instant>,
    agents: Vec<AgentStatus>,
}

pub struct Core {
    pub config: SessionManagerConfig,
    pub store: Store,
    pub deadlines: Arc<dyn Deadlines>,
    pub heartbeats: Arc<dyn HeartbeatStore>,
    pub peers: Peers,
    /// billing-usage: allowances (cached) and the outbox's gate.
    pub usage: Usage,
    pub secrets: SecretBox,
    pub replica: String,
    changes: broadcast::Sender<Row>,
    nudges: mpsc::UnboundedSender<String>,
    agent_cache: tokio::sync::Mutex<AgentCache>,
    missing_since: Mutex<HashMap<String, Instant>>,
    /// Recent rows for the keepalive path, by session id.
    rows: Mutex<HashMap<String, (Instant, Row)>>,
    /// Whether the deadline store answered on its last use, and why not.
    deadlines_ok: AtomicBool,
    deadlines_error: Mutex<String>,
}

impl Core {
    pub fn new(
        config: SessionManagerConfig,
        store: Store,
        deadlines: Arc<dyn Deadlines>,
        heartbeats: Arc<dyn HeartbeatStore>,
        peers: Peers,
        usage: Usage,
        secrets: SecretBox,
    ) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (changes, _) = broadcast::channel(4096);
        let (nudges, rx) = mpsc::unbounded_channel();
        let replica = config.replica();
        (
            Self {
                config,
                store,
                deadlines,
                heartbeats,
                peers,
                usage,
                secrets,
                replica,
                changes,
                nudges,
                agent_cache: tokio::sync::Mutex::new(AgentCache {
                    at: None,
                    agents: Vec::new(),
                }),
                missing_since: Mutex::new(HashMap::new()),
                rows: Mutex::new(HashMap::new()),
                deadlines_ok: AtomicBool::new(true),
                deadlines_error: Mutex::new(String::new()),
            },
            rx,
        )
    }

    /// Tells watchers about a change and the reconciler to look at the session now.
    pub fn changed(&self, row: &Row) {
        self.remember_row(row);
        let _ = self.changes.send(row.clone());
        let _ = self.nudges.send(row.id.clone());
    }

    /// Tells watchers only (the reconciler wrote it and carries on by itself).
    pub fn announce(&self, row: &Row) {
        self.remember_row(row);
        let _ = self.changes.send(row.clone());
    }

    fn remember_row(&self, row: &Row) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if rows.contains_key(&row.id) {
            rows.insert(row.id.clone(), (Instant::now(), row.clone()));
        }
    }

    /// The session's row for a keepalive, reused for up to a second. Staleness is harmless
    /// there: owner, workspace and time limit never change, and a session that stopped
    /// running meanwhile has no keepalive deadline left to move (the extend finds nothing).
    pub async fn session_for_keepalive(&self, id: &str) -> ApiResult<Option<Row>> {
        if let Some((at, row)) = self.rows.lock().unwrap_or_else(|p| p.into_inner()).get(id)
            && at.elapsed() < KEEPALIVE_ROW_TTL
        {
            return Ok(Some(row.clone()));
        }
        let row = self.store.get(id).await?;
        if let Some(row) = &row {
            let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            if rows.len() > 100_000 {
                rows.clear();
            }
            rows.insert(row.id.clone(), (Instant::now(), row.clone()));
        }
        Ok(row)
    }

    pub fn nudge(&self, id: &str) {
        let _ = self.nudges.send(id.to_owned());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Row> {
        self.changes.subscribe()
    }

    /// Every live heartbeat, reused for half a second.
    pub async fn agents(&self) -> ApiResult<Vec<AgentStatus>> {
        let mut cache = self.agent_cache.lock().await;
        if let Some(at) = cache.at
            && at.elapsed() < AGENTS_TTL
        {
            return Ok(cache.agents.clone());
        }
        let agents = self.heartbeats.list().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read agent heartbeats");
            ApiError::Unavailable(format!("agent heartbeats cannot be read: {e}"))
        })?;
        {
            let mut missing = self.missing_since.lock().unwrap_or_else(|p| p.into_inner());
            missing.retain(|id, _| !agents.iter().any(|a| &a.agent_id == id));
        }
        // An empty answer is not reused: the first agent is placeable the moment it appears.
        cache.at = (!agents.is_empty()).then(Instant::now);
        cache.agents = agents.clone();
        Ok(agents)
    }

    /// Forget the cached heartbeats (after an agent call failed).
    pub async fn refresh_agents(&self) {
        self.agent_cache.lock().await.at = None;
    }

    /// The agent's heartbeat, or how long it has been missing (as seen by this replica).
    pub async fn agent(&self, agent_id: &str) -> ApiResult<(AgentFact, Option<AgentStatus>)> {
        let agents = self.agents().await?;
        match agents.into_iter().find(|a| a.agent_id == agent_id) {
            Some(a) => {
                let fact = if a.state == "draining" {
                    AgentFact::Draining
                } else {
                    AgentFact::Alive
                };
                Ok((fact, Some(a)))
            }
            None => {
                let mut missing = self.missing_since.lock().unwrap_or_else(|p| p.into_inner());
                let since = *missing
                    .entry(agent_id.to_owned())
                    .or_insert_with(Instant::now);
                Ok((AgentFact::Missing(since.elapsed()), None))
            }
        }
    }

    pub fn seal_spec(&self, spec: &LaunchSpec) -> ApiResult<String> {
        let json = serde_json::to_vec(spec).map_err(ApiError::internal)?;
        self.secrets.seal(&json).map_err(ApiError::Internal)
    }

    pub fn open_spec(&self, row: &Row) -> ApiResult<LaunchSpec> {
        let json = self
            .secrets
            .open(&row.spec_sealed)
            .map_err(ApiError::Internal)?;
        serde_json::from_slice(&json).map_err(ApiError::internal)
    }

    /// The deadline store failed: health reports it, the reaper waits.
    pub fn deadlines_failed(&self, error: &str) {
        if self.deadlines_ok.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                error,
                "the deadline store cannot be reached: nothing is reaped until it returns"
            );
        }
        *self
            .deadlines_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = error.to_owned();
    }

    pub fn deadlines_answered(&self) {
        if !self.deadlines_ok.swap(true, Ordering::SeqCst) {
            tracing::info!("the deadline store answers again");
        }
    }

    /// `Err(reason)` while the deadline store is failing.
    pub fn deadline_health(&self) -> Result<(), String> {
        if self.deadlines_ok.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(self
                .deadlines_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone())
        }
    }

    /// The deadline a running session has: creation + session_time_limit when that is set
    /// (keepalives never move it), else `now + keepalive_expiration`.
    pub fn deadline_for(
        &self,
        row: &Row,
        keepalive_secs: i64,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        match row.hard_deadline() {
            Some(hard) => hard,
            None => now + chrono::Duration::seconds(keepalive_secs.max(0)),
        }
    }

    /// Records a new desired state, keeps the deadline in step, and tells everyone.
    pub async fn set_desired(
        &self,
        row: &Row,
        desired: DesiredState,
        audit: Option<crate::entity::audit_event::ActiveModel>,
    ) -> ApiResult<Row> {
        let updated = self
            .store
            .set_desired(&row.id, desired, audit)
            .await?
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!("session {} is being deleted", row.id))
            })?;
        if row.desired() != desired {
            self.after_desired(&updated, desired).await?;
        } else {
            self.changed(&updated);
        }
        Ok(updated)
    }

    /// Keeps the deadline in step with a new desired state, and tells everyone.
    pub async fn after_desired(&self, updated: &Row, desired: DesiredState) -> ApiResult<()> {
        match desired {
            DesiredState::Deleted => {
                if let Err(e) = self.deadlines.remove(&updated.id).await {
                    // The reaper will find the session deleted and let the entry go.
                    tracing::warn!(session_id = %updated.id, error = %e, "deadline not removed");
                }
            }
            DesiredState::Running => {
                // Resumed: it lives a keepalive from now again (never past a hard limit).
                let settings = self
                    .peers
                    .settings(&updated.user_id)
                    .await
                    .unwrap_or_default();
                let at = self.deadline_for(updated, settings.keepalive_expiration_secs, Utc::now());
                self.set_deadline(&updated.id, at).await?;
            }
            DesiredState::Paused | DesiredState::Stopped => {
                // At rest: only a hard limit still ends it.
                match updated.hard_deadline() {
                    Some(hard) => self.set_deadline(&updated.id, hard).await?,
                    None => {
                        let _ = self.deadlines.remove(&updated.id).await;
                    }
                }
            }
        }
        self.changed(updated);
        Ok(())
    }

    pub async fn set_deadline(&self, id: &str, at: DateTime<Utc>) -> ApiResult<()> {
        match self.deadlines.set(id, at.timestamp_millis()).await {
            Ok(()) => {
                self.deadlines_answered();
                Ok(())
            }
            Err(e) => {
                self.deadlines_failed(&e.to_string());
                Err(ApiError::Unavailable(format!(
                    "session deadlines cannot be recorded right now: {e}"
                )))
            }
        }
    }

    /// The settings of the session's owner (the defaults if policy cannot answer).
    pub async fn owner_settings(&self, row: &Row) -> Settings {
        match self.peers.settings(&row.user_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(user_id = %row.user_id, error = %e, "using the session's recorded settings");
                Settings {
                    keepalive_expiration_secs: row.keepalive_secs,
                    keepalive_expiration_action: row.expiration_action.clone(),
                    session_time_limit_secs: row.time_limit_secs,
                    ..Settings::default()
                }
            }
        }
    }
}

/// Observed states a client may still see change.
pub fn is_final(row: &Row) -> bool {
    matches!(
        row.observed(),
        ObservedState::Deleted | ObservedState::Failed
    )
}
