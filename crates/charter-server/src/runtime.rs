//! The runtime: how a check of a run's action is decided, with no HTTP in it. It holds what
//! checks share: compiled policy sets by their pinned set's hash (a set is compiled once and
//! shared by every run that pins it), the running runs this node has seen, the group-commit
//! writer that settles, decides and records checks, and the live feed of committed violation
//! events that the Monitor's live stream reads (`crate::live`).
//!
//! A run's tenant, agent, start and pinned set never change, so they are kept in memory once
//! read and a check reads nothing from the database before its commit. Whether the run is still
//! running can change on another node; the writer's transaction reads that, authoritatively,
//! for every check it commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use charter_core::engine::{Decision, RunContext};
use charter_core::{Action, CompiledSet};
use charter_store::{
    ActionWriter, CheckOutcome, PendingCheck, Principal, Run, RunStatus, Store, StoreError,
};
use jiff::Timestamp;
use serde_json::Value;

use crate::live::LiveFeed;

/// The runtime part of the server's state.
#[derive(Debug, Clone)]
pub struct Runtime {
    sets: Arc<Mutex<HashMap<String, Arc<CompiledSet>>>>,
    runs: Arc<RwLock<HashMap<String, Arc<LiveRun>>>>,
    /// Settles, decides and records checks, one commit per batch.
    pub writer: ActionWriter,
    /// Violation events as they are committed, for the Monitor's live stream.
    pub(crate) live: LiveFeed,
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

/// What became of a check.
#[derive(Debug)]
pub enum Checked {
    /// Decided and recorded as the action `action_id` of the run.
    Decided {
        /// The recorded action's id.
        action_id: String,
        /// The decision, with every violated rule.
        decision: Decision,
    },
    /// The run had been halted: every later action is refused with the violations that
    /// halted it, and nothing is recorded.
    Halted {
        /// Those violations.
        halted_by: Value,
    },
}

/// A run as a check finds it.
enum Found {
    /// Running (as far as this node knows: the commit decides).
    Live(Arc<LiveRun>),
    /// Halted or ended: the check is answered from the run.
    Stopped(Box<Run>),
}

/// The most actions one group commit holds.
const MAX_BATCH: usize = 512;

/// The most compiled policy sets remembered. Every policy change makes new pinned sets: without
/// a bound a long-lived node would keep every set it ever compiled.
const MAX_SETS: usize = 1_000;

/// The most running runs remembered; past it the memory is dropped and refilled as checks
/// come (one read per run).
const MAX_LIVE_RUNS: usize = 100_000;

impl Runtime {
    /// A runtime over `store` (spawns the writer task: call inside a Tokio runtime).
    pub fn new(store: Store) -> Runtime {
        Runtime {
            sets: Arc::default(),
            runs: Arc::default(),
            writer: ActionWriter::spawn(store, MAX_BATCH),
            live: LiveFeed::default(),
        }
    }

    /// Ends every live stream of violation events: the server is shutting down.
    pub fn close_streams(&self) {
        self.live.close();
    }

    /// Checks `action` of run `run_id` for `principal` at `now` (the server's clock): evaluates
    /// it against the run's pinned set, seeds the counters it is the first to claim (outside
    /// the group commit), hands it to the group commit, which settles its claims,
    /// decides and records it, and answers once it is durable; then streams its violation
    /// events. A run that has ended is a conflict; another tenant's run is not found.
    pub async fn check(
        &self,
        store: &Store,
        principal: &Principal,
        run_id: &str,
        action: Action,
        now: Timestamp,
    ) -> Result<Checked, StoreError> {
        let run = match self.find_run(store, principal, run_id).await? {
            Found::Live(run) => run,
            Found::Stopped(run) => return stopped(run_id, run.ended_at.is_some(), run.halted_by),
        };
        // Never before the run's start, even if this node's clock is behind the one that
        // started it (or stepped back): a run's actions are found from its start on.
        let now = now.max(run.started_at);
        let ctx = RunContext {
            tenant_id: &run.tenant_id,
            agent_id: &run.agent_id,
            run_id: &run.id,
            run_started_at: run.started_at,
            now,
        };
        let evaluation = run.set.evaluate(&action, &ctx);
        let action_id = format!("evt_{}", charter_store::new_id_suffix());
        let check = PendingCheck {
            id: action_id.clone(),
            run_id: run.id.clone(),
            tenant_id: run.tenant_id.clone(),
            agent_id: run.agent_id.clone(),
            at: now,
            action,
            evaluation,
            policy_set_hash: run.policy_set_hash.clone(),
            set: Arc::clone(&run.set),
        };
        store.seed_counters(&check).await?;
        let outcome = self.writer.check(check).await?;
        match outcome {
            CheckOutcome::Decided { decision, events } => {
                if decision.outcome == charter_core::Outcome::Halt {
                    self.forget_run(run_id);
                }
                // Only committed events are streamed; nobody listening is fine.
                for event in events {
                    self.live.publish(event);
                }
                Ok(Checked::Decided {
                    action_id,
                    decision,
                })
            }
            // The run stopped (here or on another node) before this check was committed.
            CheckOutcome::Halted { halted_by } => {
                self.forget_run(run_id);
                stopped(run_id, false, Some(halted_by))
            }
            CheckOutcome::Ended => {
                self.forget_run(run_id);
                stopped(run_id, true, None)
            }
            CheckOutcome::NoRun => Err(StoreError::NotFound {
                what: format!("run {run_id}"),
            }),
        }
    }

