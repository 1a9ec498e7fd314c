//! The one reconciler: converges what agents hold toward what was asked. A periodic pass plus an
//! immediate nudge on every change; one step at a time per session (a lease in the database, so
//! several replicas share the work and a replica that dies mid-step is taken over); bounded
//! concurrency; results written only if the session's generation is unchanged.
//!
//! It also removes orphans: containers an agent reports with no live session behind them,
//! after a grace period.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrium_proto::agent::v1 as agent_pb;
use atrium_service_kit::{ApiError, ApiResult, Shutdown};
use chrono::Utc;
use tokio::sync::{Semaphore, mpsc};

use crate::core::{Core, LaunchSpec, SharedCore};
use crate::decide::{self, Action, Facts, Timeouts};
use crate::peers::AgentClient;
use crate::state::{DesiredState, ObservedState};
use crate::store::{Observation, Row};

/// How long an agent call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one readiness wait lasts before the step ends and the next pass continues it.
const READY_SLICE: Duration = Duration::from_secs(15);

pub struct Reconciler {
    core: SharedCore,
    permits: Arc<Semaphore>,
    busy: Arc<Mutex<HashSet<String>>>,
    /// Nudged while busy: run again when the current step ends.
    again: Arc<Mutex<HashSet<String>>>,
    orphans_seen: Mutex<HashMap<(String, String), Instant>>,
    /// Set on shutdown: steps under way finish, none follow.
    stopping: std::sync::atomic::AtomicBool,
}

fn timeouts(core: &Core) -> Timeouts {
    Timeouts {
        start: Duration::from_secs(core.config.start_timeout_secs),
        operation: Duration::from_secs(core.config.operation_timeout_secs),
        lost_grace: Duration::from_secs(core.config.lost_grace_secs),
    }
}

fn lease_length(core: &Core) -> chrono::Duration {
    chrono::Duration::seconds(
        i64::try_from(CALL_TIMEOUT.as_secs() + READY_SLICE.as_secs() + 30).unwrap_or(150),
    ) + chrono::Duration::seconds(i64::try_from(core.config.operation_timeout_secs).unwrap_or(60))
}

