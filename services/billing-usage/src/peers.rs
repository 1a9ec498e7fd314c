//! The services billing-usage asks: policy (each user's effective usage_limit and the group
//! that supplied it; permissions) and identity (whether a user exists), over mutual TLS with
//! this service's own identity. Answers are reused for `policy_cache_ms`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atrium_proto::identity::v1 as id_pb;
use atrium_proto::identity::v1::identity_service_client::IdentityServiceClient;
use atrium_proto::policy::v1 as pol;
use atrium_proto::policy::v1::policy_service_client::PolicyServiceClient;
use atrium_service_kit::client::Dialer;
use atrium_service_kit::telemetry::OutgoingInterceptor;
use atrium_service_kit::{ApiError, ApiResult};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::window::Interval;

type Intercepted = InterceptedService<Channel, OutgoingInterceptor>;

/// Whose time counts against an allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    PerUser,
    PerGroup,
}

/// A user's effective usage_limit and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub scope: Scope,
    pub interval: Interval,
    pub hours: f64,
    pub group_id: String,
    pub group_name: String,
}

impl Limit {
    /// Reads policy's JSON form `{"type", "interval", "hours"}` (policy validated it on write).
    pub fn from_json(json: &serde_json::Value, group: Option<&pol::GroupRef>) -> Option<Limit> {
        let scope = match json.get("type")?.as_str()? {
            "per_user" => Scope::PerUser,
            "per_group" => Scope::PerGroup,
            _ => return None,
        };
        let interval = Interval::parse(json.get("interval")?.as_str()?)?;
        let hours = json.get("hours")?.as_f64().filter(|h| *h > 0.0)?;
        Some(Limit {
            scope,
            interval,
            hours,
            group_id: group.map(|g| g.group_id.clone()).unwrap_or_default(),
            group_name: group.map(|g| g.name.clone()).unwrap_or_default(),
        })
    }

    pub fn allowance_ms(&self) -> i64 {
        (self.hours * 3_600_000.0).round() as i64
    }
}

/// What a user may see and change here.
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

struct Cache<T> {
    ttl: Duration,
    map: Mutex<HashMap<String, Cached<T>>>,
}

impl<T: Clone> Cache<T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<T> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.value.clone())
    }

    fn put(&self, key: &str, value: T) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
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
}

/// Passes a peer's refusal on in its own words; hides transport failures behind one line.
fn relay(what: &str, status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::NotFound => ApiError::NotFound(status.message().to_owned()),
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
            ApiError::FailedPrecondition(status.message().to_owned())
        }
        tonic::Code::PermissionDenied => ApiError::PermissionDenied(status.message().to_owned()),
        _ => {
            tracing::warn!(error = %status, "{what} could not answer");
            ApiError::Unavailable(format!("{what} cannot be reached right now"))
        }
    }
}

pub struct Peers {
    policy: PolicyServiceClient<Intercepted>,
    identity: IdentityServiceClient<Intercepted>,
    limits: Cache<Option<Limit>>,
    permissions: Cache<Permissions>,
    users: Cache<()>,
}

impl Peers {
    pub fn new(
        policy_endpoint: &str,
        identity_endpoint: &str,
        dialer: &Dialer,
        ttl: Duration,
    ) -> anyhow::Result<Self> {
        let policy = dialer
            .lazy(policy_endpoint)
            .map_err(|e| anyhow::anyhow!("policy_endpoint: {e:#}"))?;
        let identity = dialer
            .lazy(identity_endpoint)
            .map_err(|e| anyhow::anyhow!("identity_endpoint: {e:#}"))?;
        Ok(Self {
            policy: PolicyServiceClient::with_interceptor(policy, OutgoingInterceptor::new(None)?),
            identity: IdentityServiceClient::with_interceptor(
                identity,
                OutgoingInterceptor::new(None)?,
            ),
            limits: Cache::new(ttl),
            permissions: Cache::new(ttl),
            users: Cache::new(ttl),
        })
    }

    /// The user's effective usage_limit, `None` when none applies.
    pub async fn limit(&self, user_id: &str) -> ApiResult<Option<Limit>> {
        if let Some(limit) = self.limits.get(user_id) {
            return Ok(limit);
        }
        let explained = self
            .policy
            .clone()
            .explain_effective_policy(pol::ResolveEffectivePolicyRequest {
                user_id: user_id.to_owned(),
            })
            .await
            .map_err(|s| relay("policy", s))?
            .into_inner();
        let limit = explained
            .settings
            .iter()
            .find(|s| s.name == "usage_limit")
            .and_then(|s| {
                let json = match s.value.as_ref()?.kind.as_ref()? {
                    pol::setting_value::Kind::JsonValue(j) => serde_json::from_str(j).ok()?,
                    _ => return None,
                };
                Limit::from_json(&json, s.supplied_by.first())
            });
        self.limits.put(user_id, limit.clone());
        Ok(limit)
    }

    pub async fn permissions(&self, user_id: &str) -> ApiResult<Permissions> {
        if let Some(p) = self.permissions.get(user_id) {
            return Ok(p);
        }
        let answer = self
            .policy
            .clone()
            .get_effective_permissions(pol::GetEffectivePermissionsRequest {
                user_id: user_id.to_owned(),
            })
            .await
            .map_err(|s| relay("policy", s))?
            .into_inner();
        let p = Permissions {
            administrator: answer.administrator,
            permissions: answer.permissions,
        };
        self.permissions.put(user_id, p.clone());
        Ok(p)
    }

    /// NotFound (naming `field`) unless identity knows the user.
    pub async fn require_user(&self, field: &str, user_id: &str) -> ApiResult<()> {
        if self.users.get(user_id).is_some() {
            return Ok(());
        }
        match self
            .identity
            .clone()
            .get_user(id_pb::GetUserRequest {
                key: Some(id_pb::get_user_request::Key::UserId(user_id.to_owned())),
            })
            .await
        {
            Ok(_) => {
                self.users.put(user_id, ());
                Ok(())
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(ApiError::invalid(field, format!("no such user {user_id}")))
            }
            Err(status) => Err(relay("identity", status)),
        }
    }

    /// InvalidArgument (naming `field`) unless policy knows the workspace.
    pub async fn require_workspace(&self, field: &str, workspace_id: &str) -> ApiResult<()> {
        match self
            .policy
            .clone()
            .get_workspace(pol::GetWorkspaceRequest {
                workspace_id: workspace_id.to_owned(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Err(ApiError::invalid(
                field,
                format!("no such workspace {workspace_id}"),
            )),
            Err(status) => Err(relay("policy", status)),
        }
    }
}
