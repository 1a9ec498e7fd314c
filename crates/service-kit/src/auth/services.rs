//! Atrium's own services as callers: who they are ([`ServiceId`], proven by the client
//! certificate each presents over mutual TLS) and the one table that says which RPCs each may
//! call. A service credential is not a master key: the auth layer refuses any call a service
//! makes outside its row of [`ALLOWED`], before a handler runs.

use std::fmt;
use std::str::FromStr;

/// One of Atrium's services, as named in its certificate (`spiffe://atrium/service/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceId {
    Identity,
    Policy,
    SessionManager,
    Agent,
    BillingUsage,
    Gateway,
}

impl ServiceId {
    pub const ALL: [ServiceId; 6] = [
        ServiceId::Identity,
        ServiceId::Policy,
        ServiceId::SessionManager,
        ServiceId::Agent,
        ServiceId::BillingUsage,
        ServiceId::Gateway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceId::Identity => "identity",
            ServiceId::Policy => "policy",
            ServiceId::SessionManager => "session-manager",
            ServiceId::Agent => "agent",
            ServiceId::BillingUsage => "billing-usage",
            ServiceId::Gateway => "gateway",
        }
    }

    /// The URI subject-alternative-name that carries this identity in a certificate.
    pub fn uri(self) -> String {
        format!("{SPIFFE_PREFIX}{}", self.name())
    }

    /// The identity a certificate's URI SAN names, if it is one of ours.
    pub fn from_uri(uri: &str) -> Option<ServiceId> {
        uri.strip_prefix(SPIFFE_PREFIX)?.parse().ok()
    }

    /// Whether this service may call the gRPC method at `path`
    /// (`/atrium.policy.v1.PolicyService/UserCreated`).
    pub fn may_call(self, path: &str) -> bool {
        ALLOWED
            .iter()
            .any(|(caller, method)| *caller == self && *method == path)
    }
}

/// The URI prefix of service identities in certificates.
pub const SPIFFE_PREFIX: &str = "spiffe://atrium/service/";

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServiceId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceId::ALL
            .into_iter()
            .find(|id| id.name() == s)
            .ok_or_else(|| format!("unknown service {s:?}"))
    }
}

macro_rules! calls {
    ($($caller:ident => $prefix:ident [$($method:literal),* $(,)?]),* $(,)?) => {
        &[$($((ServiceId::$caller, const_format_concat!($prefix, $method)),)*)*]
    };
}

/// `concat!` only takes literals; the prefixes are consts, so spell the join out.
macro_rules! const_format_concat {
    (IDENTITY, $m:literal) => {
        concat!("/atrium.identity.v1.IdentityService/", $m)
    };
    (POLICY, $m:literal) => {
        concat!("/atrium.policy.v1.PolicyService/", $m)
    };
    (AGENT, $m:literal) => {
        concat!("/atrium.agent.v1.AgentService/", $m)
    };
    (SESSION, $m:literal) => {
        concat!("/atrium.session.v1.SessionService/", $m)
    };
    (USAGE, $m:literal) => {
        concat!("/atrium.usage.v1.UsageService/", $m)
    };
}

