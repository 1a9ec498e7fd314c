//! The gRPC API (`atrium.session.v1.SessionService`). Calls record intent and return at once;
//! the reconciler does the work and WatchSession streams it.
//!
//! Who may do what: a user acts on their own sessions within their effective settings
//! (`allow_kasm_pause`, `allow_kasm_stop`, `allow_kasm_delete`, `allow_kasm_force_delete`);
//! `sessions.view`, `sessions.modify` and `sessions.delete` extend that to everyone's sessions.
//! Another user's session is "not found" to a caller who may not see it (no existence oracle).
//! Only the gateway's service identity may read a session's secret.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use atrium_proto::session::v1 as pb;
use atrium_proto::session::v1::session_service_server::SessionService;
use atrium_service_kit::auth::permissions::{
    AGENTS_MODIFY, AGENTS_VIEW, SESSIONS_DELETE, SESSIONS_EXEC, SESSIONS_MODIFY, SESSIONS_VIEW,
};
use atrium_service_kit::auth::{Principal, Scope, ServiceId, principal};
use atrium_service_kit::paging::Page;
use atrium_service_kit::validate;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::core::{SharedCore, is_final};
use crate::keepalive;
use crate::launch::{self, LaunchRequest};
use crate::reconciler;
use crate::state::{DesiredState, ObservedState};
use crate::store::{ListFilter, Row, audit};
use crate::usage::UsageStatus;

pub struct SessionApi {
    core: SharedCore,
    audit: mpsc::Sender<crate::entity::audit_event::ActiveModel>,
}

/// The authenticated caller.
enum Caller {
    User(String),
    Key(atrium_service_kit::auth::ApiKeyPrincipal),
    Service(ServiceId),
}

impl Caller {
    fn actor(&self) -> String {
        match self {
            Caller::User(id) => format!("user:{id}"),
            Caller::Key(k) => format!("api_key:{}", k.key_id),
            Caller::Service(s) => format!("service:{s}"),
        }
    }

    fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(id) => Some(id),
            _ => None,
        }
    }
}

fn caller<T>(request: &Request<T>) -> ApiResult<Caller> {
    match principal(request)? {
        Principal::User(u) if u.scope == Scope::Full => Ok(Caller::User(u.user_id)),
        Principal::User(_) => Err(ApiError::PermissionDenied("finish signing in first".into())),
        Principal::ApiKey(k) => Ok(Caller::Key(k)),
        Principal::Service(s) => Ok(Caller::Service(s)),
    }
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn ts_ms(ms: i64) -> Option<prost_types::Timestamp> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(ts)
}

pub fn to_proto(row: &Row, expires_ms: Option<i64>) -> pb::Session {
    let live = matches!(
        row.observed(),
        ObservedState::Running | ObservedState::Paused
    );
    pb::Session {
        id: row.id.clone(),
        user_id: row.user_id.clone(),
        workspace_id: row.workspace_id.clone(),
        image: row.image.clone(),
        desired_state: row.desired().to_proto().into(),
        observed_state: row.observed().to_proto().into(),
        progress: u32::try_from(row.progress).unwrap_or(0),
        message: row.message.clone(),
        generation: u64::try_from(row.generation).unwrap_or(0),
        agent_id: row.agent_id.clone(),
        zone_id: row.zone_id.clone(),
        host: if live {
            row.host.clone()
        } else {
            String::new()
        },
        port: if live {
            u32::try_from(row.port).unwrap_or(0)
        } else {
            0
        },
        created_at: Some(ts(row.created_at)),
        started_at: row.started_at.map(ts),
        // The keepalive deadline is last keepalive + keepalive_expiration (the creation counts
        // as the first keepalive); with a time limit there is none to derive.
        last_keepalive_at: row.last_keepalive_at.map(ts).or_else(|| {
            expires_ms
                .filter(|_| row.time_limit_secs.is_none() && row.desired() == DesiredState::Running)
                .and_then(|ms| ts_ms(ms - row.keepalive_secs.saturating_mul(1000)))
        }),
        expires_at: expires_ms.and_then(ts_ms),
        updated_at: Some(ts(row.updated_at)),
        url: row.url.clone(),
    }
}

