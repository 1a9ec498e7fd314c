//! Revoked login sessions, for services that verify access tokens locally. Identity writes a
//! revocation whenever a user's access must end at once (lock, disable, delete, logout, a new
//! password, a forced reset); every service holds the live set, fed by identity's
//! `WatchRevocations` stream (or, inside identity, by its own database), and the
//! [`Authenticator`](super::Authenticator) refuses tokens of a revoked session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The shared set of revoked login sessions. Cheap to clone; lookups take a read lock.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    /// Login session id → Unix seconds after which the entry may be forgotten.
    sessions: Arc<RwLock<HashMap<String, i64>>>,
    /// The feed's cursor: the last revocation applied.
    cursor: Arc<AtomicU64>,
}

impl Revocations {
    /// Refuses every token of `login_session_id` until `forget_after` (Unix seconds).
    pub fn revoke(&self, login_session_id: &str, forget_after: i64) {
        let mut map = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(login_session_id.to_owned())
            .or_insert(forget_after);
        *entry = (*entry).max(forget_after);
    }

    pub fn is_revoked(&self, login_session_id: &str) -> bool {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(login_session_id)
    }

    /// Drops entries whose tokens have all expired anyway.
    pub fn prune(&self, now: i64) {
        self.sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, forget_after| *forget_after > now);
    }

    pub fn len(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last revocation applied from the feed (0: none yet).
    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// Records that the feed has been applied up to `cursor`.
    pub fn advance(&self, cursor: u64) {
        self.cursor.fetch_max(cursor, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_until_pruned_after_its_deadline() {
        let set = Revocations::default();
        set.revoke("s1", 100);
        set.revoke("s1", 50); // an older entry never shortens it
        set.revoke("s2", 10);
        assert!(set.is_revoked("s1") && set.is_revoked("s2"));
        assert!(!set.is_revoked("s3"));
        set.prune(50);
        assert!(set.is_revoked("s1"));
        assert!(!set.is_revoked("s2"));
        set.prune(100);
        assert!(set.is_empty());
    }

    #[test]
    fn the_cursor_only_moves_forward() {
        let set = Revocations::default();
        set.advance(5);
        set.advance(3);
        assert_eq!(set.cursor(), 5);
    }
}