impl Reconciler {
    pub fn new(core: SharedCore) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(core.config.max_concurrent_actions));
        Arc::new(Self {
            core,
            permits,
            busy: Arc::new(Mutex::new(HashSet::new())),
            again: Arc::new(Mutex::new(HashSet::new())),
            orphans_seen: Mutex::new(HashMap::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs until `stop`: nudges at once, a full pass every interval. On stop, steps in flight
    /// are allowed to finish (the task set's drain deadline bounds them).
    pub async fn run(
        self: Arc<Self>,
        mut nudges: mpsc::UnboundedReceiver<String>,
        stop: Shutdown,
    ) -> anyhow::Result<()> {
        let interval = Duration::from_millis(self.core.config.reconcile_interval_ms);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut passes: u64 = 0;
        loop {
            tokio::select! {
                _ = stop.wait() => break,
                Some(id) = nudges.recv() => self.clone().dispatch(id),
                _ = ticker.tick() => {
                    passes += 1;
                    if let Err(e) = self.pass().await {
                        tracing::warn!(error = %e, "reconcile pass failed");
                    }
                    // Orphans every few passes: it lists every agent's containers.
                    if passes % 5 == 1 && let Err(e) = self.sweep_orphans().await {
                        tracing::warn!(error = %e, "orphan sweep failed");
                    }
                }
            }
        }
        // Let steps under way finish and record their result; start no more.
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let all = u32::try_from(self.core.config.max_concurrent_actions).unwrap_or(u32::MAX);
        let _drained = self.permits.acquire_many(all).await;
        Ok(())
    }

    /// Looks at every session that is not settled, or whose agent has gone quiet.
    async fn pass(self: &Arc<Self>) -> ApiResult<()> {
        let rows = self.core.store.active(10_000).await?;
        let alive: HashSet<String> = self
            .core
            .agents()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.agent_id)
            .collect();
        let now = Utc::now();
        for row in rows {
            // A session whose agent keeps failing is retried with backoff (a change of intent
            // still nudges it at once).
            if row.attempts > 0 && now - row.updated_at < retry_backoff(row.attempts) {
                continue;
            }
            let settled = decide::is_settled(row.desired(), row.observed());
            let quiet_agent = !row.agent_id.is_empty()
                && !alive.contains(&row.agent_id)
                && matches!(
                    self.core.agent(&row.agent_id).await,
                    Ok((decide::AgentFact::Missing(d), _)) if d >= Duration::from_secs(self.core.config.lost_grace_secs)
                );
            let lost_returning =
                row.observed() == ObservedState::Lost && alive.contains(&row.agent_id);
            if !settled || quiet_agent || lost_returning {
                self.clone().dispatch(row.id);
            }
        }
        Ok(())
    }

    /// Starts a step for `id` unless one is running (then it runs again after).
    pub fn dispatch(self: Arc<Self>, id: String) {
        {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            if !busy.insert(id.clone()) {
                self.again
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id);
                return;
            }
        }
        tokio::spawn(async move {
            let Ok(_permit) = self.permits.clone().acquire_owned().await else {
                return;
            };
            loop {
                if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let outcome = step(&self.core, &id).await;
                match outcome {
                    Ok(true) => {
                        // Progress was made: look again at once (the next action may follow).
                        self.again
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(session_id = %id, error = %e, "reconcile step failed"),
                }
                let rerun = self
                    .again
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if !rerun {
                    break;
                }
            }
            self.busy
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    /// Removes containers no live session owns, once they have been seen so for the grace.
    async fn sweep_orphans(&self) -> ApiResult<()> {
        let grace = Duration::from_secs(self.core.config.orphan_grace_secs);
        let agents = self.core.agents().await?;
        let mut still: HashSet<(String, String)> = HashSet::new();
        for agent in agents {
            let mut client = self.core.peers.agent(&agent.address)?;
            let listed = match tokio::time::timeout(
                CALL_TIMEOUT,
                client.list_sessions(agent_pb::ListSessionsRequest {}),
            )
            .await
            {
                Ok(Ok(r)) => r.into_inner().sessions,
                Ok(Err(e)) => {
                    tracing::debug!(agent_id = %agent.agent_id, error = %e, "cannot list sessions");
                    continue;
                }
                Err(_) => continue,
            };
            let live: HashSet<String> = self
                .core
                .store
                .live_ids_on(&agent.agent_id)
                .await?
                .into_iter()
                .collect();
            for c in listed {
                if live.contains(&c.session_id) {
                    continue;
                }
                // Known to the store but not on this agent (moved?): only truly unknown or
                // deleted sessions count as orphans.
                let key = (agent.agent_id.clone(), c.session_id.clone());
                let first = *self
                    .orphans_seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(key.clone())
                    .or_insert_with(Instant::now);
                if first.elapsed() >= grace {
                    let reference = agent_pb::SessionRef {
                        session_id: c.session_id.clone(),
                    };
                    match client.remove_session(reference).await {
                        Ok(_) => {
                            tracing::info!(agent_id = %agent.agent_id, session_id = %c.session_id, "orphan container removed");
                            self.orphans_seen
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(&key);
                        }
                        Err(e) => {
                            tracing::warn!(agent_id = %agent.agent_id, session_id = %c.session_id, error = %e, "orphan not removed");
                            still.insert(key);
                        }
                    }
                } else {
                    still.insert(key);
                }
            }
        }
        self.orphans_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| still.contains(k));
        Ok(())
    }
}

/// How long after a failed attempt the periodic pass tries again: 250 ms doubling to 10 s.
pub fn retry_backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    let millis = 250_i64.saturating_mul(1_i64 << exponent.min(6));
    chrono::Duration::milliseconds(millis.min(10_000))
}

/// The lifecycle event a new observed state records.
fn event_for(row: &Row, to: ObservedState) -> Option<&'static str> {
    use ObservedState as O;
    let from = row.observed();
    match to {
        O::Starting if matches!(from, O::Paused | O::Stopped | O::Lost) => Some("resumed"),
        O::Running if row.started_at.is_none() => Some("running"),
        O::Running if matches!(from, O::Paused | O::Stopped | O::Lost) => Some("resumed"),
        O::Running => None,
        O::Paused => Some("paused"),
        O::Stopped => Some("stopped"),
        O::Deleted => Some("deleted"),
        O::Failed => Some("failed"),
        O::Lost => Some("lost"),
        _ => None,
    }
}

/// One step for one session. `Ok(true)`: something changed, look again.
pub async fn step(core: &Core, id: &str) -> ApiResult<bool> {
    // Look first, without writing: most passes find nothing to do.
    let Some(row) = core.store.get(id).await? else {
        return Ok(false);
    };
    if decided(core, &row).await?.0 == Action::Nothing {
        return Ok(false);
    }
    let until = Utc::now() + lease_length(core);
    if !core.store.lease(id, &core.replica, until).await? {
        return Ok(false);
    }
    let result = step_leased(core, id).await;
    if let Err(e) = core.store.release(id, &core.replica).await {
        tracing::warn!(session_id = %id, error = %e, "lease not released (it expires)");
    }
    result
}

/// The next action for `row`, and the address of its agent.
async fn decided(core: &Core, row: &Row) -> ApiResult<(Action, String)> {
    let (agent_fact, status) = if row.agent_id.is_empty() {
        (decide::AgentFact::Alive, None)
    } else {
        core.agent(&row.agent_id).await?
    };
    let in_state_for = (Utc::now() - row.state_since).to_std().unwrap_or_default();
    let facts = Facts {
        desired: row.desired(),
        observed: row.observed(),
        placed: !row.agent_id.is_empty(),
        agent: agent_fact,
        in_state_for,
    };
    let action = decide::decide(&facts, &timeouts(core));
    tracing::trace!(session_id = %row.id, ?facts, ?action, "decided");
    Ok((action, status.map(|s| s.address).unwrap_or_default()))
}

async fn step_leased(core: &Core, id: &str) -> ApiResult<bool> {
    // Read again under the lease: another replica may have moved it on meanwhile.
    let Some(row) = core.store.get(id).await? else {
        return Ok(false);
    };
    let (action, address) = decided(core, &row).await?;
    if action == Action::Nothing {
        return Ok(false);
    }
    tracing::debug!(session_id = %id, ?action, "reconcile");
    let run = Run {
        core,
        row: &row,
        address: &address,
    };
    match action {
        Action::Nothing => Ok(false),
        Action::Mark(state, message) => run.mark(state, message).await,
        Action::Create => run.create().await,
        Action::AwaitReady => run.await_ready().await,
        Action::Start => run.start().await,
        Action::Pause => run.pause().await,
        Action::Stop => run.stop().await,
        Action::Remove => run.remove().await,
        Action::Inspect => run.inspect().await,
    }
}

struct Run<'a> {
    core: &'a Core,
    row: &'a Row,
    address: &'a str,
}