fn session_id(raw: &str) -> ApiResult<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid("session_id", "is required"));
    }
    // Accepted with or without dashes (Kasm's ids are dashless).
    uuid::Uuid::parse_str(trimmed)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::invalid("session_id", "is not a session id"))
}

impl SessionApi {
    pub fn new(
        core: SharedCore,
        audit: mpsc::Sender<crate::entity::audit_event::ActiveModel>,
    ) -> Self {
        Self { core, audit }
    }

    async fn holds(&self, caller: &Caller, permission: &str) -> ApiResult<bool> {
        Ok(match caller {
            Caller::Service(_) => true,
            Caller::Key(k) => k.require(permission).is_ok(),
            Caller::User(id) => self.core.peers.permissions(id).await?.holds(permission),
        })
    }

    async fn require(&self, caller: &Caller, permission: &str) -> ApiResult<()> {
        if self.holds(caller, permission).await? {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "you lack permission {permission}"
            )))
        }
    }

    /// The session if the caller owns it or holds `permission`; others see "not found".
    async fn visible(&self, caller: &Caller, id: &str, permission: &str) -> ApiResult<Row> {
        let id = session_id(id)?;
        let row = self.core.store.get(&id).await?;
        self.authorize(caller, &id, row, permission).await
    }

    /// As [`Self::visible`], from the keepalive path's row cache.
    async fn visible_for_keepalive(&self, caller: &Caller, id: &str) -> ApiResult<Row> {
        let id = session_id(id)?;
        let row = self.core.session_for_keepalive(&id).await?;
        self.authorize(caller, &id, row, SESSIONS_MODIFY).await
    }

    async fn authorize(
        &self,
        caller: &Caller,
        id: &str,
        row: Option<Row>,
        permission: &str,
    ) -> ApiResult<Row> {
        let not_found = || ApiError::not_found(format!("session {id}"));
        let row = row.ok_or_else(not_found)?;
        if caller.user_id() == Some(row.user_id.as_str()) {
            return Ok(row);
        }
        if self.holds(caller, SESSIONS_VIEW).await? || self.holds(caller, permission).await? {
            return Ok(row);
        }
        Err(not_found())
    }

    /// The target user of a call that names one (empty: the caller).
    async fn target_user(&self, caller: &Caller, user_id: &str, field: &str) -> ApiResult<String> {
        let user_id = user_id.trim();
        match (user_id.is_empty(), caller.user_id()) {
            (true, Some(own)) => Ok(own.to_owned()),
            (true, None) => Err(ApiError::invalid(field, "is required for this caller")),
            (false, Some(own)) if own == user_id => Ok(own.to_owned()),
            (false, _) => {
                uuid::Uuid::parse_str(user_id)
                    .map_err(|_| ApiError::invalid(field, "is not a user id"))?;
                self.require(caller, SESSIONS_MODIFY).await?;
                Ok(user_id.to_owned())
            }
        }
    }

    async fn expires(&self, id: &str) -> Option<i64> {
        self.core.deadlines.get(id).await.ok().flatten()
    }

    async fn view(&self, row: &Row) -> pb::Session {
        to_proto(row, self.expires(&row.id).await)
    }

    fn audit_later(&self, event: crate::entity::audit_event::ActiveModel) {
        if self.audit.try_send(event).is_err() {
            tracing::warn!("audit queue full: an audit event was not recorded");
        }
    }

    /// A change of desired state by the owner (within `allowed`) or a holder of `permission`.
    async fn change(
        &self,
        request: Request<pb::SessionRef>,
        desired: DesiredState,
        permission: &str,
        allowed: impl Fn(&crate::peers::Settings) -> bool,
        setting: &str,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = caller(&request)?;
        let row = self
            .visible(&caller, &request.get_ref().session_id, permission)
            .await?;
        let own = caller.user_id() == Some(row.user_id.as_str());
        let permitted = if own {
            allowed(&self.core.peers.settings(&row.user_id).await?)
                || self.holds(&caller, permission).await?
        } else {
            self.holds(&caller, permission).await?
        };
        if !permitted {
            return Err(ApiError::PermissionDenied(if own {
                format!("your settings do not allow this ({setting} is off)")
            } else {
                format!("you lack permission {permission}")
            })
            .into());
        }
        if row.desired() == DesiredState::Deleted {
            return Err(ApiError::FailedPrecondition(format!(
                "session {} is being deleted",
                row.id
            ))
            .into());
        }
        if row.observed() == ObservedState::Failed && desired != DesiredState::Deleted {
            return Err(ApiError::FailedPrecondition(format!(
                "session {} failed ({}); delete it",
                row.id, row.message
            ))
            .into());
        }
        // A resume starts the clock again: a spent allowance refuses it as it refuses a launch.
        if desired == DesiredState::Running && row.desired() != DesiredState::Running {
            launch::check_usage(&self.core.usage, &row.user_id).await?;
        }
        let kind = match desired {
            DesiredState::Running => "session.resume",
            DesiredState::Paused => "session.pause",
            DesiredState::Stopped => "session.stop",
            DesiredState::Deleted => "session.delete",
        };
        let event = audit(
            kind,
            Some(&row.user_id),
            &caller.actor(),
            &row.id,
            serde_json::json!({}),
        );
        if row.desired() == desired {
            return Ok(Response::new(self.view(&row).await));
        }
        let updated = self.core.set_desired(&row, desired, Some(event)).await?;
        Ok(Response::new(self.view(&updated).await))
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Session, Status>> + Send>>;

#[tonic::async_trait]
impl SessionService for SessionApi {
    async fn request_session(
        &self,
        request: Request<pb::RequestSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let user_id = self.target_user(&caller, &req.user_id, "user_id").await?;
        let row = launch::admit(
            &self.core,
            LaunchRequest {
                user_id,
                workspace_id: req.workspace_id.trim().to_owned(),
                options: req.options.unwrap_or_default(),
                actor: caller.actor(),
            },
        )
        .await?;
        Ok(Response::new(self.view(&row).await))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = caller(&request)?;
        let row = self
            .visible(&caller, &request.get_ref().session_id, SESSIONS_VIEW)
            .await?;
        Ok(Response::new(self.view(&row).await))
    }

    type WatchSessionStream = WatchStream;

    async fn watch_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<Self::WatchSessionStream>, Status> {
        let caller = caller(&request)?;
        // Subscribe first, so no change between the read and the subscription is missed.
        let mut changes = self.core.subscribe();
        let row = self
            .visible(&caller, &request.get_ref().session_id, SESSIONS_VIEW)
            .await?;
        let core = self.core.clone();
        let (tx, rx) = mpsc::channel::<Result<pb::Session, Status>>(16);
        let first = to_proto(&row, core.deadlines.get(&row.id).await.ok().flatten());
        tokio::spawn(async move {
            let id = row.id.clone();
            let mut last = first.clone();
            if tx.send(Ok(first)).await.is_err() || is_final(&row) {
                return;
            }
            // Changes made by other replicas are not broadcast here: read the row again now
            // and then, as a backstop.
            let mut backstop = tokio::time::interval(Duration::from_secs(1));
            backstop.tick().await;
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    got = changes.recv() => match got {
                        Ok(r) if r.id == id => Some(r),
                        Ok(_) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            core.store.get(&id).await.ok().flatten()
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = backstop.tick() => core.store.get(&id).await.ok().flatten(),
                };
                let Some(r) = next else { continue };
                let mut session = to_proto(&r, None);
                session.expires_at = last.expires_at;
                let changed = session.observed_state != last.observed_state
                    || session.desired_state != last.desired_state
                    || session.progress != last.progress
                    || session.message != last.message
                    || session.port != last.port;
                if changed {
                    session.expires_at =
                        core.deadlines.get(&id).await.ok().flatten().and_then(ts_ms);
                    if tx.send(Ok(session.clone())).await.is_err() {
                        return;
                    }
                    last = session;
                }
                if is_final(&r) {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let page = Page::from_request(req.page.as_ref())?;
        let mut filter = ListFilter {
            user_id: (!req.user_id.trim().is_empty()).then(|| req.user_id.trim().to_owned()),
            workspace_id: (!req.workspace_id.is_empty()).then(|| req.workspace_id.clone()),
            agent_id: (!req.agent_id.is_empty()).then(|| req.agent_id.clone()),
            observed: None,
            include_ended: req.include_ended,
        };
        if req.observed_state != 0 {
            let state = pb::ObservedState::try_from(req.observed_state)
                .ok()
                .and_then(ObservedState::from_proto)
                .ok_or_else(|| ApiError::invalid("observed_state", "unknown state"))?;
            filter.observed = Some(state);
        }
        let others = req.all_users
            || filter
                .user_id
                .as_deref()
                .is_some_and(|u| Some(u) != caller.user_id());
        if others || caller.user_id().is_none() {
            self.require(&caller, SESSIONS_VIEW).await?;
        } else {
            filter.user_id = caller.user_id().map(str::to_owned);
        }
        let rows = self
            .core
            .store
            .list(&filter, page.after.as_deref(), page.fetch_limit())
            .await?;
        let (rows, page) = page.finish(rows, |r| r.id.clone());
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        // Deadlines in one round trip; a list still answers while Redis is away.
        let deadlines = self
            .core
            .deadlines
            .get_many(&ids)
            .await
            .unwrap_or_else(|_| vec![None; ids.len()]);
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: rows
                .iter()
                .zip(deadlines)
                .map(|(r, d)| to_proto(r, d))
                .collect(),
            page: Some(page),
        }))
    }

    async fn keepalive(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::KeepaliveResponse>, Status> {
        let caller = caller(&request)?;
        let row = self
            .visible_for_keepalive(&caller, &request.get_ref().session_id)
            .await?;
        if caller.user_id() != Some(row.user_id.as_str()) {
            self.require(&caller, SESSIONS_MODIFY).await?;
        }
        let answer = keepalive::keepalive(&self.core, &row).await?;
        if answer.extended {
            let until = answer
                .expires_at
                .as_ref()
                .and_then(|t| {
                    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
                })
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            self.audit_later(audit(
                "session.keepalive",
                Some(&row.user_id),
                &caller.actor(),
                &row.id,
                serde_json::json!({ "expires_at": until }),
            ));
        }
        Ok(Response::new(answer))
    }

    async fn pause(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::Session>, Status> {
        self.change(
            request,
            DesiredState::Paused,
            SESSIONS_MODIFY,
            |s| s.allow_pause,
            "allow_kasm_pause",
        )
        .await
    }

    async fn stop(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::Session>, Status> {
        self.change(
            request,
            DesiredState::Stopped,
            SESSIONS_MODIFY,
            |s| s.allow_stop,
            "allow_kasm_stop",
        )
        .await
    }

    async fn resume(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::Session>, Status> {
        self.change(
            request,
            DesiredState::Running,
            SESSIONS_MODIFY,
            |_| true,
            "",
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::Session>, Status> {
        self.change(
            request,
            DesiredState::Deleted,
            SESSIONS_DELETE,
            |s| s.allow_delete,
            "allow_kasm_delete",
        )
        .await
    }

    async fn force_delete(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = caller(&request)?;
        let row = self
            .visible(&caller, &request.get_ref().session_id, SESSIONS_DELETE)
            .await?;
        let own = caller.user_id() == Some(row.user_id.as_str());
        let permitted = self.holds(&caller, SESSIONS_DELETE).await?
            || (own
                && self
                    .core
                    .peers
                    .settings(&row.user_id)
                    .await?
                    .allow_force_delete);
        if !permitted {
            return Err(ApiError::PermissionDenied(format!(
                "force delete needs permission {SESSIONS_DELETE} (or allow_kasm_force_delete for your own)"
            ))
            .into());
        }
        let event = audit(
            "session.force_delete",
            Some(&row.user_id),
            &caller.actor(),
            &row.id,
            serde_json::json!({}),
        );
        let updated = self
            .core
            .store
            .force_deleted(&row.id, event)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("session {}", row.id)))?;
        let _ = self.core.deadlines.remove(&row.id).await;
        // The orphan sweep removes the container once the agent can be reached.
        self.core.changed(&updated);
        Ok(Response::new(self.view(&updated).await))
    }

    async fn exec(
        &self,
        request: Request<pb::ExecRequest>,
    ) -> Result<Response<pb::ExecResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let row = self
            .visible(&caller, &req.session_id, SESSIONS_MODIFY)
            .await?;
        if caller.user_id() != Some(row.user_id.as_str()) {
            self.require(&caller, SESSIONS_MODIFY).await?;
        }
        // Who may, before anything about the session's state.
        match (req.hook.trim(), req.cmd.is_empty()) {
            ("", true) => {
                return Err(ApiError::invalid("hook", "name a hook or give a command").into());
            }
            (_, true) => {}
            ("", false) => {
                // A free command is an administrator's tool, or a holder of sessions.exec's
                // (an integration's API key: Kasm's exec_command_kasm).
                let allowed = match &caller {
                    Caller::Service(_) => true,
                    Caller::User(id) => {
                        let held = self.core.peers.permissions(id).await?;
                        held.administrator || held.holds(SESSIONS_EXEC)
                    }
                    Caller::Key(k) => k.require(SESSIONS_EXEC).is_ok(),
                };
                if !allowed {
                    return Err(ApiError::PermissionDenied(
                        "only administrators and holders of sessions.exec run commands in sessions; users run the workspace's hooks".into(),
                    )
                    .into());
                }
            }
            (_, false) => {
                return Err(ApiError::invalid("cmd", "give a hook or a command, not both").into());
            }
        }
        if row.observed() != ObservedState::Running {
            return Err(ApiError::FailedPrecondition(format!(
                "session {} is {}; commands run only in running sessions",
                row.id,
                row.observed()
            ))
            .into());
        }
        let (fact, status) = self.core.agent(&row.agent_id).await?;
        let address = status
            .map(|s| s.address)
            .filter(|_| !matches!(fact, crate::decide::AgentFact::Missing(_)))
            .ok_or_else(|| {
                ApiError::Unavailable(format!("agent {} is not reachable", row.agent_id))
            })?;
        let answer = if req.cmd.is_empty() {
            let hook = req.hook.trim();
            let spec = self.core.open_spec(&row)?;
            let h = spec.hooks.get(hook).ok_or_else(|| {
                ApiError::invalid(
                    "hook",
                    format!(
                        "workspace {} has no {hook:?} hook (first_launch, go, assign)",
                        row.workspace_id
                    ),
                )
            })?;
            let mut extra = Vec::new();
            if !req.url.is_empty() {
                if !launch::url_ok(&req.url) {
                    return Err(
                        ApiError::invalid("url", "must be an http:// or https:// URL").into(),
                    );
                }
                extra.push(("KASM_URL".to_owned(), req.url.clone()));
            }
            reconciler::run_hook(&self.core, &row, &address, h, &extra).await?
        } else {
            reconciler::exec(
                &self.core,
                &row,
                &address,
                req.cmd.clone(),
                "",
                HashMap::new(),
                "",
                false,
            )
            .await?
        };
        self.audit_later(audit(
            "session.exec",
            Some(&row.user_id),
            &caller.actor(),
            &row.id,
            serde_json::json!({ "hook": req.hook, "cmd": req.cmd, "exit_code": answer.exit_code }),
        ));
        Ok(Response::new(pb::ExecResponse {
            exit_code: answer.exit_code,
            output: answer.output,
        }))
    }

    async fn go_session(
        &self,
        request: Request<pb::GoSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let user_id = self.target_user(&caller, &req.user_id, "user_id").await?;
        // The user's own default beats the group's default_image.
        let own = self
            .core
            .peers
            .user_settings(&user_id)
            .await?
            .default_workspace_image;
        let workspace = if own.is_empty() {
            self.core.peers.settings(&user_id).await?.default_image
        } else {
            own
        };
        if workspace.is_empty() {
            return Err(ApiError::FailedPrecondition(
                "no default workspace: neither your settings nor your groups' default_image name one".into(),
            )
            .into());
        }
        // default_image may name the workspace by id or by image name.
        let launchable = self.core.peers.launchable(&user_id).await?;
        let chosen = launchable
            .iter()
            .find(|w| w.id == workspace)
            .or_else(|| {
                launchable
                    .iter()
                    .find(|w| w.name == workspace || w.friendly_name == workspace)
            })
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!(
                    "the default workspace {workspace:?} is not launchable for this user"
                ))
            })?;
        let filter = ListFilter {
            user_id: Some(user_id.clone()),
            workspace_id: Some(chosen.id.clone()),
            ..ListFilter::default()
        };
        let existing = self.core.store.list(&filter, None, 100).await?;
        if let Some(row) = existing.iter().find(|r| {
            r.desired() != DesiredState::Deleted
                && !r.observed().is_terminal()
                && r.observed() != ObservedState::Lost
        }) {
            let row = if row.desired() == DesiredState::Running {
                row.clone()
            } else {
                launch::check_usage(&self.core.usage, &row.user_id).await?;
                let event = audit(
                    "session.resume",
                    Some(&row.user_id),
                    &caller.actor(),
                    &row.id,
                    serde_json::json!({"via": "go"}),
                );
                self.core
                    .set_desired(row, DesiredState::Running, Some(event))
                    .await?
            };
            return Ok(Response::new(self.view(&row).await));
        }
        let row = launch::admit(
            &self.core,
            LaunchRequest {
                user_id,
                workspace_id: chosen.id.clone(),
                options: req.options.unwrap_or_default(),
                actor: caller.actor(),
            },
        )
        .await?;
        Ok(Response::new(self.view(&row).await))
    }

    async fn explain_session(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::SessionExplanation>, Status> {
        let caller = caller(&request)?;
        let row = self
            .visible(&caller, &request.get_ref().session_id, SESSIONS_VIEW)
            .await?;
        let expires = self.expires(&row.id).await;
        let settings = self.core.owner_settings(&row).await;
        let usage = self.core.usage.check(&row.user_id).await;
        let explanation = explain(&row, expires, &settings, &usage, Utc::now());
        Ok(Response::new(pb::SessionExplanation {
            session: Some(to_proto(&row, expires)),
            ..explanation
        }))
    }

    async fn explain_placement(
        &self,
        request: Request<pb::ExplainPlacementRequest>,
    ) -> Result<Response<pb::PlacementExplanation>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let user_id = match (req.user_id.trim(), caller.user_id()) {
            ("", Some(own)) => own.to_owned(),
            ("", None) => {
                return Err(ApiError::invalid("user_id", "is required for this caller").into());
            }
            (u, Some(own)) if u == own => own.to_owned(),
            (u, _) => {
                self.require(&caller, SESSIONS_VIEW).await?;
                u.to_owned()
            }
        };
        if req.workspace_id.trim().is_empty() {
            return Err(ApiError::invalid("workspace_id", "is required").into());
        }
        let placement = launch::explain(
            &self.core,
            &user_id,
            req.workspace_id.trim(),
            req.zone_id.trim(),
        )
        .await?;
        Ok(Response::new(pb::PlacementExplanation {
            agent_id: placement.chosen.clone().unwrap_or_default(),
            summary: placement.summary(),
            agents: placement
                .verdicts
                .iter()
                .map(|v| pb::AgentVerdict {
                    agent_id: v.agent_id.clone(),
                    zone_id: v.zone.clone(),
                    chosen: v.chosen,
                    rejected_because: v.rejected_because.clone(),
                    free_cores: v.free.cores,
                    free_memory_mib: v.free.memory_mib,
                    free_gpus: v.free.gpus,
                    has_image: v.has_image,
                })
                .collect(),
        }))
    }

    async fn get_session_secret(
        &self,
        request: Request<pb::SessionRef>,
    ) -> Result<Response<pb::SessionSecret>, Status> {
        let caller = caller(&request)?;
        if !matches!(caller, Caller::Service(ServiceId::Gateway)) {
            return Err(ApiError::PermissionDenied(
                "only the gateway reads session secrets".into(),
            )
            .into());
        }
        let id = session_id(&request.get_ref().session_id)?;
        let row = self
            .core
            .store
            .get(&id)
            .await?
            .filter(|r| r.observed() == ObservedState::Running)
            .ok_or_else(|| ApiError::not_found(format!("running session {id}")))?;
        let password = row
            .secret_sealed
            .as_deref()
            .map(|s| self.core.secrets.open(s))
            .transpose()
            .map_err(ApiError::Internal)?
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default();
        Ok(Response::new(pb::SessionSecret {
            session_id: row.id.clone(),
            username: "kasm_user".into(),
            password,
            host: row.host.clone(),
            port: u32::try_from(row.port).unwrap_or(0),
        }))
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let caller = caller(&request)?;
        self.require(&caller, AGENTS_VIEW).await?;
        let zone = request.into_inner().zone;
        let zone = validate::text("zone", &zone, 200)?;
        let mut agents = self.core.agents().await?;
        if !zone.is_empty() {
            agents.retain(|a| a.zone == zone);
        }
        agents.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        Ok(Response::new(pb::ListAgentsResponse { agents }))
    }

    async fn drain_agent(
        &self,
        request: Request<pb::DrainAgentRequest>,
    ) -> Result<Response<atrium_proto::agent::v1::AgentStatus>, Status> {
        let caller = caller(&request)?;
        self.require(&caller, AGENTS_MODIFY).await?;
        let req = request.into_inner();
        let agent_id = validate::text("agent_id", &req.agent_id, 200)?;
        if agent_id.is_empty() {
            return Err(ApiError::invalid("agent_id", "is required").into());
        }
        let (_, status) = self.core.agent(&agent_id).await?;
        let status = status.ok_or_else(|| ApiError::not_found(format!("agent {agent_id}")))?;
        let mut client = self.core.peers.agent(&status.address)?;
        let drained = client
            .drain(atrium_proto::agent::v1::DrainRequest {
                deadline_secs: req.deadline_secs,
            })
            .await
            .map_err(|e| {
                ApiError::Unavailable(format!("agent {agent_id} did not answer: {}", e.message()))
            })?
            .into_inner();
        tracing::info!(agent = %agent_id, actor = %caller.actor(), "agent asked to drain");
        Ok(Response::new(drained))
    }
}

/// Why the session is alive and how it ends.
pub fn explain(
    row: &Row,
    expires_ms: Option<i64>,
    settings: &crate::peers::Settings,
    usage: &UsageStatus,
    now: DateTime<Utc>,
) -> pb::SessionExplanation {
    let mut reasons = Vec::new();
    let desired = row.desired();
    let observed = row.observed();
    if observed.is_terminal() || desired == DesiredState::Deleted {
        reasons.push(format!(
            "It is {observed}{}: {}.",
            if desired == DesiredState::Deleted && observed != ObservedState::Deleted {
                " and being deleted"
            } else {
                ""
            },
            row.message
        ));
        return pb::SessionExplanation {
            reasons,
            ..Default::default()
        };
    }
    reasons.push(format!(
        "It is {observed} on agent {} (wanted: {desired}).",
        row.agent_id
    ));
    if row.usage_unchecked {
        reasons.push(
            "It was admitted without a usage check: billing-usage was unavailable and usage.when_unavailable is allow."
                .into(),
        );
    }
    let hard = row.hard_deadline();
    let ends = expires_ms.and_then(DateTime::<Utc>::from_timestamp_millis);
    let (rule, action, at) = match (hard, desired) {
        (Some(hard), _) => {
            reasons.push(format!(
                "session_time_limit is {}s: it ends at {} (creation + limit), and keepalives do not extend it.",
                row.time_limit_secs.unwrap_or(0),
                hard.to_rfc3339()
            ));
            ("session_time_limit", "delete", Some(hard))
        }
        (None, DesiredState::Running) => {
            let action = crate::reaper::action_name(&settings.keepalive_expiration_action);
            let done = crate::reaper::action_done(&settings.keepalive_expiration_action);
            match ends {
                Some(at) => reasons.push(format!(
                    "Keepalives keep it alive: without one it ends at {} ({}s after the last keepalive, keepalive_expiration), and is then {done}.",
                    at.to_rfc3339(),
                    settings.keepalive_expiration_secs
                )),
                None => reasons.push(
                    "Its keepalive deadline is not tracked right now (the deadline store is unreachable or rebuilding); nothing is reaped until it is."
                        .into(),
                ),
            }
            reasons.push(usage.explain(ends, action));
            ("keepalive", action, ends)
        }
        (None, _) => {
            reasons.push(format!(
                "It is at rest ({desired}) with no time limit: it stays until it is resumed or deleted."
            ));
            ("", "", None)
        }
    };
    if let Some(at) = at
        && at <= now
    {
        reasons.push("Its deadline has passed: the reaper is applying the action now.".into());
    }
    pb::SessionExplanation {
        session: None,
        reasons,
        ending_rule: rule.into(),
        ends_at: at.map(ts),
        action: action.into(),
    }
}

/// Writes queued audit events in batches until the queue closes and is empty.
pub async fn audit_writer(
    store: crate::store::Store,
    mut rx: mpsc::Receiver<crate::entity::audit_event::ActiveModel>,
) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        if let Err(e) = store.audit_batch(std::mem::take(&mut batch)).await {
            tracing::warn!(error = %e, "audit events not written");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Settings;
    use crate::test_fixture::row;
    use crate::usage::memory::weekly;

    fn explained(row: &Row, usage: &UsageStatus) -> Vec<String> {
        let settings = Settings {
            keepalive_expiration_action: "stop".into(),
            ..Settings::default()
        };
        let ends = Utc::now() + chrono::Duration::minutes(10);
        explain(
            row,
            Some(ends.timestamp_millis()),
            &settings,
            usage,
            Utc::now(),
        )
        .reasons
    }

    #[test]
    fn explain_tells_the_usage_picture() {
        let r = row("s-1", "alice");
        let end = Utc::now() + chrono::Duration::days(2);
        let none = explained(&r, &UsageStatus::NotConfigured);
        assert!(
            none.contains(&"No usage limit applies (no usage service is configured).".to_owned()),
            "{none:?}"
        );
        let within = explained(&r, &UsageStatus::Checked(weekly("X", 2.0, 1.2, end)));
        assert!(
            within.iter().any(|l| l == "Usage: 1.20 of 2 hours used this week (group X, shared by its members); keepalives extend."),
            "{within:?}"
        );
        let spent = explained(&r, &UsageStatus::Checked(weekly("X", 2.0, 2.0, end)));
        assert!(
            spent.iter().any(|l| l.starts_with("Usage allowance spent (") && l.ends_with("(action: stop).")),
            "{spent:?}"
        );
        assert!(
            spent.iter().any(|l| l.contains("and is then stopped.")),
            "{spent:?}"
        );
        let unchecked = Row {
            usage_unchecked: true,
            ..r
        };
        let lines = explained(
            &unchecked,
            &UsageStatus::Unavailable(crate::usage::Unavailable("down".into())),
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("It was admitted without a usage check")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("billing-usage unavailable (down)")),
            "{lines:?}"
        );
    }
}
