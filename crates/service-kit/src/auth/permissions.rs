//! Permission names, shared by API keys and (with policy) groups. The catalogue is owned by the
//! policy service; these are the names identity's own API checks.

pub const USERS_VIEW: &str = "users.view";
pub const USERS_CREATE: &str = "users.create";
pub const USERS_MODIFY: &str = "users.modify";
pub const USERS_DELETE: &str = "users.delete";
pub const USERS_AUTH_SESSION: &str = "users.auth_session";
pub const API_KEYS_MANAGE: &str = "api_keys.manage";
pub const AUDIT_VIEW: &str = "audit.view";
pub const SIGNING_KEYS_MANAGE: &str = "signing_keys.manage";

/// Every permission identity knows; API keys may only carry names from this list.
pub const IDENTITY_PERMISSIONS: &[&str] = &[
    USERS_VIEW,
    USERS_CREATE,
    USERS_MODIFY,
    USERS_DELETE,
    USERS_AUTH_SESSION,
    API_KEYS_MANAGE,
    AUDIT_VIEW,
    SIGNING_KEYS_MANAGE,
];

/// Whether a permission only reads (allowed for read-only API keys).
pub fn is_read_only(permission: &str) -> bool {
    permission.ends_with(".view")
}
