//! The services the session-manager calls: policy (effective settings, workspaces, zones, file
//! mappings, permissions), identity (users, SSH keys, user settings) and the agents, each over
//! mutual TLS with this service's own identity. Effective settings (with the user's groups)
//! are reused for a few seconds, so a burst of keepalives costs policy one call per user.
//! billing-usage is in `usage.rs`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atrium_proto::agent::v1::agent_service_client::AgentServiceClient;
use atrium_proto::identity::v1 as id_pb;
use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_proto::policy::v1 as pol;
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_service_kit::client::Dialer;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_service_kit::{ApiError, ApiResult};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Intercepted = InterceptedService<Channel, OutgoingInterceptor>;
pub type AgentClient = AgentServiceClient<Intercepted>;

/// How long a user's effective settings and permissions are reused.
const POLICY_TTL: Duration = Duration::from_secs(3);

/// The settings a session's life depends on, from the owner's effective policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub keepalive_expiration_secs: i64,
    pub keepalive_expiration_action: String,
    /// `None`: unlimited ("not set"); `Some(0)` is a value.
    pub session_time_limit_secs: Option<i64>,
    pub max_kasms_per_user: i64,
    pub allow_pause: bool,
    pub allow_stop: bool,
    pub allow_delete: bool,
    pub allow_force_delete: bool,
    pub allow_zone_selection: bool,
    pub allow_persistent_profile: bool,
    pub inject_ssh_keys: bool,
    pub expose_user_environment: bool,
    pub default_image: String,
    /// Group-level docker-run parameters (JSON object).
    pub run_config: serde_json::Map<String, serde_json::Value>,
    /// Group-level host volume mappings: host path → (container path, read-only).
    pub volumes: Vec<(String, String, bool)>,
    /// The user's groups, strongest first (the order settings resolve in).
    pub group_ids: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keepalive_expiration_secs: 3600,
            keepalive_expiration_action: "delete".into(),
            session_time_limit_secs: None,
            max_kasms_per_user: 5,
            allow_pause: false,
            allow_stop: false,
            allow_delete: true,
            allow_force_delete: false,
            allow_zone_selection: false,
            allow_persistent_profile: false,
            inject_ssh_keys: false,
            expose_user_environment: false,
            default_image: String::new(),
            run_config: serde_json::Map::new(),
            volumes: Vec::new(),
            group_ids: Vec::new(),
        }
    }
}

fn value_json(v: &pol::SettingValue) -> Option<serde_json::Value> {
    use pol::setting_value::Kind;
    Some(match v.kind.as_ref()? {
        Kind::BoolValue(b) => serde_json::Value::Bool(*b),
        Kind::IntValue(i) => serde_json::Value::from(*i),
        Kind::FloatValue(f) => serde_json::Value::from(*f),
        Kind::StringValue(s) => serde_json::Value::String(s.clone()),
        Kind::JsonValue(j) => serde_json::from_str(j).ok()?,
    })
}

impl Settings {
    /// The settings and groups of a user's explained effective policy.
    pub fn from_explanation(policy: &pol::PolicyExplanation) -> Self {
        let mut s = Self::from_values(
            policy
                .settings
                .iter()
                .map(|setting| (setting.name.as_str(), setting.value.as_ref())),
        );
        s.group_ids = policy.groups.iter().map(|g| g.group_id.clone()).collect();
        s
    }

