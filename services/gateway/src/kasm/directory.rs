//! The user, attribute, group and image calls.

use std::collections::HashMap;

use atrium_proto::identity::v1 as idp;
use atrium_proto::policy::v1 as pol;
use atrium_proto::session::v1 as sess;
use atrium_service_kit::auth::permissions::{
    GROUPS_CREATE, GROUPS_DELETE, GROUPS_MODIFY, GROUPS_VIEW, SESSIONS_DELETE, SESSIONS_VIEW,
    USERS_AUTH_SESSION, USERS_CREATE, USERS_DELETE, USERS_MODIFY, USERS_VIEW, WORKSPACES_VIEW,
};
use serde_json::{Value, json};

use super::model::{
    AttributesBody, KasmError, UserBody, attributes_object, ended, group_object, image_object,
    optional_id, parse_theme, required, required_id, user_object, within,
};
use super::{Call, MAX_PAGES, next_token, page};

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

pub async fn create_user(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let u = body.user()?;
    let username = required(&u.username, "target_user.username")?;
    c.need("create_user", &[USERS_CREATE])?;
    let user = c
        .state
        .backends
        .identity(Some(c.credential))?
        .create_user(idp::CreateUserRequest {
            username: username.to_owned(),
            password: opt(&u.password),
            first_name: opt(&u.first_name),
            last_name: opt(&u.last_name),
            realm: idp::Realm::Local as i32,
            notes: opt(&u.notes),
            locked: u.locked.unwrap_or(false),
            disabled: u.disabled.unwrap_or(false),
            organization: opt(&u.organization),
            phone: opt(&u.phone),
            email: opt(&u.email),
            custom_attribute_1: opt(&u.custom_attribute_1),
            custom_attribute_2: opt(&u.custom_attribute_2),
            custom_attribute_3: opt(&u.custom_attribute_3),
            city: opt(&u.city),
            state: opt(&u.state),
            country: opt(&u.country),
            force_password_reset: false,
        })
        .await
        .map_err(within("target_user"))?
        .into_inner();
    let groups = user_groups(c, &user.id).await;
    Ok(json!({ "user": user_object(&user, groups.as_deref(), Some(&[])) }))
}

/// The user's groups, when the key may read groups.
async fn user_groups(c: &Call<'_>, user_id: &str) -> Option<Vec<pol::Group>> {
    if !c.holds(GROUPS_VIEW) {
        return None;
    }
    let answer = c
        .state
        .backends
        .policy(c.credential)
        .ok()?
        .list_user_groups(pol::ListUserGroupsRequest {
            user_id: user_id.to_owned(),
            page: page(String::new()),
        })
        .await
        .ok()?;
    Some(answer.into_inner().groups)
}

/// Live sessions of `user_id` (or of everyone), when the key may read sessions.
async fn live_sessions(
    c: &Call<'_>,
    user_id: Option<&str>,
) -> Result<Vec<sess::Session>, KasmError> {
    let mut client = c.state.backends.session(c.credential)?;
    let mut all = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let answer = client
            .list_sessions(sess::ListSessionsRequest {
                page: page(token),
                user_id: user_id.unwrap_or_default().to_owned(),
                all_users: user_id.is_none(),
                ..Default::default()
            })
            .await?
            .into_inner();
        all.extend(answer.sessions.into_iter().filter(|s| !ended(s)));
        match next_token(answer.page.as_ref()) {
            Some(t) => token = t,
            None => break,
        }
    }
    Ok(all)
}

async fn fetch_user(c: &Call<'_>, body: &UserBody) -> Result<idp::User, KasmError> {
    let u = body.user()?;
    let key = match optional_id(&u.user_id, "target_user.user_id")? {
        Some(id) => idp::get_user_request::Key::UserId(id),
        None => match u.username.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => idp::get_user_request::Key::Username(name.into()),
            _ => {
                return Err(KasmError::invalid(
                    "target_user",
                    "user_id or username is required",
                ));
            }
        },
    };
    let what = match &key {
        idp::get_user_request::Key::UserId(id) => id.clone(),
        idp::get_user_request::Key::Username(name) => name.clone(),
    };
    c.state
        .backends
        .identity(Some(c.credential))?
        .get_user(idp::GetUserRequest { key: Some(key) })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| {
            if status.code() == tonic::Code::NotFound {
                KasmError::not_found(format!("user {what} not found"))
            } else {
                within("target_user")(status)
            }
        })
}

