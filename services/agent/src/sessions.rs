//! Session operations on top of the runtime, each idempotent: a repeated create answers the
//! container that exists, start/stop/pause/resume leave a container already in the wanted
//! state alone, and removing a missing container succeeds.

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use rand::distr::{Alphanumeric, SampleString as _};

use crate::core::{Core, Resources, allocated};
use crate::error::{AgentError, AgentResult};
use crate::runtime::{
    ContainerInfo, ContainerState, ExecOutput, ExecSpec, ImageInfo, PullEvent, RuntimeError,
};
use crate::spec::{
    self, BuildContext, LABEL_AGENT, LABEL_SESSION, LABEL_USER, LABEL_WORKSPACE, SessionId,
    SessionSpec,
};

/// A session's container as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionContainer {
    pub session_id: String,
    pub container_id: String,
    /// `None`: the session has no container here.
    pub state: Option<ContainerState>,
    pub user_id: String,
    pub workspace_id: String,
    pub image: String,
    pub host: String,
    /// The published session port; 0 while not running.
    pub port: u16,
    pub password: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub resources: Resources,
}

impl SessionContainer {
    fn missing(id: &SessionId) -> Self {
        Self {
            session_id: id.to_string(),
            container_id: String::new(),
            state: None,
            user_id: String::new(),
            workspace_id: String::new(),
            image: String::new(),
            host: String::new(),
            port: 0,
            password: None,
            created_at: None,
            resources: Resources::default(),
        }
    }
}

const PASSWORD_LENGTH: usize = 24;

impl Core {
    fn view(&self, c: &ContainerInfo) -> SessionContainer {
        let label = |key: &str| c.labels.get(key).cloned().unwrap_or_default();
        let (cores, memory_mib, gpus) = spec::resources_from_labels(&c.labels);
        let key = format!("{}/tcp", self.config.session_port);
        let port = match c.state {
            ContainerState::Running | ContainerState::Paused => {
                c.ports.get(&key).copied().unwrap_or(0)
            }
            _ => 0,
        };
        SessionContainer {
            session_id: label(LABEL_SESSION),
            container_id: c.id.clone(),
            state: Some(c.state),
            user_id: label(LABEL_USER),
            workspace_id: label(LABEL_WORKSPACE),
            image: c.image.clone(),
            host: self.config.advertise_host.clone(),
            port,
            password: None,
            created_at: c.created_at,
            resources: Resources {
                cores,
                memory_mib,
                gpus,
            },
        }
    }

    /// The session's container, if this agent holds one.
    async fn find(&self, id: &SessionId) -> AgentResult<Option<ContainerInfo>> {
        let found = self.runtime.inspect(&id.container_name()).await?;
        Ok(found.filter(|c| {
            c.labels.get(LABEL_AGENT) == Some(&self.agent_id)
                && c.labels.get(LABEL_SESSION).map(String::as_str) == Some(id.as_str())
        }))
    }

    async fn require(&self, id: &SessionId) -> AgentResult<ContainerInfo> {
        self.find(id)
            .await?
            .ok_or_else(|| AgentError::NoContainer(id.clone()))
    }

    /// The container as it is now (after a change).
    async fn current(&self, id: &SessionId) -> AgentResult<SessionContainer> {
        Ok(self.view(&self.require(id).await?))
    }

