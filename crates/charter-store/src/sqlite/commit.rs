//! The group commit on a SQLite file, through rusqlite on a blocking thread: the statements
//! and decisions of `crate::commit`, executed against SQLite's own interface (`ops::commit_checks`
//! executes the same through sqlx for PostgreSQL and an in-memory SQLite database).
//!
//! Through sqlx, each statement of a batch (begin, the batch's runs, each counter, the inserts,
//! commit) is a round trip to the connection's thread, and every bound value is copied into an
//! owned argument first: on two cores, the writer's cycle was mostly waiting for those hops.
//! Here the whole batch runs in one call on one thread, with prepared statements kept by the
//! connection. The rules it keeps are the same: the batch's runs are read first (a check whose
//! run has ended or halted records nothing), counters are loaded once, settled in arrival order
//! and written back as additions, and budget is spent if and only if the check is recorded as
//! allowed. The store's conformance tests run against this path (every SQLite store they open
//! is a file).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{PRAGMAS, Sync};
use crate::book::{Book, Wanted};
use crate::commit::{
    ACTION_TABLE, ADD_TO_COUNTER, HALT_RUN, LOAD_COUNTER, PRUNE_COUNTER, Param, RunState,
    VIOLATION_TABLE, action_row, padded_chunks, plan, read_runs, run_chunks, violation_row,
};
use crate::counting::{
    IS_SEEDED, KnownCounters, MARK_SEEDED, READ_RULES, Seed, Watch, counting_set, read_watched,
    seeds, subjects,
};
use crate::error::StoreError;
use crate::runs::{CheckBatch, CheckOutcome, PendingCheck};

/// The writing connection, used by one batch at a time.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
    sync: Sync,
    /// Set by the background checkpoints when the log should restart (see `checkpoints`).
    restart: Arc<AtomicBool>,
    /// Commits so far, watched by the log's background syncs (`log_sync`), which end with
    /// the last clone of this committer.
    commits: Arc<AtomicU64>,
    /// Those syncs (`synchronous=NORMAL` only): the thread ends by itself with the last
    /// clone of this committer; tests look at what it syncs.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by tests only"))]
    log_sync: Option<Arc<super::log_sync::LogSync>>,
}

fn backend(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => StoreError::database(
            Some(&failure.extended_code.to_string()),
            message.as_deref().unwrap_or_default(),
        ),
        _ => StoreError::Backend(format!("committing checks: {e}")),
    }
}

impl Committer {
    /// Opens the writing connection to the (already migrated) database at `path`, with the
    /// settings of the store's own connections.
    pub(crate) fn open(
        path: &Path,
        sync: Sync,
        restart: Arc<AtomicBool>,
    ) -> Result<Committer, StoreError> {
        let connection = Connection::open(path).map_err(|e| backend(&e))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| backend(&e))?;
        let synchronous = match sync {
            Sync::Normal => "NORMAL",
            Sync::Full => "FULL",
        };
        let mut settings = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
        );
        for (name, value) in PRAGMAS {
            let _ = write!(settings, " PRAGMA {name} = {value};");
        }
        connection
            .execute_batch(&settings)
            .map_err(|e| backend(&e))?;
        connection.set_prepared_statement_cache_capacity(64);
        let commits = Arc::new(AtomicU64::new(0));
        // With `synchronous=FULL` every commit syncs the log itself. The log's name is
        // SQLite's own (the database's resolved path and `-wal`), not one spelled from `path`,
        // which may be a symbolic link.
        let log_sync = (sync == Sync::Normal)
            .then(|| {
                let database = connection
                    .path()
                    .filter(|p| !p.is_empty())
                    .map_or_else(|| path.to_owned(), PathBuf::from);
                let mut wal = database.into_os_string();
                wal.push("-wal");
                super::log_sync::spawn(PathBuf::from(wal), Arc::downgrade(&commits))
            })
            .flatten()
            .map(Arc::new);
        Ok(Committer {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_owned(),
            sync,
            restart,
            commits,
            log_sync,
        })
    }

    /// A new writing connection to the same database, as a restarted process would open.
    pub(crate) fn reopen(&self, restart: Arc<AtomicBool>) -> Result<Committer, StoreError> {
        Committer::open(&self.path, self.sync, restart)
    }

    /// Settles, decides and records `batch` in one transaction: one outcome per check.
    pub(crate) async fn commit(
        &self,
        batch: CheckBatch,
        known: &KnownCounters,
    ) -> Result<Vec<CheckOutcome>, StoreError> {
        let connection = Arc::clone(&self.connection);
        let known = known.clone();
        let restart = Arc::clone(&self.restart);
        let commits = Arc::clone(&self.commits);
        tokio::task::spawn_blocking(move || {
            // A commit that panicked rolled its transaction back as it unwound (rusqlite's
            // `Transaction` rolls back on drop): the connection is fine to use again.
            let mut connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let outcomes = commit(&mut connection, batch.checks(), &known);
            commits.fetch_add(1, Ordering::Relaxed);
            // Asked by the background checkpoints: copy the log's last frames here, between
            // two commits, so the next transaction restarts the log (see `checkpoints`).
            if restart.swap(false, Ordering::Relaxed)
                && let Err(e) =
                    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "checkpointing the write-ahead log");
            }
            outcomes
        })
        .await
        .map_err(|e| StoreError::Backend(format!("committing checks: {e}")))?
    }
}

