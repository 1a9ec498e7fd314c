//! Every `/api/v1` route, as data: method, path, the RPC behind it and how the request maps onto
//! the RPC's request message. The router and the OpenAPI document are both built from this one
//! table, so the document cannot drift from what is served.

use http::Method;

/// Where a route's request message gets its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body: path parameters and the query string fill the message.
    None,
    /// The whole message is the JSON body (path parameters override).
    All,
    /// The JSON body is this field of the message (a sub-message).
    Field(&'static str),
}

/// What serving a route means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Call the RPC, answer its response as JSON.
    Unary,
    /// Server-streaming RPC: Server-Sent Events, or a WebSocket of JSON text frames when the
    /// client asks to upgrade.
    Stream,
    /// Calls that create or end a browser's login (cookies are set or cleared).
    Login(LoginAction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAction {
    Login,
    Refresh,
    Logout,
    ChangePassword,
    ConfirmTotp,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// An axum path (`/api/v1/users/{user_id}`).
    pub path: &'static str,
    /// `package.Service/Method`.
    pub rpc: &'static str,
    /// Path parameters whose field is not the parameter's own name: (parameter, dotted field).
    pub bind: &'static [(&'static str, &'static str)],
    pub body: Body,
    pub serve: Serve,
    /// OpenAPI tag.
    pub tag: &'static str,
    pub summary: &'static str,
}

impl Route {
    /// The path parameters in order.
    pub fn params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// The request field a path parameter sets.
    pub fn field_of(&self, param: &str) -> &'static str {
        self.bind
            .iter()
            .find(|(p, _)| *p == param)
            .map(|(_, f)| *f)
            .unwrap_or_else(|| {
                self.params()
                    .find(|p| *p == param)
                    .unwrap_or("unknown_parameter")
            })
    }

    /// Whether the route needs a signed-in caller (everything but logging in).
    pub fn authenticated(&self) -> bool {
        !matches!(
            self.serve,
            Serve::Login(LoginAction::Login | LoginAction::Refresh)
        )
    }
}

const IDENTITY: &str = "atrium.identity.v1.IdentityService/";
const POLICY: &str = "atrium.policy.v1.PolicyService/";
const SESSION: &str = "atrium.session.v1.SessionService/";
const USAGE: &str = "atrium.usage.v1.UsageService/";

macro_rules! rpc {
    (IDENTITY, $m:literal) => {
        concat!("atrium.identity.v1.IdentityService/", $m)
    };
    (POLICY, $m:literal) => {
        concat!("atrium.policy.v1.PolicyService/", $m)
    };
    (SESSION, $m:literal) => {
        concat!("atrium.session.v1.SessionService/", $m)
    };
    (USAGE, $m:literal) => {
        concat!("atrium.usage.v1.UsageService/", $m)
    };
}

macro_rules! route {
    ($method:ident $path:literal => $svc:ident $rpc:literal, $body:expr, $tag:literal, $summary:literal $(, bind $bind:expr)? $(, serve $serve:expr)?) => {
        Route {
            method: Method::$method,
            path: $path,
            rpc: rpc!($svc, $rpc),
            bind: route!(@bind $($bind)?),
            body: $body,
            serve: route!(@serve $($serve)?),
            tag: $tag,
            summary: $summary,
        }
    };
    (@bind) => { &[] };
    (@bind $b:expr) => { $b };
    (@serve) => { Serve::Unary };
    (@serve $s:expr) => { $s };
}

use Body::{All, Field, None as NoBody};
use LoginAction as L;

