//! What checks share: compiled policy sets by their pinned set's hash (a set is compiled once
//! and shared by every run that pins it) and the group-commit action writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use charter_core::CompiledSet;
use charter_store::{ActionWriter, Run, Store, ViolationEvent};
use tokio::sync::broadcast;

use crate::error::ApiError;

/// The runtime part of the server's state.
#[derive(Debug, Clone)]
pub struct Runtime {
    sets: Arc<Mutex<HashMap<String, Arc<CompiledSet>>>>,
    /// Records checked actions, one commit per batch.
    pub writer: ActionWriter,
    /// Violation events as they are committed, for the Monitor's live stream.
    pub events: broadcast::Sender<Arc<ViolationEvent>>,
}

/// The most actions one group commit holds.
const MAX_BATCH: usize = 512;

impl Runtime {
    /// A runtime over `store` (spawns the writer task: call inside a Tokio runtime).
    pub fn new<S: Store + Clone>(store: S) -> Runtime {
        Runtime {
            sets: Arc::default(),
            writer: ActionWriter::spawn(store, MAX_BATCH),
            // A subscriber more than this many events behind misses the oldest (it is told).
            events: broadcast::channel(4_096).0,
        }
    }

    /// The compiled set a run pinned: from the cache, or compiled from the store once.
    pub(crate) async fn set_of<S: Store>(
        &self,
        store: &S,
        run: &Run,
    ) -> Result<Arc<CompiledSet>, ApiError> {
        let hash = &run.policy_set.hash;
        if let Some(set) = self
            .sets
            .lock()
            .ok()
            .and_then(|sets| sets.get(hash).cloned())
        {
            return Ok(set);
        }
        let policies = store.pinned_policies(run).await?;
        let set = Arc::new(
            CompiledSet::compile(&policies)
                .map_err(|e| ApiError::internal(&format!("compiling the pinned set: {e}")))?,
        );
        if let Ok(mut sets) = self.sets.lock() {
            sets.entry(hash.clone()).or_insert_with(|| Arc::clone(&set));
        }
        Ok(set)
    }
}
