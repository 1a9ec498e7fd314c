//! The permission catalogue: every admin action in Atrium has a name here. Groups are granted
//! permissions in the policy service (the `administrator` setting grants all); API keys carry
//! names from the same list. Each service checks the names its own API needs.

pub const USERS_VIEW: &str = "users.view";
pub const USERS_CREATE: &str = "users.create";
pub const USERS_MODIFY: &str = "users.modify";
pub const USERS_DELETE: &str = "users.delete";
pub const USERS_AUTH_SESSION: &str = "users.auth_session";
pub const GROUPS_VIEW: &str = "groups.view";
pub const GROUPS_CREATE: &str = "groups.create";
pub const GROUPS_MODIFY: &str = "groups.modify";
pub const GROUPS_DELETE: &str = "groups.delete";
pub const SETTINGS_VIEW: &str = "settings.view";
pub const SETTINGS_MODIFY: &str = "settings.modify";
pub const WORKSPACES_VIEW: &str = "workspaces.view";
pub const WORKSPACES_CREATE: &str = "workspaces.create";
pub const WORKSPACES_MODIFY: &str = "workspaces.modify";
pub const WORKSPACES_DELETE: &str = "workspaces.delete";
pub const ZONES_VIEW: &str = "zones.view";
pub const ZONES_MODIFY: &str = "zones.modify";
pub const FILE_MAPPINGS_VIEW: &str = "file_mappings.view";
pub const FILE_MAPPINGS_MODIFY: &str = "file_mappings.modify";
pub const SSO_VIEW: &str = "sso.view";
pub const SSO_MODIFY: &str = "sso.modify";
pub const SESSIONS_VIEW: &str = "sessions.view";
pub const SESSIONS_MODIFY: &str = "sessions.modify";
pub const SESSIONS_DELETE: &str = "sessions.delete";
pub const SESSIONS_EXEC: &str = "sessions.exec";
pub const AGENTS_VIEW: &str = "agents.view";
pub const AGENTS_MODIFY: &str = "agents.modify";
pub const API_KEYS_MANAGE: &str = "api_keys.manage";
pub const AUDIT_VIEW: &str = "audit.view";
pub const REPORTS_VIEW: &str = "reports.view";
pub const BILLING_MODIFY: &str = "billing.modify";
pub const SIGNING_KEYS_MANAGE: &str = "signing_keys.manage";

/// Every permission, with what it allows.
pub const CATALOGUE: &[(&str, &str)] = &[
    (USERS_VIEW, "see users and their settings"),
    (USERS_CREATE, "create users"),
    (
        USERS_MODIFY,
        "change users: profile, lock, disable, passwords, 2FA reset, SSH keys",
    ),
    (USERS_DELETE, "delete users"),
    (
        USERS_AUTH_SESSION,
        "end users' login sessions and act for users (Developer API)",
    ),
    (GROUPS_VIEW, "see groups, members and permissions"),
    (GROUPS_CREATE, "create groups"),
    (
        GROUPS_MODIFY,
        "change groups, memberships and permission grants",
    ),
    (GROUPS_DELETE, "delete groups"),
    (
        SETTINGS_VIEW,
        "see group settings and anyone's effective policy",
    ),
    (SETTINGS_MODIFY, "set and unset group settings"),
    (WORKSPACES_VIEW, "see every workspace"),
    (WORKSPACES_CREATE, "create workspaces"),
    (
        WORKSPACES_MODIFY,
        "change workspaces and their group assignments",
    ),
    (WORKSPACES_DELETE, "delete workspaces"),
    (ZONES_VIEW, "see zones"),
    (ZONES_MODIFY, "create, change and delete zones"),
    (FILE_MAPPINGS_VIEW, "see file mappings"),
    (
        FILE_MAPPINGS_MODIFY,
        "create, change and delete file mappings",
    ),
    (SSO_VIEW, "see SSO group mappings"),
    (SSO_MODIFY, "change SSO group mappings"),
    (SESSIONS_VIEW, "see every session"),
    (SESSIONS_MODIFY, "stop, pause and resume anyone's sessions"),
    (SESSIONS_DELETE, "delete anyone's sessions"),
    (
        SESSIONS_EXEC,
        "run commands (not privileged) in sessions it may modify (Developer API exec_command_kasm)",
    ),
    (AGENTS_VIEW, "see agents and their capacity"),
    (AGENTS_MODIFY, "drain and configure agents"),
    (API_KEYS_MANAGE, "create, list and revoke API keys"),
    (AUDIT_VIEW, "read the audit trail"),
    (REPORTS_VIEW, "read anyone's usage and the usage reports"),
    (BILLING_MODIFY, "set the cost rates of workspaces"),
    (SIGNING_KEYS_MANAGE, "rotate token-signing keys"),
];

/// Every permission name.
pub fn all() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|(name, _)| *name)
}

pub fn is_known(name: &str) -> bool {
    all().any(|p| p == name)
}

/// Whether a permission only reads (allowed for read-only API keys).
pub fn is_read_only(permission: &str) -> bool {
    permission.ends_with(".view")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_unique() {
        let mut names: Vec<&str> = all().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
    }
}
