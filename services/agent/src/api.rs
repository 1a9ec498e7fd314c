//! The tonic service: check the caller (the session-manager's certificate; users with
//! agents.view / agents.modify for status and drain), convert, delegate to
//! [`crate::core::Core`]. No logic lives here.

use std::sync::Arc;
use std::time::Duration;

use atrium_proto::agent::v1 as pb;
use atrium_proto::agent::v1::agent_service_server::AgentService;
use atrium_service_kit::ApiError;
use atrium_service_kit::auth::{Principal, permissions, principal};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tonic::{Request, Response, Status};

use crate::access::{self, UserAccess};
use crate::core::SharedCore;
use crate::error::AgentError;
use crate::runtime::{ContainerState, ExecSpec};
use crate::sessions::SessionContainer;
use crate::spec::{SessionId, SessionSpec};

pub struct AgentApi {
    core: SharedCore,
    users: Option<Arc<UserAccess>>,
}

impl AgentApi {
    /// `users`: when set, users and API keys with agents.view / agents.modify may read the
    /// agent's status and drain it.
    pub fn new(core: SharedCore, users: Option<Arc<UserAccess>>) -> Self {
        Self { core, users }
    }

    async fn require<T>(&self, request: &Request<T>, permission: &str) -> Result<(), Status> {
        let principal = principal(request)?;
        access::require(&principal, self.users.as_deref(), permission)
            .await
            .map_err(Status::from)
    }
}

/// Only Atrium's services (the session-manager) may call an agent.
fn service_only<T>(request: &Request<T>) -> Result<(), Status> {
    match principal(request)? {
        Principal::Service(_) => Ok(()),
        _ => Err(AgentError::NotService.into()),
    }
}

fn session_id(raw: &str) -> Result<SessionId, Status> {
    SessionId::parse("session_id", raw).map_err(Status::from)
}

fn state(state: Option<ContainerState>) -> pb::ContainerState {
    match state {
        None => pb::ContainerState::Missing,
        Some(ContainerState::Created) => pb::ContainerState::Created,
        Some(ContainerState::Running) => pb::ContainerState::Running,
        Some(ContainerState::Paused) => pb::ContainerState::Paused,
        Some(ContainerState::Stopped) => pb::ContainerState::Stopped,
        Some(ContainerState::Restarting) => pb::ContainerState::Restarting,
        Some(ContainerState::Removing) => pb::ContainerState::Removing,
        Some(ContainerState::Dead) => pb::ContainerState::Dead,
    }
}