    /// The run `id` for a check by `principal`: from memory, or read once from the store.
    async fn find_run(
        &self,
        store: &Store,
        principal: &Principal,
        id: &str,
    ) -> Result<Found, StoreError> {
        let known = self.runs.read().ok().and_then(|runs| runs.get(id).cloned());
        if let Some(live) = known {
            // Another tenant's run does not exist for this caller, as in the store.
            return if principal.sees(Some(&live.tenant_id)) {
                Ok(Found::Live(live))
            } else {
                Err(StoreError::NotFound {
                    what: format!("run {id}"),
                })
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
    async fn set_of(&self, store: &Store, run: &Run) -> Result<Arc<CompiledSet>, StoreError> {
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
                .map_err(|e| StoreError::Backend(format!("compiling the pinned set: {e}")))?,
        );
        if let Ok(mut sets) = self.sets.lock() {
            remember(&mut sets, hash, &set, MAX_SETS);
        }
        Ok(set)
    }
}

/// Keeps `value` under `key` in `cache`, which holds at most `cap` entries: when full, the
/// entries nothing else holds are dropped first, then all (a value still held elsewhere lives
/// on there; the next that needs it from the cache makes it again).
fn remember<T>(cache: &mut HashMap<String, Arc<T>>, key: &str, value: &Arc<T>, cap: usize) {
    if cache.len() >= cap && !cache.contains_key(key) {
        cache.retain(|_, kept| Arc::strong_count(kept) > 1);
        if cache.len() >= cap {
            cache.clear();
        }
    }
    cache
        .entry(key.to_owned())
        .or_insert_with(|| Arc::clone(value));
}

/// The answer to a check of a run that has stopped: a conflict once it has ended; a halted run
/// refuses every later action with the violations that halted it.
fn stopped(run_id: &str, ended: bool, halted_by: Option<Value>) -> Result<Checked, StoreError> {
    if ended {
        return Err(StoreError::Conflict {
            message: format!("run {run_id} has ended: it takes no more actions"),
            current_revision: None,
        });
    }
    Ok(Checked::Halted {
        halted_by: halted_by.unwrap_or_else(|| Value::Array(Vec::new())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_of_compiled_sets_is_bounded_and_keeps_what_runs_hold() {
        let mut cache: HashMap<String, Arc<u32>> = HashMap::new();
        let held = Arc::new(0);
        remember(&mut cache, "held", &held, 3);
        for i in 1..3 {
            remember(&mut cache, &format!("s{i}"), &Arc::new(i), 3);
        }
        assert_eq!(cache.len(), 3);
        // Full: what only the cache held goes, what a run holds stays.
        remember(&mut cache, "s3", &Arc::new(3), 3);
        let mut keys: Vec<&str> = cache.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["held", "s3"]);
        // Already there: nothing is dropped.
        remember(&mut cache, "s3", &Arc::new(3), 2);
        assert_eq!(cache.len(), 2);
        // Full of held values: all are dropped (they live on with their holders).
        let others: Vec<Arc<u32>> = (4..6).map(Arc::new).collect();
        let mut full: HashMap<String, Arc<u32>> = HashMap::new();
        for (i, other) in others.iter().enumerate() {
            remember(&mut full, &format!("o{i}"), other, 2);
        }
        remember(&mut full, "new", &Arc::new(9), 2);
        assert_eq!(full.keys().collect::<Vec<_>>(), ["new"]);
    }
}
