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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::Sync;
use crate::book::{Book, Wanted};
use crate::commit::{
    ACTION_TABLE, ADD_TO_COUNTER, HALT_RUN, LOAD_COUNTER, PRUNE_COUNTER, Param, RunState,
    SlotCounts, VIOLATION_TABLE, action_row, padded_chunks, plan, read_runs, run_chunks,
    violation_row,
};
use crate::counting::{
    IS_SEEDED, KnownCounters, MARK_SEEDED, READ_RULES, Seed, Watch, counting_set, read_watched,
    subjects,
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
        let settings = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;{}",
            super::pragma_statements()
        );
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

    /// Writes a seed counted in a snapshot (see [`write_seed`]).
    pub(crate) async fn seed(
        &self,
        seed: Seed,
        counted: (i64, Vec<(i64, i64)>),
        known: &KnownCounters,
    ) -> Result<(), StoreError> {
        let connection = Arc::clone(&self.connection);
        let known = known.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            write_seed(&mut connection, &seed, &counted, &known)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("seeding a counter: {e}")))?
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
    {
        let mut load = tx.prepare_cached(LOAD_COUNTER).map_err(|e| backend(&e))?;
        for (text, Wanted { key, first, .. }) in wanted {
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
        let counts = SlotCounts::of(plan.events());
        for (sql, params) in counts.upserts() {
            tx.prepare_cached(sql)
                .and_then(|mut count| count.execute(rusqlite::params_from_iter(params)))
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
    Ok(plan.outcomes)
}

/// Writes `seed`, counted up to the row `through` of `actions` (`counted`: its buckets, read
/// in a snapshot outside the write lock by `reader::Reader::seed_snapshot`), unless the counter
/// is marked seeded by now: what was recorded since the snapshot is counted here, then the
/// buckets are added and the counter marked, in one short transaction.
fn write_seed(
    connection: &mut Connection,
    seed: &Seed,
    (through, counted): &(i64, Vec<(i64, i64)>),
    known: &KnownCounters,
) -> Result<(), StoreError> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| backend(&e))?;
    let marked = tx
        .prepare_cached(IS_SEEDED)
        .and_then(|mut s| s.exists([seed.counter()]))
        .map_err(|e| backend(&e))?;
    if marked {
        return Ok(());
    }
    let (policy_id, rule_id) = seed.rule();
    let rule = counting_rule(&tx, known, policy_id, rule_id)?;
    let (set, (policy_id, rule_id)) = seed.counting(rule);
    let (sql, params) = seed.query(Some(*through));
    let mut count = seed.count(&set).resume(counted);
    {
        let mut read = tx.prepare(&sql).map_err(|e| backend(&e))?;
        let rows = read
            .query_map(rusqlite::params_from_iter(params), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(|e| backend(&e))?;
        for row in rows {
            count.add(row.map_err(|e| backend(&e))?);
        }
    }
    {
        let mut add = tx.prepare_cached(ADD_TO_COUNTER).map_err(|e| backend(&e))?;
        for (bucket, amount) in count.finish() {
            add.execute(params![seed.counter(), bucket, amount])
                .map_err(|e| backend(&e))?;
        }
    }
    tx.prepare_cached(MARK_SEEDED)
        .and_then(|mut s| {
            s.execute(params![
                seed.counter(),
                seed.at_ms(),
                seed.subject(),
                policy_id,
                rule_id
            ])
        })
        .map_err(|e| backend(&e))?;
    tx.commit().map_err(|e| backend(&e))
}

/// The compiled rule that says what a counter counts (`crate::counting`), compiled once;
/// `None` when no stored policy holds it.
pub(super) fn counting_rule(
    tx: &Connection,
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
    use charter_core::engine::{CompiledSet, Outcome, RunContext};
    use charter_core::policy::PolicyDefinition;
    use charter_core::{Action, AgentId, TenantId};
    use serde_json::json;

    use super::*;
    use crate::counting::MakeSeed;
    use crate::sqlite::SqliteStore;
    use crate::sqlite::log_sync::tests::eventually;
    use crate::{Activation, Actor, Change, Principal, Run, Store};

    /// Makes a seed with `between` committed after its snapshot, before its write.
    struct Interleaved<'a> {
        store: &'a SqliteStore,
        between: Vec<PendingCheck>,
    }

    impl MakeSeed for Interleaved<'_> {
        async fn make_seed(&self, seed: &Seed) -> Result<(), StoreError> {
            let (Some(reader), Some(committer)) = (&self.store.reader, &self.store.committer)
            else {
                panic!("a file database");
            };
            let counted = reader
                .seed_snapshot(seed.clone(), &self.store.known)
                .await?;
            let between = CheckBatch::new(self.between.clone());
            let outcomes = committer.commit(between, &self.store.known).await?;
            assert_eq!(outcomes.len(), self.between.len());
            committer
                .seed(seed.clone(), counted, &self.store.known)
                .await
        }
    }

    fn pending(run: &Run, set: &Arc<CompiledSet>, seconds: i64) -> PendingCheck {
        let action = Action::parse(&json!({"kind": "tool_call", "tool": "web.search"})).unwrap();
        let at = jiff::Timestamp::from_second(1_795_000_000 + seconds).unwrap();
        let ctx = RunContext {
            tenant_id: &run.tenant_id,
            agent_id: &run.agent_id,
            run_id: &run.id,
            run_started_at: run.started_at,
            now: at,
        };
        PendingCheck {
            id: crate::ids::new("evt"),
            run_id: run.id.clone(),
            tenant_id: run.tenant_id.clone(),
            agent_id: run.agent_id.clone(),
            at,
            evaluation: set.evaluate(&action, &ctx),
            action,
            policy_set_hash: run.policy_set.hash.clone(),
            set: Arc::clone(set),
        }
    }

    /// Actions recorded after a SQLite seed's snapshot and before its write are counted by the
    /// write: a run that started before the rule searches 3 times before the snapshot and 2
    /// times in between, so a limit of 6 searches an hour leaves exactly one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_seed_counts_what_was_committed_after_its_snapshot() {
        let dir = std::env::temp_dir().join(crate::ids::new("seed"));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open_sqlite(&dir.join("charter.db"), Sync::Normal)
            .await
            .unwrap();
        let Store::Sqlite(file) = &store else {
            panic!("a SQLite store");
        };
        let change = Change {
            principal: Principal::Platform,
            actor: Actor {
                key_id: "key_admin".into(),
                name: "admin".into(),
            },
            at: jiff::Timestamp::from_second(1_795_000_000).unwrap(),
        };
        let acme = TenantId::new("acme").unwrap();
        store.create_tenant(&change, &acme, "acme").await.unwrap();
        let support = AgentId::new("support").unwrap();
        store
            .create_agent(&change, &acme, &support, "support", None)
            .await
            .unwrap();
        let start = |seconds: i64| {
            let store = &store;
            async move {
                let at = jiff::Timestamp::from_second(1_795_000_000 + seconds).unwrap();
                let (run, policies) = store
                    .start_run(&Principal::Platform, "acme", "support", &json!({}), at)
                    .await
                    .unwrap();
                (run, Arc::new(CompiledSet::compile(&policies).unwrap()))
            }
        };
        let (old, unbounded) = start(0).await;
        for second in 1..=3 {
            let check = CheckBatch::new(vec![pending(&old, &unbounded, second)]);
            store.commit_checks(check).await.unwrap();
        }
        let body = json!({"name": "searches", "scope": {"type": "tenant", "tenant_id": "acme"},
            "rules": [{"id": "r", "type": "rate", "limit": 6, "window": "1h", "per": "agent",
                       "match": {"tools": ["web.*"]}}]});
        let draft = store
            .create_policy(&change, PolicyDefinition::parse(&body).unwrap(), false)
            .await
            .unwrap();
        let force = Activation {
            force: true,
            supersede: false,
        };
        store
            .activate(&change, draft.policy.id.as_str(), force, None)
            .await
            .unwrap();
        let (new, limited) = start(10).await;
        let first = pending(&new, &limited, 20);
        let interleaved = Interleaved {
            store: file,
            between: vec![pending(&old, &unbounded, 11), pending(&old, &unbounded, 12)],
        };
        file.known
            .seed_for(std::slice::from_ref(&first), true, &interleaved)
            .await
            .unwrap();
        let decided = |outcomes: Vec<CheckOutcome>| match outcomes.as_slice() {
            [CheckOutcome::Decided { decision, .. }] => decision.outcome,
            other => panic!("{other:?}"),
        };
        let outcomes = store.commit_checks(CheckBatch::new(vec![first])).await;
        assert_eq!(decided(outcomes.unwrap()), Outcome::Allow, "the 6th search");
        let outcomes = store
            .commit_checks(CheckBatch::new(vec![pending(&new, &limited, 30)]))
            .await;
        assert_eq!(
            decided(outcomes.unwrap()),
            Outcome::Block,
            "3 before the snapshot, 2 after it, 1 under the rule"
        );
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
