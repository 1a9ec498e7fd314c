//! The credentials file `atrium login` writes: `<config dir>/credentials.json`, mode 0600,
//! holding the endpoint, the access and refresh tokens and their expiry.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "credentials.json";

/// Access tokens this close to expiry are refreshed before use.
const EXPIRY_SKEW_SECONDS: i64 = 10;

/// A login session as stored on disk.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredentials {
    pub endpoint: String,
    pub access_token: String,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub refresh_token: String,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub login_session_id: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub username: String,
}

impl fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("endpoint", &self.endpoint)
            .field("access_token", &"[redacted]")
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field("refresh_token", &"[redacted]")
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .field("login_session_id", &self.login_session_id)
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .finish()
    }
}

impl StoredCredentials {
    /// Whether the access token is expired (or about to be) at `now`.
    pub fn access_expired(&self, now: DateTime<Utc>) -> bool {
        self.access_token_expires_at
            .is_some_and(|at| at <= now + chrono::Duration::seconds(EXPIRY_SKEW_SECONDS))
    }

    /// Whether these credentials were issued by `endpoint`.
    pub fn is_for(&self, endpoint: &str) -> bool {
        normalize_endpoint(&self.endpoint) == normalize_endpoint(endpoint)
    }
}

/// Endpoints compare without a trailing slash and case-insensitively in scheme and host.
pub fn normalize_endpoint(endpoint: &str) -> String {
    endpoint.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// The directory: `--config-dir`/`ATRIUM_CONFIG_DIR`, else `$XDG_CONFIG_HOME/atrium`, else
/// `~/.config/atrium`.
pub fn default_config_dir() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("atrium"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("atrium"))
}

/// The credentials file inside a config directory.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the credentials file; `None` when there is none.
pub fn load(dir: &Path) -> anyhow::Result<Option<StoredCredentials>> {
    let path = path_in(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let creds = serde_json::from_str(&text)
        .with_context(|| format!("parse {} (run `atrium login` again)", path.display()))?;
    Ok(Some(creds))
}

/// Writes the credentials file atomically, readable by its owner only.
pub fn save(dir: &Path, creds: &StoredCredentials) -> anyhow::Result<()> {
    create_private_dir(dir)?;
    let path = path_in(dir);
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(creds).context("encode credentials")?;
    write_private(&tmp, text.as_bytes()).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replace {}", path.display()))?;
    Ok(())
}

/// Removes the credentials file; `false` when there was none.
pub fn remove(dir: &Path) -> anyhow::Result<bool> {
    let path = path_in(dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // The mode above applies only to new files; a leftover temp file is tightened too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredCredentials {
        StoredCredentials {
            endpoint: "http://127.0.0.1:7001".into(),
            access_token: "access".into(),
            access_token_expires_at: DateTime::from_timestamp(1_700_000_000, 0),
            refresh_token: "refresh".into(),
            refresh_token_expires_at: None,
            login_session_id: "s1".into(),
            user_id: "u1".into(),
            username: "alice".into(),
        }
    }

    #[test]
    fn saves_loads_and_removes_with_owner_only_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("nested").join("atrium");
        assert_eq!(load(&config).expect("load"), None);
        save(&config, &sample()).expect("save");
        assert_eq!(load(&config).expect("load"), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_in(&config))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(remove(&config).expect("remove"));
        assert!(!remove(&config).expect("remove again"));
    }

    #[test]
    fn expiry_has_a_skew() {
        let creds = sample();
        let at = creds.access_token_expires_at.expect("expiry");
        assert!(!creds.access_expired(at - chrono::Duration::seconds(60)));
        assert!(creds.access_expired(at - chrono::Duration::seconds(5)));
        assert!(creds.access_expired(at + chrono::Duration::seconds(1)));
        let never = StoredCredentials {
            access_token_expires_at: None,
            ..sample()
        };
        assert!(!never.access_expired(at));
    }

    #[test]
    fn endpoints_compare_loosely() {
        let creds = sample();
        assert!(creds.is_for("http://127.0.0.1:7001/"));
        assert!(!creds.is_for("http://127.0.0.1:7002"));
    }

    #[test]
    fn debug_hides_tokens() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("access\""));
        assert!(!text.contains("refresh\""));
        assert!(text.contains("[redacted]"));
    }
}
