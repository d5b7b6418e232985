//! What checks share: compiled policy sets by their pinned set's hash (a set is compiled once
//! and shared by every run that pins it), the running runs this node has seen, and the
//! group-commit writer that settles, decides and records checks.
//!
//! A run's tenant, agent, start and pinned set never change, so they are kept in memory once
//! read and a check reads nothing from the database before its commit. Whether the run is still
//! running can change on another node; the writer's transaction reads that, authoritatively,
//! for every check it commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use charter_core::CompiledSet;
use charter_store::{ActionWriter, Principal, Run, RunStatus, Store, ViolationEvent};
use jiff::Timestamp;
use tokio::sync::broadcast;

use crate::error::ApiError;

/// The runtime part of the server's state.
#[derive(Debug, Clone)]
pub struct Runtime {
    sets: Arc<Mutex<HashMap<String, Arc<CompiledSet>>>>,
    runs: Arc<RwLock<HashMap<String, Arc<LiveRun>>>>,
    /// Settles, decides and records checks, one commit per batch.
    pub writer: ActionWriter,
    /// Violation events as they are committed, for the Monitor's live stream.
    pub events: broadcast::Sender<Arc<ViolationEvent>>,
}

/// What a check needs of a running run: the facts fixed at its start.
#[derive(Debug)]
pub(crate) struct LiveRun {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) agent_id: String,
    pub(crate) started_at: Timestamp,
    pub(crate) policy_set_hash: String,
    pub(crate) set: Arc<CompiledSet>,
}

/// A run as a check finds it.
pub(crate) enum Found {
    /// Running (as far as this node knows: the commit decides).
    Live(Arc<LiveRun>),
    /// Halted or ended: the check is answered from the run.
    Stopped(Box<Run>),
}

/// The most actions one group commit holds.
const MAX_BATCH: usize = 512;

/// The most running runs remembered; past it the memory is dropped and refilled as checks
/// come (one read per run).
const MAX_LIVE_RUNS: usize = 100_000;

impl Runtime {
    /// A runtime over `store` (spawns the writer task: call inside a Tokio runtime).
    pub fn new<S: Store + Clone>(store: S) -> Runtime {
        Runtime {
            sets: Arc::default(),
            runs: Arc::default(),
            writer: ActionWriter::spawn(store, MAX_BATCH),
            // A subscriber more than this many events behind misses the oldest (it is told).
            events: broadcast::channel(4_096).0,
        }
    }

    /// The run `id` for a check by `principal`: from memory, or read once from the store.
    pub(crate) async fn find_run<S: Store>(
        &self,
        store: &S,
        principal: &Principal,
        id: &str,
    ) -> Result<Found, ApiError> {
        let known = self.runs.read().ok().and_then(|runs| runs.get(id).cloned());
        if let Some(live) = known {
            // Another tenant's run does not exist for this caller, as in the store.
            return if principal.sees(Some(&live.tenant_id)) {
                Ok(Found::Live(live))
            } else {
                Err(ApiError::not_found(format!("run {id}")))
            };
        }
        let run = store.get_run(principal, id).await?;
        if run.ended_at.is_some() || run.status != RunStatus::Running {
            return Ok(Found::Stopped(Box::new(run)));
        }
        let set = self.set_of(store, &run).await?;
        let live = Arc::new(LiveRun {
            id: run.id,
            tenant_id: run.tenant_id,
            agent_id: run.agent_id,
            started_at: run.started_at,
            policy_set_hash: run.policy_set.hash,
            set,
        });
        if let Ok(mut runs) = self.runs.write() {
            if runs.len() >= MAX_LIVE_RUNS {
                runs.clear();
            }
            runs.insert(live.id.clone(), Arc::clone(&live));
        }
        Ok(Found::Live(live))
    }

    /// Forgets a run that has stopped, so its next check reads it and is answered at once.
    pub(crate) fn forget_run(&self, id: &str) {
        if let Ok(mut runs) = self.runs.write() {
            runs.remove(id);
        }
    }

    /// The compiled set a run pinned: from the cache, or compiled from the store once.
    async fn set_of<S: Store>(&self, store: &S, run: &Run) -> Result<Arc<CompiledSet>, ApiError> {
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