/// Which service may call which RPC. Anything not listed is refused with PermissionDenied.
///
/// - identity tells policy about users, reads their effective policy (2FA requirement,
///   permissions, administrators) and maps SSO groups at login.
/// - policy, the agent, the session-manager, billing-usage and the gateway verify tokens and API
///   keys through identity and follow its revocations.
/// - the session-manager reads what a launch needs (policy, a user's public SSH key) and drives
///   the agents; nothing else.
/// - the session-manager delivers its lifecycle events to billing-usage and checks allowances.
/// - billing-usage reads effective policy (usage_limit and the group that supplied it).
/// - the gateway acts for its callers with their own credentials (forwarded on every call), so
///   it holds no rights of its own beyond reading a session, following its changes and, alone,
///   its basic-auth secret (for the streaming proxy).
pub const ALLOWED: &[(ServiceId, &str)] = calls![
    Identity => POLICY [
        "UserCreated", "UserDeleted", "ResolveEffectivePolicy", "GetEffectivePermissions",
        "ListUserGroups", "ApplySsoLogin", "ListGroupMembers",
    ],
    Policy => IDENTITY ["GetVerificationKeys", "AuthenticateApiKey", "WatchRevocations"],
    Agent => IDENTITY ["GetVerificationKeys", "AuthenticateApiKey", "WatchRevocations"],
    Agent => POLICY ["GetEffectivePermissions"],
    SessionManager => IDENTITY [
        "GetVerificationKeys", "AuthenticateApiKey", "WatchRevocations", "GetUser", "GetSshKey",
        "GetUserSettings",
    ],
    SessionManager => POLICY [
        "ResolveEffectivePolicy", "ExplainEffectivePolicy", "GetEffectivePermissions", "ListLaunchableWorkspaces",
        "GetWorkspace", "ResolveFileMappings", "ListZones",
    ],
    SessionManager => AGENT [
        "CreateSession", "StartSession", "StopSession", "PauseSession", "ResumeSession",
        "RemoveSession", "InspectSession", "ExecInSession", "ListSessions", "ListImages",
        "PullImage", "Drain", "GetStatus",
    ],
    BillingUsage => IDENTITY [
        "GetVerificationKeys", "AuthenticateApiKey", "WatchRevocations", "GetUser",
    ],
    SessionManager => USAGE ["IngestEvents", "CheckUsage"],
    BillingUsage => POLICY [
        "ResolveEffectivePolicy", "ExplainEffectivePolicy", "GetEffectivePermissions",
        "GetWorkspace",
    ],
    Gateway => IDENTITY ["GetVerificationKeys", "AuthenticateApiKey", "WatchRevocations"],
    Gateway => SESSION ["GetSession", "WatchSession", "GetSessionSecret"],
];

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: &str = "/atrium.identity.v1.IdentityService/";
    const POLICY: &str = "/atrium.policy.v1.PolicyService/";
    const AGENT: &str = "/atrium.agent.v1.AgentService/";

    #[test]
    fn names_round_trip_through_uris() {
        for id in ServiceId::ALL {
            assert_eq!(ServiceId::from_uri(&id.uri()), Some(id));
            assert_eq!(id.name().parse::<ServiceId>(), Ok(id));
        }
        assert_eq!(ServiceId::from_uri("spiffe://atrium/service/root"), None);
        assert_eq!(ServiceId::from_uri("spiffe://other/service/policy"), None);
        assert_eq!(ServiceId::from_uri("policy"), None);
    }

    #[test]
    fn an_agent_cannot_reach_credentials() {
        for method in [
            "SetPassword",
            "GetSshKey",
            "GenerateSshKey",
            "CreateApiKey",
            "CreateUser",
            "ResetTwoFactor",
            "ListAuditEvents",
            "RotateSigningKey",
        ] {
            let path = format!("{IDENTITY}{method}");
            assert!(!ServiceId::Agent.may_call(&path), "{path}");
        }
        for method in ["SetGroupSetting", "AddGroupMember", "UserCreated"] {
            assert!(!ServiceId::Agent.may_call(&format!("{POLICY}{method}")));
        }
        assert!(ServiceId::Agent.may_call(&format!("{IDENTITY}GetVerificationKeys")));
    }

    #[test]
    fn the_session_manager_reads_and_drives_agents_only() {
        let sm = ServiceId::SessionManager;
        assert!(sm.may_call(&format!("{AGENT}CreateSession")));
        assert!(sm.may_call(&format!("{POLICY}ResolveEffectivePolicy")));
        for method in ["SetPassword", "CreateApiKey", "UpdateUser", "DeleteUser"] {
            assert!(!sm.may_call(&format!("{IDENTITY}{method}")));
        }
        assert!(!sm.may_call(&format!("{POLICY}AddGroupMember")));
        assert!(!sm.may_call(&format!("{POLICY}SetGroupSetting")));
    }

    #[test]
    fn the_gateway_cannot_act_on_sessions_by_itself() {
        let gw = ServiceId::Gateway;
        const SESSION: &str = "/atrium.session.v1.SessionService/";
        for method in ["GetSession", "WatchSession", "GetSessionSecret"] {
            assert!(gw.may_call(&format!("{SESSION}{method}")), "{method}");
        }
        for method in [
            "RequestSession",
            "Delete",
            "ForceDelete",
            "Exec",
            "Keepalive",
            "ListSessions",
        ] {
            assert!(!gw.may_call(&format!("{SESSION}{method}")), "{method}");
        }
        for method in ["CreateUser", "Login", "CreateApiKey", "GetSshKey"] {
            assert!(!gw.may_call(&format!("{IDENTITY}{method}")), "{method}");
        }
        assert!(!gw.may_call(&format!("{POLICY}GetEffectivePermissions")));
    }

    #[test]
    fn every_entry_names_a_real_method() {
        let descriptor = atrium_proto::FILE_DESCRIPTOR_SET;
        for (_, path) in ALLOWED {
            let method = path.rsplit('/').next().unwrap_or_default();
            // Future RPCs (WatchRevocations) must exist by the time they are allowed.
            assert!(
                descriptor
                    .windows(method.len())
                    .any(|w| w == method.as_bytes()),
                "{path} is not in the descriptor set"
            );
        }
    }
}
