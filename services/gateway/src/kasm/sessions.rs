//! The session calls: request_kasm, get_kasm_status, get_kasms, keepalive, destroy_kasm,
//! exec_command_kasm, join_kasm.

use std::collections::HashMap;

use atrium_proto::identity::v1 as idp;
use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as sess;
use atrium_service_kit::auth::permissions::{
    SESSIONS_DELETE, SESSIONS_EXEC, SESSIONS_MODIFY, SESSIONS_VIEW, USERS_CREATE, USERS_VIEW,
    WORKSPACES_VIEW,
};
use http::StatusCode;
use serde_json::{Value, json};

use super::model::{
    ExecBody, JoinBody, KasmError, KasmRef, RequestKasm, Sizing, ended, exec_argv, kasm_object,
    kasm_url, now, operational_status, optional_id, profile_mode, required_id, status_fields,
};
use super::{Call, MAX_PAGES, next_token, page};

/// A service error about `from` reported as Kasm's field `to`.
fn renamed(from: &'static str, to: &'static str) -> impl Fn(tonic::Status) -> KasmError {
    move |status| {
        let e = atrium_service_kit::http::HttpError::from(status);
        if e.field == from || e.field.starts_with(&format!("{from}.")) {
            let rest = e.message.strip_prefix(from).unwrap_or(&e.message);
            KasmError::new(e.status, format!("{to}{rest}"))
        } else {
            KasmError::new(e.status, e.message)
        }
    }
}

fn not_found(kasm_id: &str) -> impl Fn(tonic::Status) -> KasmError + '_ {
    move |status| {
        if status.code() == tonic::Code::NotFound {
            KasmError::not_found(format!("kasm {kasm_id} not found"))
        } else {
            status.into()
        }
    }
}

/// The session `kasm_id`, if it belongs to `user_id` (when given).
async fn session_of(
    c: &Call<'_>,
    kasm_id: &str,
    user_id: Option<&str>,
) -> Result<sess::Session, KasmError> {
    let s = c
        .state
        .backends
        .session(c.credential)?
        .get_session(sess::GetSessionRequest {
            session_id: kasm_id.to_owned(),
        })
        .await
        .map_err(not_found(kasm_id))?
        .into_inner();
    if let Some(user) = user_id
        && user != s.user_id
    {
        return Err(KasmError::not_found(format!(
            "kasm {kasm_id} not found for user {user}"
        )));
    }
    Ok(s)
}

pub async fn request_kasm(c: &Call<'_>, req: RequestKasm) -> Result<Value, KasmError> {
    if req.enable_sharing == Some(true) {
        return Err(KasmError::invalid(
            "enable_sharing",
            "session sharing is off in Atrium",
        ));
    }
    let workspace = optional_id(&req.image_id, "image_id")?;
    let user_id = optional_id(&req.user_id, "user_id")?;
    let options = sess::SessionOptions {
        environment: req.environment.unwrap_or_default(),
        url: req.kasm_url.unwrap_or_default(),
        client_language: req.client_language.unwrap_or_default(),
        client_timezone: req.client_timezone.unwrap_or_default(),
        zone_id: String::new(),
        persistent_profile_mode: profile_mode(req.persistent_profile_mode.as_deref())?,
    };
    let (user_id, mut username, anonymous) = match user_id {
        Some(id) => {
            c.need("request_kasm", &[SESSIONS_MODIFY])?;
            (id, None, false)
        }
        None => {
            c.need(
                "request_kasm without user_id (an anonymous user)",
                &[USERS_CREATE, SESSIONS_MODIFY],
            )?;
            let user = create_anonymous(c).await?;
            (user.id, Some(user.username), true)
        }
    };
    let mut sessions = c.state.backends.session(c.credential)?;
    let requested = match workspace {
        Some(workspace_id) => sessions
            .request_session(sess::RequestSessionRequest {
                user_id: user_id.clone(),
                workspace_id,
                options: Some(options),
            })
            .await
            .map_err(renamed("workspace_id", "image_id")),
        None => sessions
            .go_session(sess::GoSessionRequest {
                user_id: user_id.clone(),
                options: Some(options),
            })
            .await
            .map_err(KasmError::from),
    };
    let s = match requested {
        Ok(s) => s.into_inner(),
        Err(e) => {
            if anonymous {
                // Best effort: the user existed only for this session.
                let _ = c
                    .state
                    .backends
                    .identity(Some(c.credential))?
                    .delete_user(idp::DeleteUserRequest {
                        user_id: user_id.clone(),
                    })
                    .await;
            }
            return Err(e);
        }
    };
    if username.is_none() && c.holds(USERS_VIEW) {
        username = c
            .state
            .backends
            .identity(Some(c.credential))?
            .get_user(idp::GetUserRequest {
                key: Some(idp::get_user_request::Key::UserId(user_id.clone())),
            })
            .await
            .ok()
            .map(|u| u.into_inner().username);
    }
    let mut map = status_fields(&s);
    map.insert("username".into(), json!(username));
    map.insert("session_token".into(), Value::Null);
    map.insert("share_id".into(), Value::Null);
    map.insert("kasm_url".into(), json!(kasm_url(&s.id)));
    map.insert("current_time".into(), now());
    Ok(Value::Object(map))
}

