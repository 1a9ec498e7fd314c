//! A user's settings and SSH key.

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::{ApiError, ApiResult};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use serde_json::json;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey};

use crate::convert::{self, settings_to_proto, timestamp};
use crate::core::{Core, event};
use crate::entity::ssh_key as ssh_row;

/// The target user: the given id, or the caller when empty.
fn target(core: &Core, principal: &Principal, user_id: &str) -> ApiResult<String> {
    if user_id.trim().is_empty() {
        Ok(core.caller_user(principal)?.user_id.clone())
    } else {
        convert::user_id("user_id", user_id)
    }
}

pub async fn get_settings(
    core: &Core,
    principal: &Principal,
    req: pb::GetUserSettingsRequest,
) -> ApiResult<pb::UserSettings> {
    let id = target(core, principal, &req.user_id)?;
    core.self_or(principal, &id, permissions::USERS_VIEW)
        .await?;
    let row = core.repo.settings(&id).await?;
    match row {
        Some(row) => Ok(settings_to_proto(&row)),
        None => {
            core.repo.user(&id).await?;
            Ok(settings_to_proto(&convert::default_settings(&id)))
        }
    }
}

pub async fn update_settings(
    core: &Core,
    principal: &Principal,
    req: pb::UpdateUserSettingsRequest,
) -> ApiResult<pb::UserSettings> {
    let id = target(core, principal, &req.user_id)?;
    core.act_on(principal, &id, permissions::USERS_MODIFY)
        .await?;
    let theme = req
        .theme
        .map(|t| convert::theme_from_proto("theme", t))
        .transpose()?;
    let image = req
        .default_workspace_image
        .as_deref()
        .map(|v| convert::text("default_workspace_image", v, 255))
        .transpose()?;
    core.repo.user(&id).await?;
    let current = core
        .repo
        .settings(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("settings of user {id}")))?;
    let mut row = current.into_active_model();
    if let Some(v) = req.auto_launch_session {
        row.auto_launch_session = Set(v);
    }
    if let Some(v) = req.chat_sound_effects {
        row.chat_sound_effects = Set(v);
    }
    if let Some(v) = image {
        row.default_workspace_image = Set(v);
    }
    if let Some(v) = req.show_tips_during_session {
        row.show_tips_during_session = Set(v);
    }
    if let Some(v) = req.toggle_control_panel {
        row.toggle_control_panel = Set(v);
    }
    if let Some(v) = theme {
        row.theme = Set(v.to_owned());
    }
    core.repo
        .save_with_event(
            row,
            event("settings.update", Some(&id), &principal.actor(), json!({})),
        )
        .await?;
    let saved = core
        .repo
        .settings(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("settings of user {id}")))?;
    Ok(settings_to_proto(&saved))
}

fn key_message(row: &ssh_row::Model, private_key: String) -> pb::SshKey {
    pb::SshKey {
        user_id: row.user_id.clone(),
        public_key: row.public_key.clone(),
        private_key,
        updated_at: Some(timestamp(row.updated_at)),
        fingerprint: row.fingerprint.clone(),
    }
}

async fn store(
    core: &Core,
    principal: &Principal,
    user_id: &str,
    private: &PrivateKey,
    kind: &str,
) -> ApiResult<ssh_row::Model> {
    let pem = private
        .to_openssh(LineEnding::LF)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("encode SSH key: {e}")))?;
    let public = private.public_key();
    let row = ssh_row::Model {
        user_id: user_id.to_owned(),
        public_key: public
            .to_openssh()
            .map_err(|e| ApiError::internal(anyhow::anyhow!("encode SSH public key: {e}")))?,
        private_key_sealed: core
            .secrets
            .seal(pem.as_bytes())
            .map_err(ApiError::Internal)?,
        fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
        updated_at: Utc::now(),
    };
    let ev = event(
        kind,
        Some(user_id),
        &principal.actor(),
        json!({ "fingerprint": row.fingerprint }),
    );
    core.repo.put_ssh_key(row.clone(), ev).await?;
    Ok(row)
}

pub async fn generate(
    core: &Core,
    principal: &Principal,
    req: pb::GenerateSshKeyRequest,
) -> ApiResult<pb::SshKey> {
    let id = target(core, principal, &req.user_id)?;
    core.act_on(principal, &id, permissions::USERS_MODIFY)
        .await?;
    let user = core.repo.user(&id).await?;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&crate::crypto::random_bytes::<32>());
    let private = PrivateKey::new(
        ssh_key::private::KeypairData::Ed25519(pair),
        format!("{}@atrium", user.username),
    )
    .map_err(|e| ApiError::internal(anyhow::anyhow!("build SSH key: {e}")))?;
    let row = store(core, principal, &id, &private, "ssh_key.generate").await?;
    let pem = private
        .to_openssh(LineEnding::LF)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("encode SSH key: {e}")))?;
    Ok(key_message(&row, pem.to_string()))
}

pub async fn set(
    core: &Core,
    principal: &Principal,
    req: pb::SetSshKeyRequest,
) -> ApiResult<pb::SshKey> {
    let id = target(core, principal, &req.user_id)?;
    core.act_on(principal, &id, permissions::USERS_MODIFY)
        .await?;
    core.repo.user(&id).await?;
    let public = PublicKey::from_openssh(req.public_key.trim())
        .map_err(|_| ApiError::invalid("public_key", "is not an OpenSSH public key"))?;
    let private = PrivateKey::from_openssh(req.private_key.trim()).map_err(|_| {
        ApiError::invalid("private_key", "is not an unencrypted OpenSSH private key")
    })?;
    if private.is_encrypted() {
        return Err(ApiError::invalid(
            "private_key",
            "must not be passphrase-protected",
        ));
    }
    if private.public_key().key_data() != public.key_data() {
        return Err(ApiError::invalid(
            "public_key",
            "does not belong to private_key",
        ));
    }
    let row = store(core, principal, &id, &private, "ssh_key.set").await?;
    Ok(key_message(&row, String::new()))
}

pub async fn get(
    core: &Core,
    principal: &Principal,
    req: pb::GetSshKeyRequest,
) -> ApiResult<pb::SshKey> {
    let id = target(core, principal, &req.user_id)?;
    core.self_or(principal, &id, permissions::USERS_VIEW)
        .await?;
    let row = core
        .repo
        .ssh_key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("SSH key of user {id}")))?;
    let private_key = if req.include_private_key {
        // Admins and services only, even for the caller's own key (the proto's contract); and
        // a private key is a credential: only of users whose rights the caller covers.
        core.require(principal, permissions::USERS_MODIFY).await?;
        core.may_act_on(principal, &id).await?;
        let pem = core
            .secrets
            .open(&row.private_key_sealed)
            .map_err(ApiError::Internal)?;
        String::from_utf8(pem)
            .map_err(|_| ApiError::internal(anyhow::anyhow!("stored SSH key is not UTF-8")))?
    } else {
        String::new()
    };
    Ok(key_message(&row, private_key))
}