fn commit(
    connection: &mut Connection,
    batch: &[PendingCheck],
    known: &KnownCounters,
) -> Result<Vec<CheckOutcome>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| backend(&e))?;
    let mut runs: HashMap<String, RunState> = HashMap::new();
    for chunk in run_chunks(batch) {
        let mut read = tx
            .prepare_cached(&read_runs(chunk.len(), "", ""))
            .map_err(|e| backend(&e))?;
        let mut rows = read
            .query(rusqlite::params_from_iter(chunk))
            .map_err(|e| backend(&e))?;
        while let Some(row) = rows.next().map_err(|e| backend(&e))? {
            let (id, status, ended, halted_by) = (
                row.get::<_, String>(0).map_err(|e| backend(&e))?,
                row.get::<_, String>(1).map_err(|e| backend(&e))?,
                row.get::<_, Option<i64>>(2).map_err(|e| backend(&e))?,
                row.get::<_, Option<String>>(3).map_err(|e| backend(&e))?,
            );
            let state = RunState::read(&status, ended.is_some(), halted_by.as_deref())?;
            runs.insert(id, state);
        }
    }
    let mut book = Book::default();
    let wanted = Book::wanted(batch.iter().map(|c| (c.evaluation.claims.as_slice(), c.at)));
    let seeds = seeds(batch, &wanted, known);
    let mut now_seeded = Vec::new();
    {
        let mut load = tx.prepare_cached(LOAD_COUNTER).map_err(|e| backend(&e))?;
        for (text, Wanted { key, first, .. }) in wanted {
            if let Some(seed) = seeds.get(&text) {
                seed_counter(&tx, &text, seed, known)?;
                now_seeded.push(text.clone());
            }
            let rows = load
                .query_map(params![text, first], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(|e| backend(&e))?
                .collect::<Result<Vec<(i64, i64)>, _>>()
                .map_err(|e| backend(&e))?;
            book.load(key, rows);
        }
    }
    let watch = watched(&tx, batch, known)?;
    let plan = plan(batch, &mut runs, &mut book, &watch)?;
    {
        let mut halt = tx.prepare_cached(HALT_RUN).map_err(|e| backend(&e))?;
        for (index, halted_by) in &plan.halts {
            let run = batch.get(*index).map(|c| c.run_id.as_str());
            halt.execute(params![halted_by, run])
                .map_err(|e| backend(&e))?;
        }
        let mut insert_action = tx
            .prepare_cached(&ACTION_TABLE.insert(1))
            .map_err(|e| backend(&e))?;
        for recorded in &plan.recorded {
            if let Some(check) = batch.get(recorded.check) {
                insert_action
                    .execute(action_row(check, recorded))
                    .map_err(|e| backend(&e))?;
            }
        }
        let mut insert_violation = tx
            .prepare_cached(&VIOLATION_TABLE.insert(1))
            .map_err(|e| backend(&e))?;
        for event in plan.events() {
            insert_violation
                .execute(violation_row(event))
                .map_err(|e| backend(&e))?;
        }
        let mut add = tx.prepare_cached(ADD_TO_COUNTER).map_err(|e| backend(&e))?;
        for (key, bucket, amount) in book.additions() {
            let amount = i64::try_from(amount)
                .map_err(|_| StoreError::Backend("counter amount out of range".into()))?;
            add.execute(params![key, bucket, amount])
                .map_err(|e| backend(&e))?;
        }
        let mut prune = tx.prepare_cached(PRUNE_COUNTER).map_err(|e| backend(&e))?;
        for (key, before) in book.prunes() {
            prune
                .execute(params![key, before])
                .map_err(|e| backend(&e))?;
        }
    }
    tx.commit().map_err(|e| backend(&e))?;
    known.learn(now_seeded);
    Ok(plan.outcomes)
}

