//! Key usage (calls, last use), counted in memory per request and flushed to the store about
//! once a second, so authenticating a request never waits on a write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use charter_store::{Store, StoreError};
use jiff::Timestamp;

/// Usage counted since the last flush.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pending: Arc<Mutex<HashMap<String, (u64, Timestamp)>>>,
}

impl Usage {
    /// Counts one call with `key_id` at `at`.
    pub fn count(&self, key_id: &str, at: Timestamp) {
        if let Ok(mut pending) = self.pending.lock() {
            // Every request counts: allocate only for a key's first call since the last flush.
            if let Some(entry) = pending.get_mut(key_id) {
                entry.0 += 1;
                entry.1 = entry.1.max(at);
            } else {
                pending.insert(key_id.to_owned(), (1, at));
            }
        }
    }

    /// Writes what was counted to the store.
    pub async fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let batch: Vec<(String, u64, Timestamp)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().map(|(k, (n, at))| (k, n, at)).collect(),
            Err(_) => return Ok(()),
        };
        let result = store.record_key_usage(&batch).await;
        if result.is_err() {
            // Counted calls are not lost to a failed write: they wait for the next flush.
            if let Ok(mut pending) = self.pending.lock() {
                for (key, n, at) in batch {
                    let entry = pending.entry(key).or_insert((0, at));
                    entry.0 += n;
                    entry.1 = entry.1.max(at);
                }
            }
        }
        result
    }
}