    /// From effective values by setting name (absent: "not set").
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = (&'a str, Option<&'a pol::SettingValue>)>,
    ) -> Self {
        let mut s = Settings::default();
        for (name, value) in values {
            let Some(value) = value.and_then(value_json) else {
                continue;
            };
            let as_bool = value.as_bool();
            let as_int = value
                .as_i64()
                .or_else(|| value.as_f64().map(|f| f.round() as i64));
            match name {
                "keepalive_expiration" => {
                    s.keepalive_expiration_secs = as_int.unwrap_or(s.keepalive_expiration_secs)
                }
                "keepalive_expiration_action" => {
                    if let Some(a) = value.as_str() {
                        s.keepalive_expiration_action = a.to_owned();
                    }
                }
                "session_time_limit" => s.session_time_limit_secs = as_int,
                "max_kasms_per_user" => {
                    s.max_kasms_per_user = as_int.unwrap_or(s.max_kasms_per_user)
                }
                "allow_kasm_pause" => s.allow_pause = as_bool.unwrap_or(false),
                "allow_kasm_stop" => s.allow_stop = as_bool.unwrap_or(false),
                "allow_kasm_delete" => s.allow_delete = as_bool.unwrap_or(true),
                "allow_kasm_force_delete" => s.allow_force_delete = as_bool.unwrap_or(false),
                "allow_zone_selection" => s.allow_zone_selection = as_bool.unwrap_or(false),
                "allow_persistent_profile" => s.allow_persistent_profile = as_bool.unwrap_or(false),
                "inject_ssh_keys" => s.inject_ssh_keys = as_bool.unwrap_or(false),
                "expose_user_environment_vars" => {
                    s.expose_user_environment = as_bool.unwrap_or(false)
                }
                "default_image" => s.default_image = value.as_str().unwrap_or("").to_owned(),
                "run_config" => {
                    if let Some(map) = value.as_object() {
                        s.run_config = map.clone();
                    }
                }
                "volume_mapping" => {
                    if let Some(map) = value.as_object() {
                        for (host, target) in map {
                            let bind = target.get("bind").and_then(|b| b.as_str());
                            let ro = target.get("mode").and_then(|m| m.as_str()) == Some("ro");
                            if let Some(bind) = bind {
                                s.volumes.push((host.clone(), bind.to_owned(), ro));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        s
    }
}

/// What a user may do over others' sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub administrator: bool,
    pub permissions: Vec<String>,
}

impl Permissions {
    pub fn holds(&self, permission: &str) -> bool {
        self.administrator || self.permissions.iter().any(|p| p == permission)
    }
}

struct Cached<T> {
    value: T,
    at: Instant,
}

pub struct Peers {
    policy: PolicyServiceClient<Intercepted>,
    identity: IdentityServiceClient<Intercepted>,
    dialer: Dialer,
    agents: Mutex<HashMap<String, AgentClient>>,
    settings: Mutex<HashMap<String, Cached<Settings>>>,
    permissions: Mutex<HashMap<String, Cached<Permissions>>>,
}

fn unavailable(what: &str, status: &tonic::Status) -> ApiError {
    tracing::warn!(error = %status, "{what} could not answer");
    ApiError::Unavailable(format!("{what} cannot be reached right now"))
}

/// Passes a peer's refusal on (its own words), and hides transport failures behind one line.
fn relay(what: &str, status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::NotFound => ApiError::NotFound(status.message().to_owned()),
        tonic::Code::InvalidArgument => ApiError::FailedPrecondition(status.message().to_owned()),
        tonic::Code::PermissionDenied => ApiError::PermissionDenied(status.message().to_owned()),
        tonic::Code::FailedPrecondition => {
            ApiError::FailedPrecondition(status.message().to_owned())
        }
        _ => unavailable(what, &status),
    }
}

fn cached<T: Clone>(map: &Mutex<HashMap<String, Cached<T>>>, key: &str) -> Option<T> {
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(key)
        .filter(|c| c.at.elapsed() < POLICY_TTL)
        .map(|c| c.value.clone())
}

fn remember<T>(map: &Mutex<HashMap<String, Cached<T>>>, key: &str, value: T) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() > 50_000 {
        map.clear();
    }
    map.insert(
        key.to_owned(),
        Cached {
            value,
            at: Instant::now(),
        },
    );
}

impl Peers {
    pub fn new(
        policy_endpoint: &str,
        identity_endpoint: &str,
        dialer: Dialer,
    ) -> anyhow::Result<Self> {
        let intercept = || OutgoingInterceptor::new(None);
        let policy = dialer
            .lazy(policy_endpoint)
            .map_err(|e| anyhow::anyhow!("policy_endpoint: {e:#}"))?;
        let identity = dialer
            .lazy(identity_endpoint)
            .map_err(|e| anyhow::anyhow!("identity_endpoint: {e:#}"))?;
        Ok(Self {
            policy: PolicyServiceClient::with_interceptor(policy, intercept()?),
            identity: IdentityServiceClient::with_interceptor(identity, intercept()?),
            dialer,
            agents: Mutex::new(HashMap::new()),
            settings: Mutex::new(HashMap::new()),
            permissions: Mutex::new(HashMap::new()),
        })
    }

    /// The client of the agent at `address` (`host:port`), dialled lazily and reused.
    pub fn agent(&self, address: &str) -> ApiResult<AgentClient> {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = agents.get(address) {
            return Ok(c.clone());
        }
        let scheme = if self.dialer.is_tls() {
            "https"
        } else {
            "http"
        };
        let channel = self
            .dialer
            .lazy(&format!("{scheme}://{address}"))
            .map_err(|e| ApiError::Unavailable(format!("agent at {address}: {e:#}")))?;
        let client = AgentServiceClient::with_interceptor(
            channel,
            OutgoingInterceptor::new(None).map_err(ApiError::internal)?,
        )
        .max_decoding_message_size(64 << 20);
        agents.insert(address.to_owned(), client.clone());
        Ok(client)
    }

    /// The user's effective settings and groups (ExplainEffectivePolicy), reused for 3 s.
    pub async fn settings(&self, user_id: &str) -> ApiResult<Settings> {
        if let Some(s) = cached(&self.settings, user_id) {
            return Ok(s);
        }
        let policy = self
            .policy
            .clone()
            .explain_effective_policy(pol::ResolveEffectivePolicyRequest {
                user_id: user_id.to_owned(),
            })
            .await
            .map_err(|s| relay("policy", s))?
            .into_inner();
        let settings = Settings::from_explanation(&policy);
        remember(&self.settings, user_id, settings.clone());
        Ok(settings)
    }

    pub async fn permissions(&self, user_id: &str) -> ApiResult<Permissions> {
        if let Some(p) = cached(&self.permissions, user_id) {
            return Ok(p);
        }
        let perms = self
            .policy
            .clone()
            .get_effective_permissions(pol::GetEffectivePermissionsRequest {
                user_id: user_id.to_owned(),
            })
            .await
            .map_err(|s| relay("policy", s))?
            .into_inner();
        let p = Permissions {
            administrator: perms.administrator,
            permissions: perms.permissions,
        };
        remember(&self.permissions, user_id, p.clone());
        Ok(p)
    }

    pub async fn launchable(&self, user_id: &str) -> ApiResult<Vec<pol::Workspace>> {
        Ok(self
            .policy
            .clone()
            .list_launchable_workspaces(pol::ListLaunchableWorkspacesRequest {
                user_id: user_id.to_owned(),
            })
            .await
            .map_err(|s| relay("policy", s))?
            .into_inner()
            .workspaces)
    }

    /// The full workspace (with run_config, hooks and mappings: this service may see them).
    pub async fn workspace(&self, workspace_id: &str) -> ApiResult<pol::Workspace> {
        self.policy
            .clone()
            .get_workspace(pol::GetWorkspaceRequest {
                workspace_id: workspace_id.to_owned(),
            })
            .await
            .map_err(|s| relay("policy", s))
            .map(tonic::Response::into_inner)
    }

    pub async fn zones(&self) -> ApiResult<Vec<pol::Zone>> {
        Ok(self
            .policy
            .clone()
            .list_zones(pol::ListZonesRequest {})
            .await
            .map_err(|s| relay("policy", s))?
            .into_inner()
            .zones)
    }

    pub async fn file_mappings(
        &self,
        user_id: &str,
        workspace_id: &str,
    ) -> ApiResult<Vec<pol::FileMapping>> {
        Ok(self
            .policy
            .clone()
            .resolve_file_mappings(pol::ResolveFileMappingsRequest {
                user_id: user_id.to_owned(),
                workspace_id: workspace_id.to_owned(),
            })
            .await
            .map_err(|s| relay("policy", s))?
            .into_inner()
            .file_mappings
            .into_iter()
            .filter_map(|m| m.mapping)
            .filter(|m| m.enabled)
            .collect())
    }

    pub async fn user(&self, user_id: &str) -> ApiResult<id_pb::User> {
        self.identity
            .clone()
            .get_user(id_pb::GetUserRequest {
                key: Some(id_pb::get_user_request::Key::UserId(user_id.to_owned())),
            })
            .await
            .map_err(|s| relay("identity", s))
            .map(tonic::Response::into_inner)
    }

    pub async fn user_settings(&self, user_id: &str) -> ApiResult<id_pb::UserSettings> {
        self.identity
            .clone()
            .get_user_settings(id_pb::GetUserSettingsRequest {
                user_id: user_id.to_owned(),
            })
            .await
            .map_err(|s| relay("identity", s))
            .map(tonic::Response::into_inner)
    }

    /// The user's SSH key pair, if they have one (`None` when they have none).
    pub async fn ssh_key(&self, user_id: &str) -> ApiResult<Option<id_pb::SshKey>> {
        match self
            .identity
            .clone()
            .get_ssh_key(id_pb::GetSshKeyRequest {
                user_id: user_id.to_owned(),
                include_private_key: true,
            })
            .await
        {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(relay("identity", s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(kind: pol::setting_value::Kind) -> Option<pol::SettingValue> {
        Some(pol::SettingValue { kind: Some(kind) })
    }

    #[test]
    fn the_explanation_gives_settings_and_groups_strongest_first() {
        use pol::setting_value::Kind;
        let group = |id: &str, priority| pol::GroupRef {
            group_id: id.into(),
            name: format!("{id}-name"),
            priority,
        };
        let explanation = pol::PolicyExplanation {
            user_id: "u".into(),
            groups: vec![group("g-staff", 10), group("g-all", 1000)],
            settings: vec![
                pol::SettingExplanation {
                    name: "keepalive_expiration".into(),
                    value: value(Kind::IntValue(900)),
                    supplied_by: vec![group("g-staff", 10)],
                    ..Default::default()
                },
                pol::SettingExplanation {
                    name: "keepalive_expiration_action".into(),
                    value: value(Kind::StringValue("pause".into())),
                    ..Default::default()
                },
                pol::SettingExplanation {
                    name: "session_time_limit".into(),
                    value: None,
                    is_default: true,
                    ..Default::default()
                },
            ],
        };
        let s = Settings::from_explanation(&explanation);
        assert_eq!(s.group_ids, ["g-staff", "g-all"]);
        assert_eq!(s.keepalive_expiration_secs, 900);
        assert_eq!(s.keepalive_expiration_action, "pause");
        assert_eq!(s.session_time_limit_secs, None);
    }
}
