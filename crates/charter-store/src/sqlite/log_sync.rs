//! Syncs the write-ahead log in the background, so the syncs the writer must wait for find
//! little left to write.
//!
//! With `synchronous=NORMAL` a commit writes its frames into the log without syncing it. The
//! log is synced when a checkpoint copies it, and one checkpoint runs on the writer between two
//! commits while every waiting check waits with it: the one that lets the log restart (see
//! `checkpoints`). That sync wrote out everything committed since the previous one, tens of
//! milliseconds of commits at full load, and was most of the checks' latency tail (measured
//! with `scripts/bench-checks`: the share of checks the server took over 25 ms fell from
//! 0.52–0.64% to 0.04–0.33% with the log synced every 2 ms, docs/benchmarks.md). Only with
//! `synchronous=NORMAL`: with `FULL` every commit syncs the log itself.
//!
//! Extra syncs never weaken durability. Only the log is synced here, never the database file:
//! SQLite holds POSIX locks on the database file, and closing any descriptor of a file releases
//! every such lock the process holds on it. The log carries no locks (the WAL's are on its
//! `-shm` index), so each round opens and closes its own descriptor.

use std::fs::File;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Between two syncs while commits arrive: short enough that a sync has little to write.
const BUSY: Duration = Duration::from_millis(2);
/// How often an idle log is looked at (and how soon the thread ends after its store).
const IDLE: Duration = Duration::from_millis(20);

/// The running thread (what tests look at: it needs no handling to end).
#[derive(Debug)]
#[cfg_attr(not(test), expect(dead_code, reason = "read by tests only"))]
pub(crate) struct LogSync {
    /// The log it syncs.
    pub(crate) wal: PathBuf,
    /// Ends once the writer's count of commits is dropped.
    pub(crate) handle: JoinHandle<()>,
    /// Syncs done so far.
    pub(crate) syncs: Arc<AtomicU64>,
}

/// Starts the thread syncing the log at `wal` whenever `commits` (the writer's count of
/// commits) has moved; it ends once `commits` is dropped. `None` if the thread could not be
/// started: commits then work as before, only with their longer pauses.
pub(crate) fn spawn(wal: PathBuf, commits: Weak<AtomicU64>) -> Option<LogSync> {
    let syncs = Arc::new(AtomicU64::new(0));
    let (counted, path) = (Arc::clone(&syncs), wal.clone());
    match std::thread::Builder::new()
        .name("charter-log-sync".into())
        .spawn(move || run(&path, &commits, &counted))
    {
        Ok(handle) => Some(LogSync { wal, handle, syncs }),
        Err(e) => {
            tracing::warn!(error = %e, "starting the write-ahead log's background syncs");
            None
        }
    }
}

fn run(wal: &std::path::Path, commits: &Weak<AtomicU64>, syncs: &AtomicU64) {
    let mut synced = 0;
    let mut warned = false;
    loop {
        let Some(now) = commits.upgrade().map(|c| c.load(Ordering::Relaxed)) else {
            return;
        };
        if now == synced {
            std::thread::sleep(IDLE);
            continue;
        }
        synced = now;
        match File::open(wal).and_then(|log| log.sync_data()) {
            Ok(()) => {
                syncs.fetch_add(1, Ordering::Relaxed);
            }
            // No log yet, or removed as the last connection closed: nothing to sync. Any
            // other failure is logged once, not 500 times a second.
            Err(e) if e.kind() != ErrorKind::NotFound && !warned => {
                warned = true;
                tracing::warn!(error = %e, path = %wal.display(), "syncing the write-ahead log");
            }
            Err(_) => {}
        }
        std::thread::sleep(BUSY);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Instant;

    use super::*;

    /// Waits up to 2 s for `done`.
    pub(crate) fn eventually(done: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while !done() && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(BUSY);
        }
        done()
    }

    #[test]
    fn syncs_while_commits_move_and_ends_with_its_writer() {
        let wal = std::env::temp_dir().join(format!("charter-{}-wal", crate::ids::new("log")));
        let commits = Arc::new(AtomicU64::new(0));
        let sync = spawn(wal.clone(), Arc::downgrade(&commits)).unwrap();
        // No file at this path yet: nothing synced, and the thread keeps going.
        for _ in 0..5 {
            commits.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(BUSY * 2);
        }
        assert!(!sync.handle.is_finished(), "a missing log ended the syncs");
        assert_eq!(sync.syncs.load(Ordering::Relaxed), 0);
        std::fs::write(&wal, b"frames").unwrap();
        commits.fetch_add(1, Ordering::Relaxed);
        assert!(eventually(|| sync.syncs.load(Ordering::Relaxed) == 1));
        // No commit, no sync.
        std::thread::sleep(IDLE * 3);
        assert_eq!(sync.syncs.load(Ordering::Relaxed), 1);
        commits.fetch_add(1, Ordering::Relaxed);
        assert!(eventually(|| sync.syncs.load(Ordering::Relaxed) == 2));
        drop(commits);
        assert!(
            eventually(|| sync.handle.is_finished()),
            "the thread outlived its writer"
        );
        sync.handle.join().unwrap();
        std::fs::remove_file(&wal).unwrap();
    }
}