/// How an agent's refusal affects the session: permanent refusals fail it at once.
fn permanent(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::PermissionDenied
    )
}

impl Run<'_> {
    async fn write(&self, obs: Observation) -> ApiResult<bool> {
        match self
            .core
            .store
            .observe(&self.row.id, self.row.generation, obs)
            .await?
        {
            Some(updated) => {
                if updated.observed() == ObservedState::Deleted
                    && let Err(e) = self.core.deadlines.remove(&updated.id).await
                {
                    tracing::debug!(error = %e, "deadline not removed; the reaper drops it");
                }
                self.core.announce(&updated);
                Ok(true)
            }
            None => {
                tracing::debug!(session_id = %self.row.id, "stale result dropped (desired state changed)");
                // Intent changed meanwhile: the next step acts on it.
                Ok(true)
            }
        }
    }

    fn to(&self, state: ObservedState, progress: i32, message: impl Into<String>) -> Observation {
        Observation {
            // Unchanged, the state is not rewritten: its clock (the timeouts) keeps running.
            observed: (state != self.row.observed()).then_some(state),
            progress: Some(progress),
            message: Some(message.into()),
            event: if state == self.row.observed() {
                None
            } else {
                event_for(self.row, state)
            },
            // Progress: failed attempts start counting again.
            attempts: Some(0),
            ..Observation::default()
        }
    }

    async fn mark(&self, state: ObservedState, message: String) -> ApiResult<bool> {
        let progress = if state == ObservedState::Deleted {
            100
        } else {
            self.row.progress
        };
        tracing::info!(session_id = %self.row.id, state = %state, message, "session state");
        self.write(self.to(state, progress, message)).await
    }

    fn client(&self) -> ApiResult<AgentClient> {
        if self.address.is_empty() {
            return Err(ApiError::Unavailable(format!(
                "agent {} has no address in its heartbeat",
                self.row.agent_id
            )));
        }
        self.core.peers.agent(self.address)
    }

    fn reference(&self) -> agent_pb::SessionRef {
        agent_pb::SessionRef {
            session_id: self.row.id.clone(),
        }
    }

    /// A failed agent call: permanent refusals fail the session (or, for a delete, are
    /// retried), anything else is retried on the next pass.
    async fn failed_call(&self, what: &str, status: tonic::Status) -> ApiResult<bool> {
        self.core.refresh_agents().await;
        let message = format!(
            "{what}: agent {} said: {}",
            self.row.agent_id,
            status.message()
        );
        tracing::warn!(session_id = %self.row.id, code = ?status.code(), "{message}");
        if permanent(&status) && self.row.desired() != DesiredState::Deleted {
            return self
                .write(self.to(
                    ObservedState::Failed,
                    self.row.progress,
                    format!("failed: {message}"),
                ))
                .await;
        }
        let obs = Observation {
            message: Some(format!("retrying: {message}")),
            attempts: Some(self.row.attempts + 1),
            ..Observation::default()
        };
        self.write(obs).await?;
        Ok(false)
    }

    async fn create(&self) -> ApiResult<bool> {
        let spec = self.core.open_spec(self.row)?;
        let client = self.client()?;
        self.write(Observation {
            progress: Some(15),
            message: Some(format!(
                "creating the container on agent {}",
                self.row.agent_id
            )),
            ..Observation::default()
        })
        .await?;
        let request = self.create_request(&spec).await?;
        let mut c = client;
        let answer = tokio::time::timeout(CALL_TIMEOUT, c.create_session(request)).await;
        let container = match answer {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return self.failed_call("create", status).await,
            Err(_) => {
                return self
                    .failed_call(
                        "create",
                        tonic::Status::deadline_exceeded("no answer in time"),
                    )
                    .await;
            }
        };
        let sealed = if container.session_password.is_empty() {
            None
        } else {
            Some(
                self.core
                    .secrets
                    .seal(container.session_password.as_bytes())
                    .map_err(ApiError::Internal)?,
            )
        };
        let obs = Observation {
            host: Some(container.host.clone()),
            port: Some(i32::try_from(container.port).unwrap_or(0)),
            container_id: Some(container.container_id.clone()),
            secret_sealed: sealed,
            ..self.to(
                ObservedState::Starting,
                50,
                "container started; waiting for the workspace to answer",
            )
        };
        self.write(obs).await
    }

    async fn create_request(&self, spec: &LaunchSpec) -> ApiResult<agent_pb::CreateSessionRequest> {
        let (public, private) = if spec.inject_ssh_keys {
            match self.core.peers.ssh_key(&self.row.user_id).await? {
                Some(k) => (k.public_key, k.private_key),
                None => (String::new(), String::new()),
            }
        } else {
            (String::new(), String::new())
        };
        Ok(agent_pb::CreateSessionRequest {
            spec: Some(agent_pb::SessionSpec {
                session_id: self.row.id.clone(),
                user_id: self.row.user_id.clone(),
                workspace_id: self.row.workspace_id.clone(),
                image: self.row.image.clone(),
                cores: self.row.reserve_cores,
                memory_mib: self.row.reserve_memory_mib,
                gpu_count: u32::try_from(self.row.reserve_gpus).unwrap_or(0),
                environment: spec.environment.iter().cloned().collect(),
                volumes: spec
                    .volumes
                    .iter()
                    .map(|(h, c, ro)| agent_pb::VolumeMount {
                        host_path: h.clone(),
                        container_path: c.clone(),
                        read_only: *ro,
                    })
                    .collect(),
                files: spec
                    .files
                    .iter()
                    .map(|f| agent_pb::FileMount {
                        destination: f.destination.clone(),
                        content: f.content.clone(),
                        executable: f.executable,
                        readable: f.readable,
                        writable: f.writable,
                    })
                    .collect(),
                run_config_json: spec.run_config_json.clone(),
                username: self.row.username.clone(),
                expose_user_environment: spec.expose_user_environment,
                inject_ssh_keys: spec.inject_ssh_keys && !public.is_empty(),
                ssh_public_key: public,
                ssh_private_key: private,
            }),
        })
    }

    /// Waits (a slice at a time) for the workspace to answer HTTPS on its port.
    async fn await_ready(&self) -> ApiResult<bool> {
        let host = if self.row.host.is_empty() {
            "127.0.0.1"
        } else {
            &self.row.host
        };
        let Ok(port) = u16::try_from(self.row.port) else {
            return self.inspect().await;
        };
        if port == 0 {
            return self.inspect().await;
        }
        let addr: SocketAddr = match format!("{host}:{port}").parse() {
            Ok(a) => a,
            Err(_) => match tokio::net::lookup_host((host, port))
                .await
                .ok()
                .and_then(|mut a| a.next())
            {
                Some(a) => a,
                None => {
                    return self
                        .write(self.to(
                            ObservedState::Failed,
                            self.row.progress,
                            format!("failed: agent address {host} does not resolve"),
                        ))
                        .await;
                }
            },
        };
        let password = self
            .row
            .secret_sealed
            .as_deref()
            .and_then(|s| self.core.secrets.open(s).ok())
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default();
        let started = Instant::now();
        while started.elapsed() < READY_SLICE {
            let probe = atrium_workspace::client::get(
                addr,
                "/",
                Some((atrium_workspace::client::USER, password.as_str())),
            );
            if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(3), probe).await
                && reply.status.as_u16() < 500
            {
                let first = !self.row.first_launch_done;
                let obs = Observation {
                    started_at: self.row.started_at.is_none().then(Utc::now),
                    ..self.to(ObservedState::Running, 100, "running")
                };
                let wrote = self.write(obs).await?;
                if first {
                    self.after_first_start().await;
                }
                return Ok(wrote);
            }
            // A short, steady interval: launch latency is what users wait for.
            let pause = if started.elapsed() < Duration::from_secs(5) {
                25
            } else {
                200
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        // Not yet. Look at the container: one that is gone (or never ran) fails the session
        // now rather than at the start timeout; one still running is waited for on the next
        // pass (the start timeout ends it if it never answers).
        self.inspect().await?;
        Ok(false)
    }

    /// The first_launch hook after the first start, then `go` with the URL when one is given.
    async fn after_first_start(&self) {
        let spec = match self.core.open_spec(self.row) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(session_id = %self.row.id, error = %e, "launch spec unreadable");
                return;
            }
        };
        let mut hooks = vec![("first_launch", Vec::new())];
        if !self.row.url.is_empty() {
            hooks.push(("go", vec![("KASM_URL".to_owned(), self.row.url.clone())]));
        }
        for (name, extra) in hooks {
            if let Some(hook) = spec.hooks.get(name) {
                match run_hook(self.core, self.row, self.address, hook, &extra).await {
                    Ok(out) => {
                        tracing::info!(session_id = %self.row.id, hook = name, exit_code = out.exit_code, "hook ran")
                    }
                    Err(e) => {
                        tracing::warn!(session_id = %self.row.id, hook = name, error = %e, "hook failed")
                    }
                }
            }
        }
        let mark = Observation {
            first_launch_done: Some(true),
            ..Observation::default()
        };
        // Carries the generation the run started with; a newer intent keeps it false, which
        // at worst runs the hook again on the next first start.
        let _ = self
            .core
            .store
            .observe(&self.row.id, self.row.generation, mark)
            .await;
    }

    async fn call(
        &self,
        what: &str,
        next: ObservedState,
        progress: i32,
        message: &str,
        f: impl AsyncFnOnce(
            AgentClient,
            agent_pb::SessionRef,
        )
            -> Result<tonic::Response<agent_pb::SessionContainer>, tonic::Status>,
    ) -> ApiResult<bool> {
        let client = self.client()?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, f(client, self.reference())).await;
        match answer {
            Ok(Ok(r)) => {
                let c = r.into_inner();
                let port = i32::try_from(c.port).unwrap_or(0);
                let obs = Observation {
                    host: Some(c.host),
                    port: Some(port),
                    ..self.to(next, progress, message)
                };
                self.write(obs).await
            }
            Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
                self.write(self.to(
                    ObservedState::Failed,
                    self.row.progress,
                    "failed: the session's container is gone",
                ))
                .await
            }
            Ok(Err(status)) => self.failed_call(what, status).await,
            Err(_) => {
                self.failed_call(what, tonic::Status::deadline_exceeded("no answer in time"))
                    .await
            }
        }
    }

    async fn start(&self) -> ApiResult<bool> {
        self.write(self.to(ObservedState::Starting, 30, "resuming"))
            .await?;
        let row = self.core.store.get(&self.row.id).await?;
        let Some(row) = row else { return Ok(false) };
        let again = Run {
            core: self.core,
            row: &row,
            address: self.address,
        };
        again
            .call(
                "resume",
                ObservedState::Starting,
                60,
                "resumed; waiting for the workspace to answer",
                async |mut c, r| c.resume_session(r).await,
            )
            .await
    }

    async fn pause(&self) -> ApiResult<bool> {
        self.call(
            "pause",
            ObservedState::Paused,
            100,
            "paused",
            async |mut c, r| c.pause_session(r).await,
        )
        .await
    }

    async fn stop(&self) -> ApiResult<bool> {
        self.call(
            "stop",
            ObservedState::Stopped,
            100,
            "stopped",
            async |mut c, r| c.stop_session(r).await,
        )
        .await
    }

    async fn remove(&self) -> ApiResult<bool> {
        if self.row.observed() != ObservedState::Deleting {
            self.write(self.to(ObservedState::Deleting, self.row.progress, "deleting"))
                .await?;
        }
        let row = self.core.store.get(&self.row.id).await?;
        let Some(row) = row else { return Ok(false) };
        let again = Run {
            core: self.core,
            row: &row,
            address: self.address,
        };
        let client = again.client()?;
        let mut c = client;
        match tokio::time::timeout(CALL_TIMEOUT, c.remove_session(again.reference())).await {
            // Removed, or there was nothing to remove: either way it is gone.
            Ok(Ok(_)) => {
                again
                    .write(again.to(ObservedState::Deleted, 100, "deleted"))
                    .await
            }
            Ok(Err(status)) => again.failed_call("delete", status).await,
            Err(_) => {
                again
                    .failed_call(
                        "delete",
                        tonic::Status::deadline_exceeded("no answer in time"),
                    )
                    .await
            }
        }
    }

    /// Adopts what the agent holds.
    async fn inspect(&self) -> ApiResult<bool> {
        let mut client = self.client()?;
        let answer =
            tokio::time::timeout(CALL_TIMEOUT, client.inspect_session(self.reference())).await;
        let c = match answer {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return self.failed_call("inspect", status).await,
            Err(_) => {
                return self
                    .failed_call(
                        "inspect",
                        tonic::Status::deadline_exceeded("no answer in time"),
                    )
                    .await;
            }
        };
        use agent_pb::ContainerState as C;
        let state = C::try_from(c.state).unwrap_or(C::Unspecified);
        let (observed, message) = match state {
            C::Running | C::Restarting => (
                ObservedState::Starting,
                "running; checking that the workspace answers",
            ),
            C::Paused => (ObservedState::Paused, "paused"),
            C::Created | C::Stopped | C::Dead => (ObservedState::Stopped, "stopped"),
            C::Removing | C::Missing | C::Unspecified => {
                if self.row.desired() == DesiredState::Deleted {
                    (ObservedState::Deleted, "deleted")
                } else {
                    (
                        ObservedState::Failed,
                        "failed: the session's container is gone",
                    )
                }
            }
        };
        let progress = if observed == ObservedState::Starting {
            60
        } else {
            100
        };
        let obs = Observation {
            host: Some(c.host),
            port: Some(i32::try_from(c.port).unwrap_or(0)),
            ..self.to(observed, progress, message)
        };
        self.write(obs).await
    }
}