pub async fn get_user(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    c.need("get_user", &[USERS_VIEW])?;
    let user = fetch_user(c, &body).await?;
    let groups = user_groups(c, &user.id).await;
    let kasms = if c.holds(SESSIONS_VIEW) {
        live_sessions(c, Some(&user.id)).await.ok()
    } else {
        None
    };
    Ok(json!({ "user": user_object(&user, groups.as_deref(), kasms.as_deref()) }))
}

pub async fn get_users(c: &Call<'_>) -> Result<Value, KasmError> {
    c.need("get_users", &[USERS_VIEW])?;
    let mut client = c.state.backends.identity(Some(c.credential))?;
    let mut users = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let answer = client
            .list_users(idp::ListUsersRequest {
                page: page(token),
                ..Default::default()
            })
            .await?
            .into_inner();
        users.extend(answer.users);
        match next_token(answer.page.as_ref()) {
            Some(t) => token = t,
            None => break,
        }
    }
    // Sessions in one listing, when the key may read them; groups only on get_user.
    let mut by_user: HashMap<String, Vec<sess::Session>> = HashMap::new();
    let with_kasms = c.holds(SESSIONS_VIEW);
    if with_kasms {
        for s in live_sessions(c, None).await.unwrap_or_default() {
            by_user.entry(s.user_id.clone()).or_default().push(s);
        }
    }
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            let kasms = with_kasms.then(|| by_user.get(&u.id).map(Vec::as_slice).unwrap_or(&[]));
            user_object(u, None, kasms)
        })
        .collect();
    Ok(json!({ "users": users }))
}

pub async fn update_user(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let user_id = body.user_id()?;
    let u = body.user()?;
    c.need("update_user", &[USERS_MODIFY])?;
    let mut identity = c.state.backends.identity(Some(c.credential))?;
    let trimmed = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_owned());
    let mut user = identity
        .update_user(idp::UpdateUserRequest {
            user_id: user_id.clone(),
            username: trimmed(&u.username).filter(|s| !s.is_empty()),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            realm: None,
            notes: u.notes.clone(),
            locked: u.locked,
            disabled: u.disabled,
            organization: u.organization.clone(),
            phone: u.phone.clone(),
            email: u.email.clone(),
            custom_attribute_1: u.custom_attribute_1.clone(),
            custom_attribute_2: u.custom_attribute_2.clone(),
            custom_attribute_3: u.custom_attribute_3.clone(),
            city: u.city.clone(),
            state: u.state.clone(),
            country: u.country.clone(),
            force_password_reset: None,
        })
        .await
        .map_err(user_error(&user_id))?
        .into_inner();
    if let Some(password) = u.password.as_deref().filter(|p| !p.is_empty()) {
        user = identity
            .set_password(idp::SetPasswordRequest {
                user_id: user_id.clone(),
                new_password: password.to_owned(),
                force_password_reset: false,
            })
            .await
            .map_err(|status| {
                let e = atrium_service_kit::http::HttpError::from(status);
                if e.field.is_empty() {
                    KasmError::new(e.status, e.message)
                } else {
                    let rest = e.message.strip_prefix(&e.field).unwrap_or(&e.message);
                    KasmError::new(e.status, format!("target_user.password{rest}"))
                }
            })?
            .into_inner();
    }
    let groups = user_groups(c, &user.id).await;
    Ok(json!({ "user": user_object(&user, groups.as_deref(), None) }))
}

fn user_error(user_id: &str) -> impl Fn(tonic::Status) -> KasmError + '_ {
    move |status| {
        if status.code() == tonic::Code::NotFound {
            KasmError::not_found(format!("user {user_id} not found"))
        } else {
            within("target_user")(status)
        }
    }
}

