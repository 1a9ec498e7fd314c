//! The one delegation rule, applied by every path that grants, maps or acts on a user:
//! a caller confers only what it holds, and acts on a user only if the target's effective
//! rights are a subset of its own. Administrators hold everything (and so may act on anyone);
//! a non-administrator never acts on an administrator.
//!
//! Services build [`Rights`] for the caller and the target from policy's effective permissions
//! (users), the key's own permissions (API keys) or the service table (services); the decision
//! itself is here, pure and tested once.

use std::collections::BTreeSet;

use super::permissions;
use crate::error::ApiError;

/// What a principal may do, as far as delegation is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights {
    pub administrator: bool,
    pub permissions: BTreeSet<String>,
}

impl Rights {
    /// Everything (administrators, and Atrium's services within their call table).
    pub fn all() -> Self {
        Rights {
            administrator: true,
            permissions: permissions::all().map(str::to_owned).collect(),
        }
    }

    pub fn new(administrator: bool, permissions: impl IntoIterator<Item = String>) -> Self {
        Rights {
            administrator,
            permissions: permissions.into_iter().collect(),
        }
    }

    /// Whether this principal holds `permission`.
    pub fn holds(&self, permission: &str) -> bool {
        self.administrator || self.permissions.contains(permission)
    }

    /// The caller may confer `requested` (to an API key, a group, an SSO mapping) only if it
    /// holds every one of them; `administrator` only if it is one.
    pub fn confer<'a>(
        &self,
        requested: impl IntoIterator<Item = &'a str>,
        granting_administrator: bool,
    ) -> Result<(), ApiError> {
        if granting_administrator && !self.administrator {
            return Err(ApiError::PermissionDenied(
                "only an administrator can confer administrator rights".into(),
            ));
        }
        let missing: Vec<&str> = requested.into_iter().filter(|p| !self.holds(p)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "you can only confer permissions you hold; you lack {}",
                missing.join(", ")
            )))
        }
    }

    /// The caller may act on a user (change credentials, lock, disable, delete, reset 2FA) only
    /// if that user's rights are a subset of its own.
    pub fn act_on(&self, target: &Rights) -> Result<(), ApiError> {
        if self.administrator {
            return Ok(());
        }
        if target.administrator {
            return Err(ApiError::PermissionDenied(
                "only an administrator can act on an administrator".into(),
            ));
        }
        let missing: Vec<&str> = target
            .permissions
            .iter()
            .filter(|p| !self.permissions.contains(*p))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "this user holds permissions you lack ({}); you cannot act on them",
                missing.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rights(perms: &[&str]) -> Rights {
        Rights::new(false, perms.iter().map(|p| (*p).to_owned()))
    }

    #[test]
    fn confers_only_what_it_holds() {
        let caller = rights(&["users.view", "api_keys.manage"]);
        assert!(caller.confer(["users.view"], false).is_ok());
        let err = caller
            .confer(["users.view", "users.delete"], false)
            .expect_err("users.delete is not held");
        assert!(err.to_string().contains("users.delete"), "{err}");
        assert!(caller.confer([], true).is_err());
        assert!(Rights::all().confer(permissions::all(), true).is_ok());
    }

    #[test]
    fn acts_only_on_subsets_and_never_on_administrators() {
        let caller = rights(&["users.modify", "users.view"]);
        assert!(caller.act_on(&rights(&[])).is_ok());
        assert!(caller.act_on(&rights(&["users.view"])).is_ok());
        assert!(caller.act_on(&rights(&["users.delete"])).is_err());
        assert!(caller.act_on(&Rights::all()).is_err());
        assert!(caller.act_on(&Rights::new(true, [])).is_err());
        assert!(Rights::all().act_on(&Rights::all()).is_ok());
    }

    proptest! {
        /// Whatever a non-administrator confers or acts on is within what it holds.
        #[test]
        fn never_beyond_the_caller(
            held in proptest::sample::subsequence(permissions::all().collect::<Vec<_>>(), 0..8),
            asked in proptest::sample::subsequence(permissions::all().collect::<Vec<_>>(), 0..8),
        ) {
            let caller = rights(&held);
            let target = rights(&asked);
            let subset = asked.iter().all(|p| held.contains(p));
            prop_assert_eq!(caller.confer(asked.iter().copied(), false).is_ok(), subset);
            prop_assert_eq!(caller.act_on(&target).is_ok(), subset);
        }
    }
}
