//! Open violation streams per key: a key holds at most [`Streams::max_per_key`] at once (the
//! API's `/v1/violations/stream` and the workspace's live Monitor together), so one key, or one
//! leaked key, cannot hold every connection and event receiver a node has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::ApiError;

/// The default for [`Streams::max_per_key`]: a person's browser tabs and a few tailing
/// scripts.
pub const DEFAULT_STREAMS_PER_KEY: usize = 16;

/// How many streams each key holds open.
#[derive(Debug, Clone)]
pub struct Streams {
    max_per_key: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Streams {
    /// At most `max_per_key` open streams per key.
    pub fn new(max_per_key: usize) -> Streams {
        Streams {
            max_per_key,
            open: Arc::default(),
        }
    }

    /// The most streams one key holds open at once.
    pub fn max_per_key(&self) -> usize {
        self.max_per_key
    }

    /// Takes one of `key_id`'s streams until the [`Slot`] is dropped (when its stream ends or
    /// its client goes away), or refuses with 429 when the key holds all of its own.
    pub(crate) fn open(&self, key_id: &str) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(key_id.to_owned()).or_default();
        if *held >= self.max_per_key {
            return Err(ApiError::too_many(
                format!(
                    "this key already holds {} open streams, the most one key may hold",
                    self.max_per_key
                ),
                self.max_per_key,
            ));
        }
        *held += 1;
        Ok(Slot {
            key_id: key_id.to_owned(),
            open: Arc::clone(&self.open),
        })
    }
}

/// One open stream of a key, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    key_id: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.key_id) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.key_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_streams_and_gets_them_back() {
        let streams = Streams::new(2);
        let a = streams.open("key_a").unwrap();
        let _b = streams.open("key_a").unwrap();
        assert!(streams.open("key_a").is_err());
        // Another key's streams are its own.
        let _c = streams.open("key_b").unwrap();
        drop(a);
        let _d = streams.open("key_a").unwrap();
        assert!(streams.open("key_a").is_err());
    }
}