/// Runs a hook (or command) in the session's container.
pub async fn run_hook(
    core: &Core,
    row: &Row,
    address: &str,
    hook: &crate::core::Hook,
    extra_env: &[(String, String)],
) -> ApiResult<agent_pb::ExecResponse> {
    let cmd = vec!["/bin/sh".to_owned(), "-c".to_owned(), hook.cmd.clone()];
    let mut environment: HashMap<String, String> = hook.environment.iter().cloned().collect();
    environment.extend(extra_env.iter().cloned());
    exec(
        core,
        row,
        address,
        cmd,
        &hook.user,
        environment,
        &hook.workdir,
        hook.privileged,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn exec(
    core: &Core,
    row: &Row,
    address: &str,
    cmd: Vec<String>,
    user: &str,
    environment: HashMap<String, String>,
    workdir: &str,
    privileged: bool,
) -> ApiResult<agent_pb::ExecResponse> {
    let mut client = core.peers.agent(address)?;
    let request = agent_pb::ExecRequest {
        session_id: row.id.clone(),
        cmd,
        user: user.to_owned(),
        environment,
        workdir: workdir.to_owned(),
        privileged,
    };
    match tokio::time::timeout(CALL_TIMEOUT, client.exec_in_session(request)).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => Err(match status.code() {
            tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument => {
                ApiError::FailedPrecondition(status.message().to_owned())
            }
            _ => ApiError::Unavailable(format!("agent {}: {}", row.agent_id, status.message())),
        }),
        Err(_) => Err(ApiError::Unavailable(format!(
            "agent {} did not finish the command in time",
            row.agent_id
        ))),
    }
}