/// The table.
pub static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
    let _ = (IDENTITY, POLICY, SESSION, USAGE);
    vec![
        // Signing in and out (browsers get cookies; programs may ask for tokens instead).
        route!(POST "/api/v1/login" => IDENTITY "Login", All, "auth", "Sign in with a password (and a TOTP code when enrolled)", serve Serve::Login(L::Login)),
        route!(POST "/api/v1/refresh" => IDENTITY "Refresh", All, "auth", "New tokens from the refresh cookie (or a refresh_token in the body)", serve Serve::Login(L::Refresh)),
        route!(POST "/api/v1/logout" => IDENTITY "Logout", NoBody, "auth", "End this login session and clear its cookies", serve Serve::Login(L::Logout)),
        route!(POST "/api/v1/logout-everywhere" => IDENTITY "LogoutEverywhere", All, "auth", "End every login session of the caller (or, with users.auth_session, of user_id)"),
        route!(POST "/api/v1/me/password" => IDENTITY "ChangePassword", All, "auth", "Change the caller's password (also completes a forced change)", serve Serve::Login(L::ChangePassword)),
        route!(POST "/api/v1/me/2fa/enroll" => IDENTITY "EnrollTotp", All, "auth", "Start TOTP enrolment: a secret and an otpauth:// URI"),
        route!(POST "/api/v1/me/2fa/confirm" => IDENTITY "ConfirmTotp", All, "auth", "Confirm TOTP enrolment with a code", serve Serve::Login(L::ConfirmTotp)),
        // The caller.
        route!(GET "/api/v1/me" => IDENTITY "WhoAmI", NoBody, "profile", "Who the caller is, their scope and permissions"),
        route!(GET "/api/v1/me/settings" => IDENTITY "GetUserSettings", NoBody, "profile", "The caller's user settings"),
        route!(PATCH "/api/v1/me/settings" => IDENTITY "UpdateUserSettings", All, "profile", "Change the caller's user settings"),
        route!(GET "/api/v1/me/ssh-key" => IDENTITY "GetSshKey", NoBody, "profile", "The caller's SSH key"),
        route!(PUT "/api/v1/me/ssh-key" => IDENTITY "SetSshKey", All, "profile", "Set the caller's SSH key"),
        route!(POST "/api/v1/me/ssh-key/generate" => IDENTITY "GenerateSshKey", All, "profile", "Generate a new SSH key pair for the caller"),
        route!(GET "/api/v1/me/workspaces" => POLICY "ListLaunchableWorkspaces", NoBody, "workspaces", "The workspaces the caller may launch"),
        route!(GET "/api/v1/me/policy" => POLICY "ResolveEffectivePolicy", NoBody, "profile", "The caller's effective settings"),
        route!(GET "/api/v1/me/usage" => USAGE "GetUsage", NoBody, "usage", "The caller's usage: current window and history by day"),
        route!(GET "/api/v1/me/usage/check" => USAGE "CheckUsage", NoBody, "usage", "Whether the caller's usage_limit allows more time"),
        // Sessions.
        route!(POST "/api/v1/sessions" => SESSION "RequestSession", All, "sessions", "Request a session of a workspace"),
        route!(GET "/api/v1/sessions" => SESSION "ListSessions", NoBody, "sessions", "The caller's sessions (anyone's with sessions.view)"),
        route!(POST "/api/v1/sessions/go" => SESSION "GoSession", All, "sessions", "Resume or start the caller's default workspace"),
        route!(GET "/api/v1/sessions/{session_id}" => SESSION "GetSession", NoBody, "sessions", "A session"),
        route!(GET "/api/v1/sessions/{session_id}/watch" => SESSION "WatchSession", NoBody, "sessions", "A session now and every change after (Server-Sent Events, or WebSocket)", serve Serve::Stream),
        route!(POST "/api/v1/sessions/{session_id}/keepalive" => SESSION "Keepalive", NoBody, "sessions", "Keep a session alive"),
        route!(POST "/api/v1/sessions/{session_id}/pause" => SESSION "Pause", NoBody, "sessions", "Pause a session"),
        route!(POST "/api/v1/sessions/{session_id}/stop" => SESSION "Stop", NoBody, "sessions", "Stop a session"),
        route!(POST "/api/v1/sessions/{session_id}/resume" => SESSION "Resume", NoBody, "sessions", "Resume a paused or stopped session"),
        route!(DELETE "/api/v1/sessions/{session_id}" => SESSION "Delete", NoBody, "sessions", "Delete a session"),
        route!(POST "/api/v1/sessions/{session_id}/force-delete" => SESSION "ForceDelete", NoBody, "sessions", "Mark a session deleted whatever the agent says (sessions.delete)"),
        route!(POST "/api/v1/sessions/{session_id}/exec" => SESSION "Exec", All, "sessions", "Run a workspace hook or (administrators) a command in a session"),
        route!(GET "/api/v1/sessions/{session_id}/explain" => SESSION "ExplainSession", NoBody, "sessions", "Why a session is alive and how it ends"),
        route!(GET "/api/v1/placement" => SESSION "ExplainPlacement", NoBody, "sessions", "Where a launch would be placed, and why each agent was or was not chosen"),
        // Agents.
        route!(GET "/api/v1/agents" => SESSION "ListAgents", NoBody, "agents", "Agents alive by heartbeat: state, capacity, allocation, sessions (agents.view)"),
        route!(POST "/api/v1/agents/{agent_id}/drain" => SESSION "DrainAgent", All, "agents", "Drain an agent: no new sessions, stop when empty or at the deadline (agents.modify)"),
        // Usage.
        route!(GET "/api/v1/usage/{user_id}" => USAGE "GetUsage", NoBody, "usage", "A user's usage (own, or reports.view)"),
        route!(GET "/api/v1/usage-report" => USAGE "UsageReport", NoBody, "usage", "Usage and costs by user, group, workspace or zone (reports.view)"),
        route!(GET "/api/v1/workspace-rates" => USAGE "ListWorkspaceRates", NoBody, "usage", "Hourly rates per workspace"),
        route!(PUT "/api/v1/workspace-rates/{workspace_id}" => USAGE "SetWorkspaceRate", All, "usage", "Set a workspace's hourly rate (billing.modify)"),
        route!(DELETE "/api/v1/workspace-rates/{workspace_id}" => USAGE "DeleteWorkspaceRate", NoBody, "usage", "Remove a workspace's rate (billing.modify)"),
        // Users.
        route!(GET "/api/v1/users" => IDENTITY "ListUsers", NoBody, "users", "Users, filtered and paged"),
        route!(POST "/api/v1/users" => IDENTITY "CreateUser", All, "users", "Create a user"),
        route!(GET "/api/v1/users/{user_id}" => IDENTITY "GetUser", NoBody, "users", "A user"),
        route!(PATCH "/api/v1/users/{user_id}" => IDENTITY "UpdateUser", All, "users", "Change a user's properties (lock, disable, force reset…)"),
        route!(DELETE "/api/v1/users/{user_id}" => IDENTITY "DeleteUser", NoBody, "users", "Delete a user"),
        route!(POST "/api/v1/users/{user_id}/password" => IDENTITY "SetPassword", All, "users", "Set a user's password"),
        route!(POST "/api/v1/users/{user_id}/reset-2fa" => IDENTITY "ResetTwoFactor", NoBody, "users", "Reset a user's two-factor enrolment"),
        route!(POST "/api/v1/users/{user_id}/logout" => IDENTITY "LogoutEverywhere", NoBody, "users", "End all of a user's login sessions"),
        route!(GET "/api/v1/users/{user_id}/settings" => IDENTITY "GetUserSettings", NoBody, "users", "A user's user settings"),
        route!(PATCH "/api/v1/users/{user_id}/settings" => IDENTITY "UpdateUserSettings", All, "users", "Change a user's user settings"),
        route!(GET "/api/v1/users/{user_id}/ssh-key" => IDENTITY "GetSshKey", NoBody, "users", "A user's SSH key"),
        route!(GET "/api/v1/users/{user_id}/groups" => POLICY "ListUserGroups", NoBody, "users", "The groups a user belongs to"),
        route!(GET "/api/v1/users/{user_id}/policy" => POLICY "ResolveEffectivePolicy", NoBody, "users", "A user's effective settings"),
        route!(GET "/api/v1/users/{user_id}/policy/explain" => POLICY "ExplainEffectivePolicy", NoBody, "users", "Which group supplied each of a user's effective settings"),
        route!(GET "/api/v1/users/{user_id}/permissions" => POLICY "GetEffectivePermissions", NoBody, "users", "A user's effective permissions"),
        route!(GET "/api/v1/users/{user_id}/workspaces" => POLICY "ListLaunchableWorkspaces", NoBody, "users", "The workspaces a user may launch"),
        // Groups, members, settings, permissions.
        route!(GET "/api/v1/groups" => POLICY "ListGroups", NoBody, "groups", "Groups"),
        route!(POST "/api/v1/groups" => POLICY "CreateGroup", All, "groups", "Create a group"),
        route!(GET "/api/v1/groups/{group_id}" => POLICY "GetGroup", NoBody, "groups", "A group"),
        route!(PATCH "/api/v1/groups/{group_id}" => POLICY "UpdateGroup", All, "groups", "Change a group's name, description or priority"),
        route!(DELETE "/api/v1/groups/{group_id}" => POLICY "DeleteGroup", NoBody, "groups", "Delete a group"),
        route!(GET "/api/v1/groups/{group_id}/members" => POLICY "ListGroupMembers", NoBody, "groups", "A group's members"),
        route!(PUT "/api/v1/groups/{group_id}/members/{user_id}" => POLICY "AddGroupMember", NoBody, "groups", "Add a user to a group"),
        route!(DELETE "/api/v1/groups/{group_id}/members/{user_id}" => POLICY "RemoveGroupMember", NoBody, "groups", "Remove a user from a group"),
        route!(GET "/api/v1/groups/{group_id}/settings" => POLICY "ListGroupSettings", NoBody, "settings", "A group's settings"),
        route!(PUT "/api/v1/groups/{group_id}/settings/{name}" => POLICY "SetGroupSetting", All, "settings", "Set a group setting (value, or raw_value as text)"),
        route!(DELETE "/api/v1/groups/{group_id}/settings/{name}" => POLICY "UnsetGroupSetting", NoBody, "settings", "Unset a group setting"),
        route!(GET "/api/v1/groups/{group_id}/permissions" => POLICY "ListGroupPermissions", NoBody, "permissions", "A group's permissions"),
        route!(PUT "/api/v1/groups/{group_id}/permissions/{permission}" => POLICY "GrantPermission", NoBody, "permissions", "Grant a permission to a group"),
        route!(DELETE "/api/v1/groups/{group_id}/permissions/{permission}" => POLICY "RevokePermission", NoBody, "permissions", "Revoke a permission from a group"),
        route!(PUT "/api/v1/groups/{group_id}/workspaces/{workspace_id}" => POLICY "AssignWorkspace", NoBody, "workspaces", "Let a group launch a workspace"),
        route!(DELETE "/api/v1/groups/{group_id}/workspaces/{workspace_id}" => POLICY "UnassignWorkspace", NoBody, "workspaces", "Stop a group launching a workspace"),
        route!(GET "/api/v1/setting-definitions" => POLICY "ListSettingDefinitions", NoBody, "settings", "Every group setting: type, default, description"),
        route!(GET "/api/v1/permission-definitions" => POLICY "ListPermissionDefinitions", NoBody, "permissions", "Every permission and what it allows"),
        // Workspaces.
        route!(GET "/api/v1/workspaces" => POLICY "ListWorkspaces", NoBody, "workspaces", "Every workspace (workspaces.view)"),
        route!(POST "/api/v1/workspaces" => POLICY "CreateWorkspace", All, "workspaces", "Create a workspace"),
        route!(GET "/api/v1/workspaces/{workspace_id}" => POLICY "GetWorkspace", NoBody, "workspaces", "A workspace"),
        route!(PUT "/api/v1/workspaces/{workspace_id}" => POLICY "UpdateWorkspace", Field("workspace"), "workspaces", "Replace a workspace's fields", bind &[("workspace_id", "workspace.id")]),
        route!(DELETE "/api/v1/workspaces/{workspace_id}" => POLICY "DeleteWorkspace", NoBody, "workspaces", "Delete a workspace"),
        // Zones.
        route!(GET "/api/v1/zones" => POLICY "ListZones", NoBody, "zones", "Zones"),
        route!(POST "/api/v1/zones" => POLICY "CreateZone", All, "zones", "Create a zone"),
        route!(PUT "/api/v1/zones/{zone_id}" => POLICY "UpdateZone", All, "zones", "Change a zone", bind &[("zone_id", "id")]),
        route!(DELETE "/api/v1/zones/{zone_id}" => POLICY "DeleteZone", NoBody, "zones", "Delete a zone"),
        // File mappings.
        route!(GET "/api/v1/file-mappings" => POLICY "ListFileMappings", NoBody, "file-mappings", "File mappings of a user, group or workspace"),
        route!(POST "/api/v1/file-mappings" => POLICY "CreateFileMapping", All, "file-mappings", "Create a file mapping"),
        route!(PUT "/api/v1/file-mappings/{mapping_id}" => POLICY "UpdateFileMapping", All, "file-mappings", "Change a file mapping", bind &[("mapping_id", "id")]),
        route!(DELETE "/api/v1/file-mappings/{mapping_id}" => POLICY "DeleteFileMapping", NoBody, "file-mappings", "Delete a file mapping", bind &[("mapping_id", "id")]),
        // SSO group mappings.
        route!(GET "/api/v1/sso-mappings" => POLICY "ListSsoGroupMappings", NoBody, "sso", "SSO group mappings"),
        route!(POST "/api/v1/sso-mappings" => POLICY "CreateSsoGroupMapping", All, "sso", "Map an SSO group attribute to a group"),
        route!(DELETE "/api/v1/sso-mappings/{mapping_id}" => POLICY "DeleteSsoGroupMapping", NoBody, "sso", "Delete an SSO group mapping", bind &[("mapping_id", "id")]),
        // API keys and signing keys.
        route!(GET "/api/v1/api-keys" => IDENTITY "ListApiKeys", NoBody, "api-keys", "API keys (api_keys.manage)"),
        route!(POST "/api/v1/api-keys" => IDENTITY "CreateApiKey", All, "api-keys", "Create an API key; its secret is shown once"),
        route!(DELETE "/api/v1/api-keys/{key_id}" => IDENTITY "RevokeApiKey", NoBody, "api-keys", "Revoke an API key", bind &[("key_id", "id")]),
        route!(POST "/api/v1/signing-keys/rotate" => IDENTITY "RotateSigningKey", NoBody, "api-keys", "Rotate identity's token signing key (signing_keys.manage)"),
        // Audit.
        route!(GET "/api/v1/audit/identity" => IDENTITY "ListAuditEvents", NoBody, "audit", "Identity's audit trail: users, logins, keys"),
        route!(GET "/api/v1/audit/policy" => POLICY "ListAuditEvents", NoBody, "audit", "Policy's audit trail: groups, settings, workspaces"),
    ]
});

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::rest::transcode::method;

    #[test]
    fn every_route_names_a_real_rpc_and_real_fields() {
        let mut seen = HashSet::new();
        for route in ROUTES.iter() {
            assert!(
                seen.insert((route.method.clone(), route.path)),
                "{} {} twice",
                route.method,
                route.path
            );
            let m = method(route.rpc).unwrap_or_else(|| panic!("{}: no such rpc", route.rpc));
            assert_eq!(
                m.is_server_streaming(),
                route.serve == Serve::Stream,
                "{}",
                route.path
            );
            for param in route.params() {
                let field = route.field_of(param);
                let mut desc = m.input();
                let mut parts = field.split('.').peekable();
                while let Some(part) = parts.next() {
                    let f = desc.get_field_by_name(part).unwrap_or_else(|| {
                        panic!("{}: {field} not in {}", route.path, desc.full_name())
                    });
                    if parts.peek().is_some() {
                        match f.kind() {
                            prost_reflect::Kind::Message(d) => desc = d,
                            _ => panic!("{}: {field} is not a message path", route.path),
                        }
                    }
                }
            }
            if let Body::Field(name) = route.body {
                let f = m.input().get_field_by_name(name).expect("body field");
                assert!(matches!(f.kind(), prost_reflect::Kind::Message(_)));
            }
            assert!(route.path.starts_with("/api/v1/"));
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let all: HashSet<String> = ROUTES
            .iter()
            .map(crate::rest::openapi::operation_id)
            .collect();
        assert_eq!(all.len(), ROUTES.len());
    }
}