fn container(c: SessionContainer) -> pb::SessionContainer {
    pb::SessionContainer {
        session_id: c.session_id,
        container_id: c.container_id,
        state: state(c.state).into(),
        user_id: c.user_id,
        workspace_id: c.workspace_id,
        image: c.image,
        host: c.host,
        port: u32::from(c.port),
        session_password: c.password.unwrap_or_default(),
        created_at: c.created_at.map(|t| prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        cores: c.resources.cores,
        memory_mib: c.resources.memory_mib,
        gpu_count: c.resources.gpus,
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn create_session(
        &self,
        r: Request<pb::CreateSessionRequest>,
    ) -> Answer<pb::SessionContainer> {
        service_only(&r)?;
        let raw = r
            .into_inner()
            .spec
            .ok_or_else(|| Status::from(ApiError::invalid("spec", "required")))?;
        let spec = SessionSpec::try_from(raw)?;
        Ok(Response::new(container(
            self.core.create_session(spec).await?,
        )))
    }

    async fn start_session(&self, r: Request<pb::SessionRef>) -> Answer<pb::SessionContainer> {
        service_only(&r)?;
        let id = session_id(&r.get_ref().session_id)?;
        Ok(Response::new(container(
            self.core.start_session(&id).await?,
        )))
    }

    async fn stop_session(&self, r: Request<pb::SessionRef>) -> Answer<pb::SessionContainer> {
        service_only(&r)?;
        let id = session_id(&r.get_ref().session_id)?;
        Ok(Response::new(container(self.core.stop_session(&id).await?)))
    }

    async fn pause_session(&self, r: Request<pb::SessionRef>) -> Answer<pb::SessionContainer> {
        service_only(&r)?;
        let id = session_id(&r.get_ref().session_id)?;
        Ok(Response::new(container(
            self.core.pause_session(&id).await?,
        )))
    }

    async fn resume_session(&self, r: Request<pb::SessionRef>) -> Answer<pb::SessionContainer> {
        service_only(&r)?;
        let id = session_id(&r.get_ref().session_id)?;
        Ok(Response::new(container(
            self.core.resume_session(&id).await?,
        )))
    }

    async fn remove_session(
        &self,
        r: Request<pb::SessionRef>,
    ) -> Answer<pb::RemoveSessionResponse> {
        service_only(&r)?;
        let id = session_id(&r.get_ref().session_id)?;
        let removed = self.core.remove_session(&id).await?;
        Ok(Response::new(pb::RemoveSessionResponse { removed }))
    }

    async fn inspect_session(&self, r: Request<pb::SessionRef>) -> Answer<pb::SessionContainer> {
        service_only(&r)?;
        let id = session_id(&r.get_ref().session_id)?;
        Ok(Response::new(container(
            self.core.inspect_session(&id).await?,
        )))
    }

    async fn exec_in_session(&self, r: Request<pb::ExecRequest>) -> Answer<pb::ExecResponse> {
        service_only(&r)?;
        let req = r.into_inner();
        let id = session_id(&req.session_id)?;
        if req.cmd.is_empty() || req.cmd[0].is_empty() {
            return Err(ApiError::invalid("cmd", "required").into());
        }
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let exec = ExecSpec {
            cmd: req.cmd,
            user: non_empty(req.user),
            env: req
                .environment
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            workdir: non_empty(req.workdir),
            privileged: req.privileged,
        };
        let out = self.core.exec_in_session(&id, &exec).await?;
        Ok(Response::new(pb::ExecResponse {
            exit_code: out.exit_code,
            output: out.output,
        }))
    }

    async fn list_sessions(
        &self,
        r: Request<pb::ListSessionsRequest>,
    ) -> Answer<pb::ListSessionsResponse> {
        self.require(&r, permissions::AGENTS_VIEW).await?;
        let sessions = self.core.list_sessions().await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions.into_iter().map(container).collect(),
        }))
    }

    async fn list_images(
        &self,
        r: Request<pb::ListImagesRequest>,
    ) -> Answer<pb::ListImagesResponse> {
        self.require(&r, permissions::AGENTS_VIEW).await?;
        let images = self.core.list_images().await?;
        Ok(Response::new(pb::ListImagesResponse {
            images: images
                .into_iter()
                .map(|i| pb::ImageInfo {
                    id: i.id,
                    tags: i.tags,
                    size_bytes: i.size_bytes,
                })
                .collect(),
        }))
    }

    type PullImageStream = BoxStream<'static, Result<pb::PullProgress, Status>>;

    async fn pull_image(&self, r: Request<pb::PullImageRequest>) -> Answer<Self::PullImageStream> {
        service_only(&r)?;
        let image = r.into_inner().image;
        if image.is_empty() || image.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid("image", "must be a Docker image reference").into());
        }
        let stream = self
            .core
            .pull_image(&image)
            .map(|step| {
                step.map(|e| pb::PullProgress {
                    status: e.status,
                    detail: e.detail,
                    percent: e.percent,
                })
                .map_err(Status::from)
            })
            .boxed();
        Ok(Response::new(stream))
    }

    async fn drain(&self, r: Request<pb::DrainRequest>) -> Answer<pb::AgentStatus> {
        self.require(&r, permissions::AGENTS_MODIFY).await?;
        let deadline = r
            .into_inner()
            .deadline_secs
            .map(|s| Duration::from_secs(s.into()));
        self.core.start_drain(deadline);
        Ok(Response::new(self.core.status().await.into()))
    }

    async fn get_status(&self, r: Request<pb::GetStatusRequest>) -> Answer<pb::AgentStatus> {
        self.require(&r, permissions::AGENTS_VIEW).await?;
        Ok(Response::new(self.core.status().await.into()))
    }
}
