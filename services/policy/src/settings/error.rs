//! The one error of the settings core: a refused setting name or value.

/// Names the setting and says why it was refused. Displays as `"<setting>: <reason>"`, e.g.
/// `keepalive_interval: must be at least 1 seconds, got 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SettingError {
    /// The canonical name, or the name as given when it is not in the catalogue.
    pub setting: String,
    pub reason: String,
}

/// Unknown names longer than this are cut in error messages.
const MAX_ECHOED_NAME: usize = 100;

impl SettingError {
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        SettingError {
            setting: setting.into(),
            reason: reason.into(),
        }
    }

    /// `name` is not in the catalogue; suggests the closest known name when one is near.
    pub fn unknown(name: &str) -> Self {
        if name.trim().is_empty() {
            return SettingError::new("setting name", "must not be empty");
        }
        let echoed: String = name.chars().take(MAX_ECHOED_NAME).collect();
        let reason = match super::catalogue::suggest(name) {
            Some(near) => format!("unknown setting; did you mean \"{near}\"?"),
            None => "unknown setting".to_owned(),
        };
        SettingError::new(echoed, reason)
    }
}