pub async fn delete_user(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let user_id = body.user_id()?;
    let force = body.force.unwrap_or(false);
    c.need("delete_user", &[USERS_DELETE, SESSIONS_VIEW])?;
    // Unknown users are refused before their (empty) session list is read.
    if c.holds(USERS_VIEW) {
        c.state
            .backends
            .identity(Some(c.credential))?
            .get_user(idp::GetUserRequest {
                key: Some(idp::get_user_request::Key::UserId(user_id.clone())),
            })
            .await
            .map_err(user_error(&user_id))?;
    }
    let live = live_sessions(c, Some(&user_id)).await?;
    if !live.is_empty() {
        if !force {
            return Err(KasmError::conflict(format!(
                "user {user_id} has {} session(s); destroy them first or pass \"force\": true",
                live.len()
            )));
        }
        c.need("delete_user with force", &[USERS_DELETE, SESSIONS_DELETE])?;
        let mut sessions = c.state.backends.session(c.credential)?;
        for s in &live {
            if let Err(status) = sessions
                .force_delete(sess::SessionRef {
                    session_id: s.id.clone(),
                })
                .await
                && status.code() != tonic::Code::NotFound
            {
                return Err(status.into());
            }
        }
    }
    c.state
        .backends
        .identity(Some(c.credential))?
        .delete_user(idp::DeleteUserRequest {
            user_id: user_id.clone(),
        })
        .await
        .map_err(user_error(&user_id))?;
    Ok(json!({}))
}

pub async fn logout_user(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let user_id = body.user_id()?;
    c.need("logout_user", &[USERS_AUTH_SESSION])?;
    c.state
        .backends
        .identity(Some(c.credential))?
        .logout_everywhere(idp::LogoutEverywhereRequest {
            user_id: user_id.clone(),
        })
        .await
        .map_err(user_error(&user_id))?;
    Ok(json!({}))
}

/// The user's SSH public key, if they have one (and the key may read it).
async fn ssh_public_key(c: &Call<'_>, user_id: &str) -> Result<Option<String>, KasmError> {
    match c
        .state
        .backends
        .identity(Some(c.credential))?
        .get_ssh_key(idp::GetSshKeyRequest {
            user_id: user_id.to_owned(),
            include_private_key: false,
        })
        .await
    {
        Ok(key) => Ok(Some(key.into_inner().public_key)),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s.into()),
    }
}

pub async fn get_attributes(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let user_id = body.user_id()?;
    c.need("get_attributes", &[USERS_VIEW])?;
    let settings = c
        .state
        .backends
        .identity(Some(c.credential))?
        .get_user_settings(idp::GetUserSettingsRequest {
            user_id: user_id.clone(),
        })
        .await
        .map_err(user_error(&user_id))?
        .into_inner();
    let ssh = ssh_public_key(c, &user_id).await?;
    Ok(json!({ "user_attributes": attributes_object(&settings, ssh.as_deref()) }))
}

pub async fn update_user_attributes(
    c: &Call<'_>,
    body: AttributesBody,
) -> Result<Value, KasmError> {
    let a = body
        .target_user_attributes
        .as_ref()
        .ok_or_else(|| KasmError::invalid("target_user_attributes", "is required"))?;
    let user_id = required_id(&a.user_id, "target_user_attributes.user_id")?;
    for (field, value) in [
        ("preferred_language", &a.preferred_language),
        ("preferred_timezone", &a.preferred_timezone),
    ] {
        if value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
            return Err(KasmError::invalid(
                &format!("target_user_attributes.{field}"),
                "Atrium keeps no such preference (send null)",
            ));
        }
    }
    let theme = match a.theme.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Some(parse_theme(t)? as i32),
        _ => None,
    };
    let default_image = match a.default_image.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(String::new()),
        Some(id) => Some(super::model::parse_id(
            "target_user_attributes.default_image",
            id,
        )?),
    };
    c.need("update_user_attributes", &[USERS_MODIFY])?;
    if let Some(wanted) = a.ssh_public_key.as_deref().map(str::trim)
        && !wanted.is_empty()
    {
        let current = ssh_public_key(c, &user_id).await?;
        if current.as_deref().map(str::trim) != Some(wanted) {
            return Err(KasmError::invalid(
                "target_user_attributes.ssh_public_key",
                "Atrium keeps a key pair: set it with SetSshKey (public and private key) or \
                 GenerateSshKey; here it can only be sent back unchanged",
            ));
        }
    }
    c.state
        .backends
        .identity(Some(c.credential))?
        .update_user_settings(idp::UpdateUserSettingsRequest {
            user_id: user_id.clone(),
            auto_launch_session: a.auto_login_kasm,
            chat_sound_effects: a.chat_sfx,
            default_workspace_image: default_image,
            show_tips_during_session: a.show_tips,
            toggle_control_panel: a.toggle_control_panel,
            theme,
        })
        .await
        .map_err(|status| {
            if status.code() == tonic::Code::NotFound {
                KasmError::not_found(format!("user {user_id} not found"))
            } else {
                within("target_user_attributes")(status)
            }
        })?;
    Ok(json!({}))
}