/// Seeds `counter` from the recorded actions `seed` reads, unless it is marked seeded (see
/// `ops::limits::load_counters`).
fn seed_counter(
    tx: &rusqlite::Transaction<'_>,
    counter: &str,
    seed: &Seed<'_>,
    known: &KnownCounters,
) -> Result<(), StoreError> {
    let marked = tx
        .prepare_cached(IS_SEEDED)
        .and_then(|mut s| s.exists([counter]))
        .map_err(|e| backend(&e))?;
    if marked {
        return Ok(());
    }
    let (policy_id, rule_id) = seed.rule();
    let rule = counting_rule(tx, known, policy_id, rule_id)?;
    let (set, (policy_id, rule_id)) = seed.counting(rule);
    let (sql, params) = seed.query();
    let mut count = seed.count(&set);
    {
        let mut read = tx.prepare_cached(sql).map_err(|e| backend(&e))?;
        let rows = read
            .query_map(rusqlite::params_from_iter(params), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(|e| backend(&e))?;
        for row in rows {
            count.add(row.map_err(|e| backend(&e))?);
        }
    }
    let mut add = tx.prepare_cached(ADD_TO_COUNTER).map_err(|e| backend(&e))?;
    for (bucket, amount) in count.finish() {
        add.execute(params![counter, bucket, amount])
            .map_err(|e| backend(&e))?;
    }
    tx.prepare_cached(MARK_SEEDED)
        .and_then(|mut s| {
            s.execute(params![
                counter,
                seed.at_ms(),
                seed.subject(),
                policy_id,
                rule_id
            ])
        })
        .map_err(|e| backend(&e))?;
    Ok(())
}

/// The compiled rule that says what a counter counts (`crate::counting`), compiled once;
/// `None` when no stored policy holds it.
fn counting_rule(
    tx: &rusqlite::Transaction<'_>,
    known: &KnownCounters,
    policy_id: &str,
    rule_id: &str,
) -> Result<Option<Arc<charter_core::CompiledSet>>, StoreError> {
    if let Some(set) = known.rule(policy_id, rule_id) {
        return Ok(Some(set));
    }
    let rules: Option<String> = tx
        .prepare_cached(READ_RULES)
        .and_then(|mut s| s.query_row([policy_id], |row| row.get(0)).optional())
        .map_err(|e| backend(&e))?;
    let Some(rules) = rules else {
        return Ok(None);
    };
    let set = Arc::new(counting_set(&rules, rule_id)?);
    known.remember_rule(policy_id, rule_id, &set);
    Ok(Some(set))
}

/// The watched counters of `batch`'s subjects, with what each counts.
fn watched(
    tx: &rusqlite::Transaction<'_>,
    batch: &[PendingCheck],
    known: &KnownCounters,
) -> Result<Watch, StoreError> {
    let subjects = subjects(batch);
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for chunk in padded_chunks(&subjects) {
        let mut read = tx
            .prepare_cached(&read_watched(chunk.len()))
            .map_err(|e| backend(&e))?;
        let found = read
            .query_map(rusqlite::params_from_iter(chunk), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(|e| backend(&e))?;
        for row in found {
            rows.push(row.map_err(|e| backend(&e))?);
        }
    }
    let mut watch = Watch::default();
    for (counter, subject, policy_id, rule_id) in rows {
        if let Some(set) = counting_rule(tx, known, &policy_id, &rule_id)? {
            watch.add(subject, counter, set);
        }
    }
    Ok(watch)
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Text(text) | Param::MaybeText(Some(text)) => ValueRef::Text(text.as_bytes()),
            Param::MaybeText(None) => ValueRef::Null,
            Param::Int(n) => ValueRef::Integer(n),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::log_sync::tests::eventually;

    #[cfg(unix)]
    #[test]
    fn the_log_synced_is_sqlites_own_and_only_with_normal() {
        let base = std::env::temp_dir().join(crate::ids::new("commit"));
        let (real, links) = (base.join("real"), base.join("links"));
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(&links).unwrap();
        std::fs::write(real.join("charter.db"), b"").unwrap();
        std::os::unix::fs::symlink(real.join("charter.db"), links.join("charter.db")).unwrap();
        let committer =
            Committer::open(&links.join("charter.db"), Sync::Normal, Arc::default()).unwrap();
        let sync = committer.log_sync.clone().unwrap();
        // Beside the file the link points to, where SQLite keeps its log.
        assert_eq!(
            sync.wal,
            real.canonicalize().unwrap().join("charter.db-wal")
        );
        {
            let connection = committer.connection.lock().unwrap();
            connection
                .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .unwrap();
        }
        assert!(sync.wal.exists());
        committer.commits.fetch_add(1, Ordering::Relaxed);
        assert!(eventually(|| sync.syncs.load(Ordering::Relaxed) > 0));
        let full = Committer::open(&real.join("charter.db"), Sync::Full, Arc::default()).unwrap();
        assert!(full.log_sync.is_none());
        drop((committer, full));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
