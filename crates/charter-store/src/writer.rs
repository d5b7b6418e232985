//! The group-commit writer: many concurrent checks hand their evaluated action to one task,
//! which settles, decides and records whatever has queued up in one transaction and then
//! answers each. A check is answered only after its commit, and a busy server pays one commit
//! per batch, not per check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::runs::{CheckBatch, CheckOutcome, PendingCheck};
use crate::{Result, Store};

type Pending = (PendingCheck, oneshot::Sender<Result<CheckOutcome>>);

/// A handle for recording actions through the group-commit task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ActionWriter {
    queue: mpsc::Sender<Pending>,
    stats: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    records: AtomicU64,
}

/// How the writer has batched so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Commits made.
    pub batches: u64,
    /// Checks committed.
    pub records: u64,
}

impl ActionWriter {
    /// Starts the writer task over `store`, committing at most `max_batch` actions at once.
    /// The task ends when every handle is dropped, after committing what was queued.
    pub fn spawn(store: Store, max_batch: usize) -> ActionWriter {
        let max_batch = max_batch.max(1);
        let (queue, mut rx) = mpsc::channel::<Pending>(max_batch.saturating_mul(4));
        let stats = Arc::new(Counters::default());
        let counters = Arc::clone(&stats);
        tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                // Whatever queued while the previous commit ran joins this one.
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (checks, acks): (Vec<PendingCheck>, Vec<_>) = batch.drain(..).unzip();
                let size = checks.len() as u64;
                let outcomes = commit(&store, CheckBatch::new(checks)).await;
                counters.batches.fetch_add(1, Ordering::Relaxed);
                counters.records.fetch_add(size, Ordering::Relaxed);
                // A check that gave up waiting has nobody to tell.
                for (ack, outcome) in acks.into_iter().zip(outcomes) {
                    let _ = ack.send(outcome);
                }
            }
        });
        ActionWriter { queue, stats }
    }

    /// Settles, decides and records one check; returns its outcome once it is durably
    /// committed (or the commit failed).
    pub async fn check(&self, check: PendingCheck) -> Result<CheckOutcome> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send((check, ack))
            .await
            .map_err(|_| StoreError::Backend("the action writer has stopped".into()))?;
        done.await
            .map_err(|_| StoreError::Backend("the action writer has stopped".into()))?
    }

    /// Commits and actions so far (for metrics and benchmarks).
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.stats.batches.load(Ordering::Relaxed),
            records: self.stats.records.load(Ordering::Relaxed),
        }
    }
}

/// Commits `checks` in one transaction, one outcome each. If that fails, each check is committed
/// alone, in order, so a check that cannot be committed (or a transient failure) fails only
/// itself, not the checks that happened to share its batch; a database out of reach fails them
/// all. Retrying is safe: a failed
/// transaction changed nothing, and one whose commit was acknowledged but reported as failed
/// (a connection lost at the last moment) makes the retry fail on the actions' primary keys
/// instead of recording or spending twice.
async fn commit(store: &Store, checks: CheckBatch) -> Vec<Result<CheckOutcome>> {
    let error = match guarded(store, checks.clone()).await {
        Ok(outcomes) if outcomes.len() == checks.len() => {
            return outcomes.into_iter().map(Ok).collect();
        }
        Ok(outcomes) => StoreError::Backend(format!(
            "a commit of {} checks answered {} outcomes",
            checks.len(),
            outcomes.len()
        )),
        Err(e) => e,
    };
    // A database out of reach fails every check alike, and one by one each would wait for a
    // connection again: all are refused at once.
    if checks.len() == 1 || matches!(error, StoreError::Unavailable(_)) {
        return vec![Err(error); checks.len()];
    }
    tracing::warn!(%error, checks = checks.len(), "a group commit failed: committing its checks one by one");
    let mut outcomes = Vec::with_capacity(checks.len());
    for i in 0..checks.len() {
        outcomes.push(match guarded(store, checks.one(i)).await {
            Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
            Ok(_) => Err(StoreError::Backend(
                "a commit of one check answered no outcome".into(),
            )),
            Err(e) => Err(e),
        });
    }
    outcomes
}

/// Commits `checks` in a task of its own, so a panic while committing fails these checks and
/// leaves the writer running.
async fn guarded(store: &Store, checks: CheckBatch) -> Result<Vec<CheckOutcome>> {
    let store = store.clone();
    tokio::spawn(async move { store.commit_checks(checks).await })
        .await
        .map_err(|e| StoreError::Backend(format!("committing checks: {e}")))?
}
