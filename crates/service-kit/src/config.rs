//! Layered configuration: defaults → TOML file → `ATRIUM_<SERVICE>__` environment → command
//! line. Secrets are [`Secret`]s: usable in code, printed as `[redacted]`.

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

/// A secret configuration value. It deserialises from a plain string and serialises (in
/// `--dump-config`) as `[redacted]`; `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// Command-line arguments every service binary takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub dump_config: bool,
    /// Override one setting, e.g. `--set listen=0.0.0.0:7001` or `--set password_policy.min_length=12`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Loads a service's configuration. `service` names the environment prefix: `identity` reads
/// `ATRIUM_IDENTITY__*` (nested keys separated by `__`).
pub fn load<T>(service: &str, defaults: &T, args: &ConfigArgs) -> anyhow::Result<T>
where
    T: Serialize + DeserializeOwned,
{
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(path) = &args.config {
        if !path.exists() {
            anyhow::bail!("config file {} does not exist", path.display());
        }
        figment = figment.merge(Toml::file(path));
    }
    let prefix = format!(
        "ATRIUM_{}__",
        service.to_ascii_uppercase().replace('-', "_")
    );
    figment = figment.merge(Env::prefixed(&prefix).split("__"));
    for item in &args.overrides {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--set {item}: expected KEY=VALUE"))?;
        let value: toml_value::Value = toml_value::parse(value);
        figment = figment.merge(Serialized::global(key.trim(), value));
    }
    figment
        .extract()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

/// Renders a configuration for `--dump-config`.
pub fn dump<T: Serialize>(config: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(config)?)
}

/// `--set` values: numbers and booleans as such, anything else as a string.
mod toml_value {
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(untagged)]
    pub enum Value {
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
    }

    pub fn parse(raw: &str) -> Value {
        if let Ok(b) = raw.parse() {
            Value::Bool(b)
        } else if let Ok(i) = raw.parse() {
            Value::Int(i)
        } else if let Ok(f) = raw.parse() {
            Value::Float(f)
        } else {
            Value::Str(raw.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Nested {
        min_length: u32,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Conf {
        listen: String,
        nested: Nested,
        token: Option<Secret>,
    }

    fn defaults() -> Conf {
        Conf {
            listen: "127.0.0.1:1".into(),
            nested: Nested { min_length: 8 },
            token: None,
        }
    }

    #[test]
    fn layers_apply_in_order_and_secrets_are_redacted() {
        let dir = tempfile_dir();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:2\"\ntoken = \"s3cret\"\n[nested]\nmin_length = 10\n",
        )
        .unwrap_or_default();
        let args = ConfigArgs {
            config: Some(path),
            dump_config: false,
            overrides: vec!["nested.min_length=12".into()],
        };
        let conf: Conf = load("kit-test-unused", &defaults(), &args).expect("load");
        assert_eq!(conf.listen, "127.0.0.1:2");
        assert_eq!(conf.nested, Nested { min_length: 12 });
        assert_eq!(conf.token.as_ref().map(Secret::expose), Some("s3cret"));
        let dumped = dump(&conf).expect("dump");
        assert!(
            dumped.contains("[redacted]") && !dumped.contains("s3cret"),
            "{dumped}"
        );
        assert!(!format!("{conf:?}").contains("s3cret"));
    }

    #[test]
    fn missing_file_and_bad_override_are_errors() {
        let args = ConfigArgs {
            config: Some("/nonexistent/x.toml".into()),
            ..Default::default()
        };
        assert!(load::<Conf>("kit-test-unused", &defaults(), &args).is_err());
        let args = ConfigArgs {
            overrides: vec!["novalue".into()],
            ..Default::default()
        };
        assert!(load::<Conf>("kit-test-unused", &defaults(), &args).is_err());
        let args = ConfigArgs {
            overrides: vec!["nested.min_length=abc".into()],
            ..Default::default()
        };
        let err = load::<Conf>("kit-test-unused", &defaults(), &args)
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("min_length"));
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("atrium-kit-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        dir
    }
}
