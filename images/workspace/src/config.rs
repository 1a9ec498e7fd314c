//! Settings, all from the environment like Kasm's images: `VNC_PW` (required), `HOME`,
//! `ATRIUM_WORKSPACE_PORT`, and the labels shown on the page.

use std::path::PathBuf;

use secrecy::SecretString;

/// The port Kasm's images serve on.
pub const DEFAULT_PORT: u16 = 6901;

/// The home directory of Kasm's images.
pub const DEFAULT_HOME: &str = "/home/kasm-user";

/// Why the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "VNC_PW is empty or unset: set it to the password of user kasm_user, \
         e.g. `docker run -e VNC_PW=secret ...`"
    )]
    MissingPassword,
    #[error("ATRIUM_WORKSPACE_PORT={0:?} is not a port number (1-65535)")]
    BadPort(String),
}

/// What the server needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    /// The basic-auth password of `kasm_user` (`VNC_PW`).
    pub password: SecretString,
    /// Where `notes.txt` is kept (`HOME`).
    pub home: PathBuf,
    /// `KASM_USER`, shown on the page when set.
    pub kasm_user: Option<String>,
    /// `KASM_USER_ID`, shown on the page when set.
    pub kasm_user_id: Option<String>,
    /// `ATRIUM_SESSION_ID`, the session label Atrium passes in.
    pub session_id: Option<String>,
    /// `ATRIUM_WORKSPACE_ID`, the workspace label Atrium passes in.
    pub workspace_id: Option<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `get` (empty values count as unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        let password = get("VNC_PW").ok_or(ConfigError::MissingPassword)?;
        let port = match get("ATRIUM_WORKSPACE_PORT") {
            None => DEFAULT_PORT,
            Some(raw) => match raw.trim().parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => return Err(ConfigError::BadPort(raw)),
            },
        };
        Ok(Self {
            port,
            password: SecretString::from(password),
            home: get("HOME").map_or_else(|| PathBuf::from(DEFAULT_HOME), PathBuf::from),
            kasm_user: get("KASM_USER"),
            kasm_user_id: get("KASM_USER_ID"),
            session_id: get("ATRIUM_SESSION_ID"),
            workspace_id: get("ATRIUM_WORKSPACE_ID"),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn a_password_is_required() {
        assert!(matches!(config(&[]), Err(ConfigError::MissingPassword)));
        assert!(matches!(
            config(&[("VNC_PW", "")]),
            Err(ConfigError::MissingPassword)
        ));
    }

    #[test]
    fn defaults_follow_kasm() {
        let c = config(&[("VNC_PW", "pw")]).expect("config");
        assert_eq!(c.port, 6901);
        assert_eq!(c.home, PathBuf::from("/home/kasm-user"));
        assert_eq!(c.password.expose_secret(), "pw");
        assert_eq!(c.session_id, None);
    }

    #[test]
    fn the_port_can_be_moved_but_must_be_a_port() {
        let c = config(&[("VNC_PW", "pw"), ("ATRIUM_WORKSPACE_PORT", "8443")]).expect("config");
        assert_eq!(c.port, 8443);
        for bad in ["0", "70000", "http"] {
            assert!(matches!(
                config(&[("VNC_PW", "pw"), ("ATRIUM_WORKSPACE_PORT", bad)]),
                Err(ConfigError::BadPort(_))
            ));
        }
    }
}
