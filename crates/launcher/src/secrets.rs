//! Secrets generated on the first start in a data directory and reused after (`secrets.json`,
//! readable by its owner only).

use std::path::Path;

use anyhow::Context as _;
use atrium_service_kit::sealed::SecretBox;
use serde::{Deserialize, Serialize};

/// The data directory's generated secrets.
#[derive(Serialize, Deserialize)]
pub(crate) struct LocalSecrets {
    /// Identity's secrets key (seals TOTP secrets, SSH keys, signing keys).
    pub secrets_key: String,
    /// The session-manager's own secrets key (seals session passwords); added to older files
    /// on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_manager_secrets_key: Option<String>,
}

impl LocalSecrets {
    /// Reads `dir/secrets.json`, creating it (or filling in keys it lacks) as needed.
    pub(crate) fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("secrets.json");
        if !path.exists() {
            let secrets = LocalSecrets {
                secrets_key: SecretBox::generate_key(),
                session_manager_secrets_key: Some(SecretBox::generate_key()),
            };
            let text = serde_json::to_string_pretty(&secrets)?;
            write_private(&path, &text, true)
                .with_context(|| format!("write {}", path.display()))?;
            return Ok(secrets);
        }
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let mut secrets: LocalSecrets =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        if secrets.session_manager_secrets_key.is_none() {
            secrets.session_manager_secrets_key = Some(SecretBox::generate_key());
            let text = serde_json::to_string_pretty(&secrets)?;
            write_private(&path, &text, false)
                .with_context(|| format!("update {}", path.display()))?;
        }
        Ok(secrets)
    }
}

fn write_private(path: &Path, text: &str, new: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if new {
        options.create_new(true);
    } else {
        options.truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_made_once_and_older_files_gain_the_new_key() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let first = LocalSecrets::load_or_create(dir.path()).expect("create");
        let again = LocalSecrets::load_or_create(dir.path()).expect("load");
        assert_eq!(first.secrets_key, again.secrets_key);
        assert_eq!(
            first.session_manager_secrets_key,
            again.session_manager_secrets_key
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets.json"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "secrets.json is readable by others");
        }

        // A file from before the session-manager: identity's key stays, the new one is added.
        let old = tempfile::tempdir().expect("a temp dir");
        let key = SecretBox::generate_key();
        std::fs::write(
            old.path().join("secrets.json"),
            format!("{{\"secrets_key\":\"{key}\"}}"),
        )
        .expect("write");
        let loaded = LocalSecrets::load_or_create(old.path()).expect("load");
        assert_eq!(loaded.secrets_key, key);
        let added = loaded.session_manager_secrets_key.expect("a key added");
        let reloaded = LocalSecrets::load_or_create(old.path()).expect("reload");
        assert_eq!(reloaded.session_manager_secrets_key, Some(added));
    }
}