pub async fn user_group(c: &Call<'_>, body: UserBody, add: bool) -> Result<Value, KasmError> {
    let user_id = body.user_id()?;
    let group_id = body.group_id()?;
    let call = if add {
        "add_user_group"
    } else {
        "remove_user_group"
    };
    c.need(call, &[GROUPS_MODIFY])?;
    let request = pol::GroupMemberRequest {
        group_id: group_id.clone(),
        user_id: user_id.clone(),
    };
    let mut policy = c.state.backends.policy(c.credential)?;
    let answer = if add {
        policy.add_group_member(request).await.map(|_| ())
    } else {
        policy.remove_group_member(request).await.map(|_| ())
    };
    answer.map_err(|status| {
        let e = atrium_service_kit::http::HttpError::from(status);
        match e.field.as_str() {
            "user_id" => KasmError::new(e.status, format!("target_user.{}", e.message)),
            "group_id" => KasmError::new(e.status, format!("target_group.{}", e.message)),
            _ => KasmError::new(e.status, e.message),
        }
    })?;
    Ok(json!({}))
}

pub async fn get_images(c: &Call<'_>) -> Result<Value, KasmError> {
    c.need("get_images", &[WORKSPACES_VIEW])?;
    let mut client = c.state.backends.policy(c.credential)?;
    let mut images = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let answer = client
            .list_workspaces(pol::ListWorkspacesRequest {
                page: page(token),
                include_disabled: true,
            })
            .await?
            .into_inner();
        images.extend(answer.workspaces.iter().map(image_object));
        match next_token(answer.page.as_ref()) {
            Some(t) => token = t,
            None => break,
        }
    }
    Ok(json!({ "images": images }))
}

pub async fn get_groups(c: &Call<'_>) -> Result<Value, KasmError> {
    c.need("get_groups", &[GROUPS_VIEW])?;
    let mut client = c.state.backends.policy(c.credential)?;
    let mut groups = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let answer = client
            .list_groups(pol::ListGroupsRequest {
                page: page(token),
                name_contains: String::new(),
            })
            .await?
            .into_inner();
        groups.extend(answer.groups.iter().map(group_object));
        match next_token(answer.page.as_ref()) {
            Some(t) => token = t,
            None => break,
        }
    }
    Ok(json!({ "groups": groups }))
}

pub async fn create_group(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let g = body.group()?;
    let name = required(&g.name, "target_group.name")?;
    c.need("create_group", &[GROUPS_CREATE])?;
    let group = c
        .state
        .backends
        .policy(c.credential)?
        .create_group(pol::CreateGroupRequest {
            name: name.to_owned(),
            description: opt(&g.description),
            priority: g.priority.unwrap_or(100),
        })
        .await
        .map_err(within("target_group"))?
        .into_inner();
    Ok(json!({ "group": group_object(&group) }))
}

fn group_error(group_id: &str) -> impl Fn(tonic::Status) -> KasmError + '_ {
    move |status| {
        if status.code() == tonic::Code::NotFound {
            KasmError::not_found(format!("group {group_id} not found"))
        } else {
            within("target_group")(status)
        }
    }
}

pub async fn update_group(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let group_id = body.group_id()?;
    let g = body.group()?;
    c.need("update_group", &[GROUPS_MODIFY])?;
    let group = c
        .state
        .backends
        .policy(c.credential)?
        .update_group(pol::UpdateGroupRequest {
            group_id: group_id.clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            priority: g.priority,
        })
        .await
        .map_err(group_error(&group_id))?
        .into_inner();
    Ok(json!({ "group": group_object(&group) }))
}

pub async fn delete_group(c: &Call<'_>, body: UserBody) -> Result<Value, KasmError> {
    let group_id = body.group_id()?;
    c.need("delete_group", &[GROUPS_DELETE])?;
    c.state
        .backends
        .policy(c.credential)?
        .delete_group(pol::DeleteGroupRequest {
            group_id: group_id.clone(),
        })
        .await
        .map_err(group_error(&group_id))?;
    Ok(json!({}))
}