    pub async fn create_session(&self, spec: SessionSpec) -> AgentResult<SessionContainer> {
        if self.is_draining() {
            return Err(AgentError::Draining);
        }
        let id = spec.session_id.clone();
        let _guard = self.lock_session(&id).await;
        if let Some(existing) = self.find(&id).await? {
            if existing.state != ContainerState::Created {
                let mut view = self.view(&existing);
                view.password = existing
                    .env
                    .iter()
                    .find_map(|e| e.strip_prefix("VNC_PW="))
                    .map(str::to_owned);
                return Ok(view);
            }
            // Never started: left by a create that did not finish. Nothing of the user's is in
            // it, so start over.
            tracing::info!(session_id = %id, "replacing a container that was never started");
            self.remove_container(&existing.id).await?;
        }
        // From the capacity check until the container exists (and so counts as allocated), no
        // other create may check: see `Core::admit`. Starting it needs no admission.
        let admission = self.admit().await;
        self.check_capacity(&spec).await?;
        let password = Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LENGTH);
        let context = BuildContext {
            agent_id: &self.agent_id,
            publish_ip: self.config.resolved_publish_ip(),
            session_port: self.config.session_port,
            hardening: &self.config.hardening,
        };
        let container = spec::build(&spec, &context, &password);
        let container_id = self.runtime.create(&container).await.map_err(|e| match e {
            RuntimeError::Conflict(message) => AgentError::Precondition(format!(
                "a container named {} exists and is not this agent's: {message}",
                container.name
            )),
            other => AgentError::Runtime(other),
        })?;
        drop(admission);
        if let Err(e) = self.runtime.start(&container_id).await {
            if let Err(cleanup) = self.remove_container(&container_id).await {
                tracing::warn!(session_id = %id, error = %cleanup, "could not remove a container that failed to start");
            }
            return Err(e.into());
        }
        tracing::info!(session_id = %id, container = %container_id, image = %spec.image, "session container started");
        let mut view = self.current(&id).await?;
        view.password = Some(password);
        Ok(view)
    }

    /// Refuses what this node cannot hold: GPUs it does not have, or more than is free.
    async fn check_capacity(&self, spec: &SessionSpec) -> AgentResult<()> {
        let capacity = self
            .current_capacity()
            .await
            .map_err(|reason| AgentError::Runtime(RuntimeError::Unavailable(reason)))?;
        if spec.gpu_count > 0 && capacity.gpus == 0 {
            return Err(AgentError::Precondition(format!(
                "spec.gpu_count: {} GPU(s) requested but this node has no GPUs",
                spec.gpu_count
            )));
        }
        let held = allocated(&self.session_containers().await?);
        let free = |total: f64, used: f64| (total - used).max(0.0);
        let mut short = Vec::new();
        if spec.cores > free(capacity.cores, held.cores) + 1e-9 {
            short.push(format!(
                "cores: {} requested, {} free of {}",
                spec.cores,
                free(capacity.cores, held.cores),
                capacity.cores
            ));
        }
        let free_memory = (capacity.memory_mib - held.memory_mib).max(0);
        if spec.memory_mib > free_memory {
            short.push(format!(
                "memory: {} MiB requested, {free_memory} MiB free of {}",
                spec.memory_mib, capacity.memory_mib
            ));
        }
        let free_gpus = capacity.gpus.saturating_sub(held.gpus);
        if spec.gpu_count > free_gpus {
            short.push(format!(
                "gpus: {} requested, {free_gpus} free of {}",
                spec.gpu_count, capacity.gpus
            ));
        }
        if short.is_empty() {
            Ok(())
        } else {
            Err(AgentError::Precondition(format!(
                "not enough free capacity on agent {}: {}",
                self.agent_id,
                short.join("; ")
            )))
        }
    }

    async fn remove_container(&self, container_id: &str) -> AgentResult<bool> {
        match self.runtime.remove(container_id).await {
            Ok(()) => Ok(true),
            Err(RuntimeError::NoSuchContainer(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts (or unpauses) the container.
    pub async fn start_session(&self, id: &SessionId) -> AgentResult<SessionContainer> {
        let _guard = self.lock_session(id).await;
        let c = self.require(id).await?;
        match c.state {
            ContainerState::Running | ContainerState::Restarting => {}
            ContainerState::Paused => self.runtime.unpause(&c.id).await?,
            _ => self.runtime.start(&c.id).await?,
        }
        self.current(id).await
    }

    pub async fn stop_session(&self, id: &SessionId) -> AgentResult<SessionContainer> {
        let _guard = self.lock_session(id).await;
        let c = self.require(id).await?;
        match c.state {
            ContainerState::Stopped | ContainerState::Created | ContainerState::Dead => {}
            ContainerState::Paused => {
                self.runtime.unpause(&c.id).await?;
                self.runtime
                    .stop(&c.id, self.config.stop_timeout_secs)
                    .await?;
            }
            _ => {
                self.runtime
                    .stop(&c.id, self.config.stop_timeout_secs)
                    .await?
            }
        }
        self.current(id).await
    }

    pub async fn pause_session(&self, id: &SessionId) -> AgentResult<SessionContainer> {
        let _guard = self.lock_session(id).await;
        let c = self.require(id).await?;
        match c.state {
            ContainerState::Paused => {}
            ContainerState::Running => self.runtime.pause(&c.id).await?,
            other => {
                return Err(AgentError::Precondition(format!(
                    "session {id} cannot be paused: its container is {}; start it first",
                    state_word(other)
                )));
            }
        }
        self.current(id).await
    }

    /// Brings the container back to running from paused or stopped.
    pub async fn resume_session(&self, id: &SessionId) -> AgentResult<SessionContainer> {
        self.start_session(id).await
    }

    /// `true` when a container was removed, `false` when there was none.
    pub async fn remove_session(&self, id: &SessionId) -> AgentResult<bool> {
        let _guard = self.lock_session(id).await;
        match self.find(id).await? {
            Some(c) => {
                let removed = self.remove_container(&c.id).await?;
                tracing::info!(session_id = %id, container = %c.id, "session container removed");
                Ok(removed)
            }
            None => Ok(false),
        }
    }

    /// The container, or a "missing" answer.
    pub async fn inspect_session(&self, id: &SessionId) -> AgentResult<SessionContainer> {
        Ok(match self.find(id).await? {
            Some(c) => self.view(&c),
            None => SessionContainer::missing(id),
        })
    }

    pub async fn exec_in_session(
        &self,
        id: &SessionId,
        exec: &ExecSpec,
    ) -> AgentResult<ExecOutput> {
        let c = self.require(id).await?;
        if c.state != ContainerState::Running {
            return Err(AgentError::Precondition(format!(
                "session {id} is {}; commands run only in running sessions",
                state_word(c.state)
            )));
        }
        Ok(self.runtime.exec(&c.id, exec).await?)
    }

    pub async fn list_sessions(&self) -> AgentResult<Vec<SessionContainer>> {
        let mut views: Vec<SessionContainer> = self
            .session_containers()
            .await?
            .iter()
            .map(|c| self.view(c))
            .collect();
        views.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        Ok(views)
    }

    pub async fn list_images(&self) -> AgentResult<Vec<ImageInfo>> {
        Ok(self.runtime.list_images().await?)
    }

    /// Pulls an image. When the pull fails but the image is on the node, the stream ends with
    /// a step saying so instead of an error.
    pub fn pull_image(&self, image: &str) -> BoxStream<'static, AgentResult<PullEvent>> {
        let runtime = self.runtime.clone();
        let image = image.to_owned();
        let pulled = runtime.pull(&image);
        let finish = async move {
            let held = runtime.list_images().await.map(|images| {
                images.iter().any(|i| {
                    i.tags
                        .iter()
                        .any(|t| t == &image || t == &format!("{image}:latest"))
                })
            });
            (held, image)
        };
        futures::stream::unfold((pulled, Some(finish)), |(mut pulled, finish)| async move {
            match pulled.next().await {
                Some(Ok(event)) => Some((Ok(event), (pulled, finish))),
                Some(Err(e)) => {
                    let finish = finish?;
                    let (held, image) = finish.await;
                    let answer = match held {
                        Ok(true) => Ok(PullEvent {
                            status: format!(
                                "pull failed ({e}); using the image already on this node"
                            ),
                            detail: image,
                            percent: 100,
                        }),
                        _ => Err(AgentError::Precondition(format!(
                            "image not present on this node: {image} could not be pulled: {e}"
                        ))),
                    };
                    Some((answer, (futures::stream::empty().boxed(), None)))
                }
                None => None,
            }
        })
        .boxed()
    }
}

fn state_word(state: ContainerState) -> &'static str {
    match state {
        ContainerState::Created => "created",
        ContainerState::Running => "running",
        ContainerState::Paused => "paused",
        ContainerState::Stopped => "stopped",
        ContainerState::Restarting => "restarting",
        ContainerState::Removing => "being removed",
        ContainerState::Dead => "dead",
    }
}
