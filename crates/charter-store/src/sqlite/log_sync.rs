//! Syncs the write-ahead log in the background, so the syncs the writer must wait for find
//! little left to write.
//!
//! With `synchronous=NORMAL` a commit writes its frames into the log without syncing it. The
//! log is synced when a checkpoint copies it, and one checkpoint runs on the writer between two
//! commits while every waiting check waits with it: the one that lets the log restart (see
//! `checkpoints`). That sync wrote out everything committed since the previous one, tens of
//! milliseconds of commits at full load, and was most of the checks' latency tail (measured
//! with `scripts/bench-checks`: the share of checks the server took over 25 ms fell from about
//! 0.55% to about 0.1% with the log synced every 2 ms, docs/benchmarks.md).
//!
//! Extra syncs never weaken durability. Only the log is synced here, never the database file:
//! SQLite holds POSIX locks on the database file, and closing any descriptor of a file releases
//! every such lock the process holds on it. The log carries no locks (the WAL's are on its
//! `-shm` index), so each round opens and closes its own descriptor.

use std::fs::File;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Between two syncs while commits arrive: short enough that a sync has little to write.
const BUSY: Duration = Duration::from_millis(2);
/// How often an idle log is looked at (and how soon the thread ends after its store).
const IDLE: Duration = Duration::from_millis(20);

/// Starts the thread syncing the log at `wal` whenever `commits` (the writer's count of
/// commits) has moved; it ends once `commits` is dropped. `None` if the thread could not be
/// started: commits then work as before, only with their longer pauses.
pub(crate) fn spawn(wal: PathBuf, commits: Weak<AtomicU64>) -> Option<JoinHandle<()>> {
    match std::thread::Builder::new()
        .name("charter-log-sync".into())
        .spawn(move || run(&wal, &commits))
    {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "starting the write-ahead log's background syncs");
            None
        }
    }
}

fn run(wal: &std::path::Path, commits: &Weak<AtomicU64>) {
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
        // No log yet, or removed as the last connection closed: nothing to sync. Any other
        // failure is logged once, not 500 times a second.
        if let Err(e) = File::open(wal).and_then(|log| log.sync_data())
            && e.kind() != ErrorKind::NotFound
            && !warned
        {
            warned = true;
            tracing::warn!(error = %e, path = %wal.display(), "syncing the write-ahead log");
        }
        std::thread::sleep(BUSY);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[test]
    fn ends_with_its_writer_and_survives_a_missing_log() {
        let wal = std::env::temp_dir().join(format!("charter-{}-wal", crate::ids::new("log")));
        let commits = Arc::new(AtomicU64::new(0));
        // No file at this path: the thread keeps going.
        let handle = spawn(wal.clone(), Arc::downgrade(&commits)).unwrap();
        for _ in 0..5 {
            commits.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(BUSY * 2);
        }
        assert!(
            !handle.is_finished(),
            "a missing log must not end the syncs"
        );
        std::fs::write(&wal, b"frames").unwrap();
        commits.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(BUSY * 2);
        assert!(!handle.is_finished());
        let dropped = Instant::now();
        drop(commits);
        while !handle.is_finished() && dropped.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(BUSY);
        }
        assert!(handle.is_finished(), "the thread outlived its writer");
        handle.join().unwrap();
        std::fs::remove_file(&wal).unwrap();
    }
}
