//! The set of public keys that verify access tokens. Identity updates it when it rotates keys;
//! other services fill it from identity's `GetVerificationKeys` and refresh on an unknown key id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ed25519_dalek::VerifyingKey;

/// One verification key.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub kid: String,
    pub key: VerifyingKey,
    /// Unix seconds after which tokens signed by this key are refused (retired keys).
    pub valid_until: Option<i64>,
}

/// A cheaply clonable, shared, read-mostly map from key id to key.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    inner: Arc<RwLock<HashMap<String, Arc<KeyEntry>>>>,
    generation: Arc<AtomicU64>,
}

impl KeySet {
    /// Changes whenever the set is replaced (caches of verified tokens key on it).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, kid: &str) -> Option<Arc<KeyEntry>> {
        let map = self
            .inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(kid).cloned()
    }

    /// Replaces the whole set.
    pub fn replace(&self, keys: Vec<KeyEntry>) {
        let map = keys
            .into_iter()
            .map(|k| (k.kid.clone(), Arc::new(k)))
            .collect();
        *self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = map;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
