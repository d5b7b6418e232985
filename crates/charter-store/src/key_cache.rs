//! Authenticated keys kept in memory, for a store that only this process writes (SQLite, whose
//! data directory is locked by the process that opened it). Every request authenticates, and a
//! database read per request was the largest cost of a check. A revocation made through the
//! store clears the cache in the same call, so it still takes effect at once. Only keys found
//! live are kept: an unknown secret is looked up every time.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::ApiKey;

/// The most keys kept; past it the cache starts over.
const MAX_KEYS: usize = 10_000;

/// Live keys by the hash of their secret.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: HashMap<String, ApiKey>,
    /// Bumped by every clear: a lookup that started before a revocation must not put back
    /// what the revocation removed.
    generation: u64,
}

impl KeyCache {
    /// The cached key for `hash`, or the generation to pass to [`KeyCache::put`] after reading
    /// the database.
    pub(crate) fn get(&self, hash: &str) -> Result<ApiKey, u64> {
        match self.inner.lock() {
            Ok(inner) => inner.keys.get(hash).cloned().ok_or(inner.generation),
            // A poisoned cache is bypassed (and never filled): the database answers.
            Err(_) => Err(u64::MAX),
        }
    }

    /// Keeps `key`, read live from the database, unless the cache was cleared since the read
    /// began (`generation`).
    pub(crate) fn put(&self, hash: String, key: &ApiKey, generation: u64) {
        if let Ok(mut inner) = self.inner.lock()
            && inner.generation == generation
        {
            if inner.keys.len() >= MAX_KEYS {
                inner.keys.clear();
            }
            inner.keys.insert(hash, key.clone());
        }
    }

    /// Forgets every key (a key was revoked).
    pub(crate) fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.keys.clear();
            inner.generation = inner.generation.wrapping_add(1);
        }
    }
}

/// Clears a cache when dropped: a revocation clears the cache even when its caller stops
/// waiting (a dropped request) after the database has committed it.
pub(crate) struct ClearOnDrop<'a>(pub(crate) Option<&'a KeyCache>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.0 {
            cache.clear();
        }
    }
}