async fn create_anonymous(c: &Call<'_>) -> Result<idp::User, KasmError> {
    let (tag, password) = {
        use rand::Rng as _;
        let mut rng = rand::rng();
        let tag: String = (0..8)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
            .collect();
        let password: String = (0..32)
            .map(|_| char::from_digit(rng.random_range(0..36), 36).unwrap_or('x'))
            .collect();
        (tag, password)
    };
    Ok(c.state
        .backends
        .identity(Some(c.credential))?
        .create_user(idp::CreateUserRequest {
            username: format!("anon-{tag}"),
            password,
            notes: "created by the Developer API (request_kasm without user_id)".into(),
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// The workspace's sizing, when the key may read workspaces.
async fn sizing_of(c: &Call<'_>, workspace_id: &str) -> Option<Sizing> {
    if !c.holds(WORKSPACES_VIEW) {
        return None;
    }
    let w = c
        .state
        .backends
        .policy(c.credential)
        .ok()?
        .get_workspace(pol::GetWorkspaceRequest {
            workspace_id: workspace_id.to_owned(),
        })
        .await
        .ok()?
        .into_inner();
    Some(Sizing::from(&w))
}

pub async fn get_kasm_status(c: &Call<'_>, req: KasmRef) -> Result<Value, KasmError> {
    let kasm_id = required_id(&req.kasm_id, "kasm_id")?;
    let user_id = optional_id(&req.user_id, "user_id")?;
    c.need("get_kasm_status", &[SESSIONS_VIEW])?;
    let s = session_of(c, &kasm_id, user_id.as_deref()).await?;
    if operational_status(&s) == "deleted" {
        return Err(KasmError::not_found(format!(
            "kasm {kasm_id} not found (it was deleted)"
        )));
    }
    let mut map = status_fields(&s);
    map.insert("kasm_url".into(), json!(kasm_url(&s.id)));
    map.insert("current_time".into(), now());
    if operational_status(&s) == "running" {
        let sizing = sizing_of(c, &s.workspace_id).await;
        map.insert("kasm".into(), kasm_object(&s, sizing.as_ref()));
    }
    Ok(Value::Object(map))
}

pub async fn get_kasms(c: &Call<'_>) -> Result<Value, KasmError> {
    c.need("get_kasms", &[SESSIONS_VIEW])?;
    let mut client = c.state.backends.session(c.credential)?;
    let mut all = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let answer = client
            .list_sessions(sess::ListSessionsRequest {
                page: page(token),
                all_users: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        all.extend(answer.sessions);
        match next_token(answer.page.as_ref()) {
            Some(t) => token = t,
            None => break,
        }
    }
    let sizes = workspace_sizes(c).await;
    let kasms: Vec<Value> = all
        .iter()
        .filter(|s| !ended(s))
        .map(|s| kasm_object(s, sizes.get(&s.workspace_id)))
        .collect();
    Ok(json!({ "kasms": kasms, "current_time": now() }))
}

/// Every workspace's sizing, when the key may read workspaces (else none).
async fn workspace_sizes(c: &Call<'_>) -> HashMap<String, Sizing> {
    let mut sizes = HashMap::new();
    if !c.holds(WORKSPACES_VIEW) {
        return sizes;
    }
    let Ok(mut client) = c.state.backends.policy(c.credential) else {
        return sizes;
    };
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let Ok(answer) = client
            .list_workspaces(pol::ListWorkspacesRequest {
                page: page(token),
                include_disabled: true,
            })
            .await
        else {
            break;
        };
        let answer = answer.into_inner();
        for w in &answer.workspaces {
            sizes.insert(w.id.clone(), Sizing::from(w));
        }
        match next_token(answer.page.as_ref()) {
            Some(t) => token = t,
            None => break,
        }
    }
    sizes
}

pub async fn keepalive(c: &Call<'_>, req: KasmRef) -> Result<Value, KasmError> {
    let kasm_id = required_id(&req.kasm_id, "kasm_id")?;
    let user_id = optional_id(&req.user_id, "user_id")?;
    if user_id.is_some() {
        c.need("keepalive with user_id", &[SESSIONS_MODIFY, SESSIONS_VIEW])?;
        session_of(c, &kasm_id, user_id.as_deref()).await?;
    } else {
        c.need("keepalive", &[SESSIONS_MODIFY])?;
    }
    let answer = c
        .state
        .backends
        .session(c.credential)?
        .keepalive(sess::SessionRef {
            session_id: kasm_id.clone(),
        })
        .await
        .map_err(not_found(&kasm_id))?
        .into_inner();
    if !answer.extended {
        let why = if answer.message.is_empty() {
            format!("kasm {kasm_id}: the keepalive did not extend the session")
        } else {
            format!("kasm {kasm_id}: {}", answer.message)
        };
        return Err(KasmError::conflict(why));
    }
    Ok(json!({}))
}

pub async fn destroy_kasm(c: &Call<'_>, req: KasmRef) -> Result<Value, KasmError> {
    let kasm_id = required_id(&req.kasm_id, "kasm_id")?;
    let user_id = optional_id(&req.user_id, "user_id")?;
    if user_id.is_some() {
        c.need(
            "destroy_kasm with user_id",
            &[SESSIONS_DELETE, SESSIONS_VIEW],
        )?;
        let s = session_of(c, &kasm_id, user_id.as_deref()).await?;
        if ended(&s) {
            return Err(KasmError::not_found(format!(
                "kasm {kasm_id} not found (it has ended)"
            )));
        }
    } else {
        c.need("destroy_kasm", &[SESSIONS_DELETE])?;
    }
    c.state
        .backends
        .session(c.credential)?
        .delete(sess::SessionRef {
            session_id: kasm_id.clone(),
        })
        .await
        .map_err(not_found(&kasm_id))?;
    Ok(json!({}))
}

pub async fn exec_command_kasm(c: &Call<'_>, req: ExecBody) -> Result<Value, KasmError> {
    let kasm_id = required_id(&req.kasm_id, "kasm_id")?;
    let user_id = optional_id(&req.user_id, "user_id")?;
    let config = req
        .exec_config
        .as_ref()
        .ok_or_else(|| KasmError::invalid("exec_config", "is required"))?;
    let argv = exec_argv(config)?;
    if user_id.is_some() {
        c.need(
            "exec_command_kasm with user_id",
            &[SESSIONS_MODIFY, SESSIONS_VIEW, SESSIONS_EXEC],
        )?;
        session_of(c, &kasm_id, user_id.as_deref()).await?;
    } else {
        c.need("exec_command_kasm", &[SESSIONS_MODIFY, SESSIONS_EXEC])?;
    }
    let answer = c
        .state
        .backends
        .session(c.credential)?
        .exec(sess::ExecRequest {
            session_id: kasm_id.clone(),
            hook: String::new(),
            cmd: argv,
            url: String::new(),
        })
        .await
        .map_err(not_found(&kasm_id))?
        .into_inner();
    Ok(json!({
        "kasm_id": kasm_id,
        "current_time": now(),
        "exit_code": answer.exit_code,
    }))
}

pub fn join_kasm(req: JoinBody) -> Result<Value, KasmError> {
    let _ = (req.user_id, req.share_id.or(req.shared_id));
    Err(KasmError::new(
        StatusCode::CONFLICT,
        "join_kasm: session sharing is off in Atrium; there is no shared session to join",
    ))
}
