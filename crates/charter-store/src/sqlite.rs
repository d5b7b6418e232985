//! The SQLite backend: one file in the data directory, WAL mode, writes serialised by
//! `BEGIN IMMEDIATE` (a deferred transaction that reads then writes fails at once with BUSY).

use std::fs::{File, TryLockError};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use crate::error::StoreError;
use crate::key_cache::KeyCache;

mod commit;
mod import;
mod log_sync;
#[path = "ops/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "ops/ is compiled once per backend, on purpose"
)]
pub(crate) mod ops;

/// This build's migrations of the SQLite schema, run at open and counted by readiness.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
mod reader;

pub(crate) type Db = Sqlite;
/// SQLite has no row locks: `BEGIN IMMEDIATE` already holds the database's write lock.
/// SQLite serialises write transactions already: no per-counter lock is needed.
pub(crate) const LOCK_COUNTER: &str = "";
/// Likewise for a subject's lock, exclusive or shared.
pub(crate) const LOCK_SUBJECT: &str = "";
pub(crate) const LOCK_SUBJECT_SHARED: &str = "";
pub(crate) const FOR_UPDATE: &str = "";
/// SQLite's default collation already orders text by its bytes.
pub(crate) const BYTE_ORDER: &str = "";
/// A policy's number of rules: as kept, else counted in its `rules` column.
pub(crate) const RULE_COUNT: &str = "coalesce(rule_count, json_array_length(rules))";
/// Whether a policy's lowercased name (`name_folded`) contains the search `?`.
pub(crate) const NAME_CONTAINS: &str = "instr(name_folded, ?) > 0";

/// Takes the lock file beside the database at `path` (`charter.db` → `charter.db.lock`),
/// held until the store is dropped: a second process on the same database would break the
/// cache of keys and could not be told about revocations.
fn lock(path: &Path) -> Result<File, StoreError> {
    // Beside the real file, however the path was spelled (relative, through a symbolic link
    // to the directory): two processes find the same lock.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| StoreError::Backend(format!("{} names no file", path.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| StoreError::Backend(format!("opening {}: {e}", dir.display())))?;
    let mut name = dir.join(file_name).into_os_string();
    name.push(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(|e| StoreError::Backend(format!("opening {}: {e}", Path::new(&name).display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Backend(format!(
            "{} is in use by another Charter process (its lock {} is held)",
            path.display(),
            Path::new(&name).display()
        ))),
        Err(TryLockError::Error(e)) => Err(StoreError::Backend(format!(
            "locking {}: {e}",
            Path::new(&name).display()
        ))),
    }
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 512;

/// Settings of every connection, sqlx's and rusqlite's alike (besides the journal mode, the
/// sync level, the busy timeout and foreign keys, which both set through their own calls).
const PRAGMAS: [(&str, &str); 5] = [
    // REPLACE deletes the row it conflicts with; only with recursive triggers does that
    // delete meet the triggers that keep active policies and the audit log intact.
    ("recursive_triggers", "ON"),
    // A multi-row insert keeps a statement journal; on disk it is a temporary file created
    // and deleted per statement.
    ("temp_store", "MEMORY"),
    // 16 MiB of pages per connection: the indexes a batch of checks touches stay in memory
    // instead of being read back per statement.
    ("cache_size", "-16384"),
    // Checkpoints run in the background (`checkpoints`), not inside commits: an automatic
    // checkpoint copies and syncs what accumulated while every waiting check stalls. A
    // backstop only, past `RESTART_AT`: if the writer's restarts keep failing (a reader
    // holding an old snapshot), a commit checkpoints once the log passes 100,000 pages.
    ("wal_autocheckpoint", "100000"),
    // The write-ahead log is cut back to this size when it restarts: above `RESTART_AT`, so a
    // restarted log reuses its blocks instead of truncating and growing the file again
    // (truncating made restarts pause several times longer).
    ("journal_size_limit", "134217728"),
];

/// [`PRAGMAS`] as statements, for rusqlite's connections.
pub(crate) fn pragma_statements() -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for (name, value) in PRAGMAS {
        let _ = write!(text, " PRAGMA {name} = {value};");
    }
    text
}

/// How often the write-ahead log is checkpointed while it holds frames to copy, and while it
/// is empty.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(10);
const CHECKPOINT_IDLE: Duration = Duration::from_millis(250);

/// The log's length (in pages: 64 MiB) past which the writer is asked to let it restart.
/// Restarting costs the writer a pause for a checkpoint's syncs (and the next commit one more
/// sync of the log's new header): measured 25–40 ms on these machines under load before
/// `log_sync` kept the log synced, since then a median of 7.5 ms (p90 24 ms), about twice a
/// second at 20,000 checks/s (30 restarts in a 15 s run). Measured alternatives were worse: a longer log pauses less often but longer
/// (128 MiB: up to 70 ms, 256 MiB: up to 120 ms), a shorter one more often and no shorter
/// (16 and 32 MiB: up to 65–75 ms).
const RESTART_AT: i64 = 16_384;

/// Checkpoints the write-ahead log in the background until `pool` closes. `PASSIVE` copies
/// what no reader still needs and never blocks the writer, so commits never wait for the
/// copying and syncing. (A `TRUNCATE` checkpoint was tried: it holds the writer while it waits
/// for readers, 1.5 s under load.)
///
/// Copying alone never shortens the log: SQLite restarts it from its beginning only when a
/// write transaction begins after every frame was copied, and under steady load the writer
/// has always committed more frames by the time a checkpoint finishes. Once the log is long,
/// this task therefore asks the writer (`restart`) to copy the last few frames itself right
/// after a commit (`commit::Committer`), and the writer's next transaction restarts the
/// log. Without that the log grows until the automatic checkpoint (the backstop, at 100,000
/// pages), which then stalls one commit the same way.
async fn checkpoints(pool: Pool<Db>, restart: Arc<AtomicBool>) {
    let mut pause = CHECKPOINT_IDLE;
    let mut waited = 0;
    loop {
        tokio::time::sleep(pause).await;
        if pool.is_closed() {
            return;
        }
        // While the writer is asked to restart the log, its checkpoint runs alone: two at once
        // would leave it incomplete (busy) and the log unrestarted. A writer with nothing to
        // commit never gets to it: after a second this task checkpoints again.
        if restart.load(Ordering::Relaxed) && waited < 100 {
            waited += 1;
            pause = CHECKPOINT_BUSY;
            continue;
        }
        waited = 0;
        restart.store(false, Ordering::Relaxed);
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok((_, log, _)) => {
                pause = if log > 0 {
                    CHECKPOINT_BUSY
                } else {
                    CHECKPOINT_IDLE
                };
                if log >= RESTART_AT {
                    restart.store(true, Ordering::Relaxed);
                    // At most one restart attempt per pause, should attempts keep failing
                    // (a reader holding an old snapshot).
                    pause = CHECKPOINT_IDLE;
                }
            }
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                pause = CHECKPOINT_IDLE;
                tracing::warn!(error = %e, "checkpointing the write-ahead log");
            }
        }
    }
}

/// Starts the background checkpoints of a file database; `restart` is shared with its writer.
fn checkpointer(pool: &Pool<Db>, restart: &Arc<AtomicBool>) -> Arc<Checkpointer> {
    let task = tokio::spawn(checkpoints(pool.clone(), Arc::clone(restart)));
    Arc::new(Checkpointer { task })
}

/// The background checkpoint task, stopped when the last handle of its store is dropped (a
/// store dropped without `close` would otherwise keep it, and its pool, alive).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A pool of `connections` to the database of `options`.
async fn pool(options: &SqliteConnectOptions, connections: u32) -> Result<Pool<Db>, StoreError> {
    Ok(SqlitePoolOptions::new()
        // A file database does not drop connections: no ping before every use.
        .test_before_acquire(false)
        .max_connections(connections)
        .connect_with(options.clone())
        .await?)
}

pub(crate) async fn begin(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, StoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Charter's store on SQLite.
///
/// A database file is used by one process at a time (its `.lock` file is held while the store
/// is open), so the store can keep authenticated keys in memory and still revoke at once.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Every operation but the group commit and Validate's reads of a file database; all of
    /// them for an in-memory one (a single connection).
    pub(crate) pool: Pool<Db>,
    pub(crate) keys: Arc<KeyCache>,
    /// The held lock of the database file (none for an in-memory database).
    held_lock: Option<Arc<File>>,
    /// The background checkpoints of a file database.
    checkpointer: Option<Arc<Checkpointer>>,
    /// Validate's reads of a file database (an in-memory one is read through `pool`).
    reader: Option<reader::Reader>,
    /// The group commit of a file database (an in-memory one commits through `pool`).
    committer: Option<commit::Committer>,
    /// The write slot the group commit and import pieces take in turn (`import`).
    turn: Arc<import::WriteTurn>,
    /// Limit counters known to be seeded.
    known: crate::counting::KnownCounters,
}

/// How durable a commit is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sync {
    /// WAL with `synchronous=NORMAL`: survives the process being killed at any moment.
    #[default]
    Normal,
    /// `synchronous=FULL`: also survives power loss, at lower throughput.
    Full,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it. Fails if
    /// another process has it open.
    pub(crate) async fn open(path: &Path, sync: Sync) -> Result<SqliteStore, StoreError> {
        let lock = lock(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let mut store = Self::connect(options, sync, 8).await?;
        store.held_lock = Some(Arc::new(lock));
        store.reader = Some(reader::Reader::new(path));
        let restart = Arc::default();
        store.committer = Some(commit::Committer::open(path, sync, Arc::clone(&restart))?);
        store.checkpointer = Some(checkpointer(&store.pool, &restart));
        // An import interrupted by a crash: unseen, and now deleted, waiting meanwhile if
        // another process holds the database (about 75 s at most a piece, `import::delete`);
        // if that fails, at the next start: unseen meanwhile, it is no reason not to start.
        match import::discard_unfinished(&store.pool, &store.turn).await {
            Ok(0) => {}
            Ok(runs) => tracing::warn!(runs, "deleted the runs of an unfinished import"),
            Err(e) => tracing::warn!(error = %e, "deleting the runs of an unfinished import"),
        }
        Ok(store)
    }

    /// A private in-memory database (tests, demos that keep nothing).
    pub(crate) async fn in_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every pooled connection to `:memory:` would be its own database.
        Self::connect(options, Sync::Normal, 1).await
    }

    async fn connect(
        options: SqliteConnectOptions,
        sync: Sync,
        connections: u32,
    ) -> Result<SqliteStore, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                Sync::Normal => SqliteSynchronous::Normal,
                Sync::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(5))
            // Multi-row inserts have one statement text per row count and table: more than
            // the default cache of 100 prepared statements holds.
            .statement_cache_capacity(STATEMENT_CACHE)
            .foreign_keys(true);
        let options = PRAGMAS.iter().fold(options, |options, (name, value)| {
            options.pragma(*name, *value)
        });
        let pool = pool(&options, connections).await?;
        crate::migrations::tolerant(&MIGRATOR)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating: {e}")))?;
        // Rows written before what the list keeps of them (`policies.name_folded`, `rule_count`),
        // or by an older node. Only the list's speed depends on it: no reason not to start.
        if let Err(e) = ops::policies::fill_kept(&pool).await {
            tracing::warn!(error = %e, "filling what the policy list keeps of each policy");
        }
        Ok(SqliteStore {
            pool,
            keys: Arc::default(),
            held_lock: None,
            checkpointer: None,
            reader: None,
            committer: None,
            turn: Arc::default(),
            known: crate::counting::KnownCounters::default(),
        })
    }

    /// Opens the same database anew, as a restarted process would (or another node: in this
    /// process, sharing its lock and its cache of keys).
    pub(crate) async fn reopen(&self) -> Result<SqliteStore, StoreError> {
        let options = (*self.pool.connect_options()).clone();
        let connections = self.pool.options().get_max_connections();
        let pool = pool(&options, connections).await?;
        if let Err(e) = ops::policies::fill_kept(&pool).await {
            tracing::warn!(error = %e, "filling what the policy list keeps of each policy");
        }
        let restart = Arc::default();
        // Its own writing connection and checkpoints, as a restarted process would have.
        let committer = self
            .committer
            .as_ref()
            .map(|c| c.reopen(Arc::clone(&restart)))
            .transpose()?;
        let checkpointer = committer.as_ref().map(|_| checkpointer(&pool, &restart));
        Ok(SqliteStore {
            pool,
            keys: Arc::clone(&self.keys),
            held_lock: self.held_lock.clone(),
            checkpointer,
            reader: self.reader.clone(),
            committer,
            // The same file in the same process: one write slot.
            turn: Arc::clone(&self.turn),
            // What a restarted process knows: nothing yet.
            known: crate::counting::KnownCounters::default(),
        })
    }

    /// Closes the pools (every connection), as a process would on shutdown.
    pub(crate) async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.task.abort();
        }
        self.pool.close().await;
    }

    /// Validate's page of recorded actions: through rusqlite for a file database (see
    /// `reader`), through the pool for an in-memory one.
    pub(crate) async fn recorded_page(
        &self,
        principal: &crate::Principal,
        page: &crate::HistoryPage,
    ) -> Result<Vec<crate::RecordedRow>, StoreError> {
        match &self.reader {
            Some(reader) => reader.actions_page(principal, page).await,
            None => ops::actions_page(&self.pool, principal, page).await,
        }
    }

    /// A page of the policy list: through rusqlite for a file database (see `reader`: sqlx
    /// hands rows over one by one, which a full page of 50 policies paid for), through the
    /// pool for an in-memory one.
    pub(crate) async fn policies_page(
        &self,
        principal: &crate::Principal,
        filter: &crate::PolicyFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<crate::Page<crate::PolicySummary>, StoreError> {
        match &self.reader {
            Some(reader) => reader.policies_page(principal, filter, cursor, limit).await,
            None => ops::policies_page(&self.pool, principal, filter, cursor, limit).await,
        }
    }

    /// A page of the audit log: through rusqlite for a file database (see `reader`), through
    /// the pool for an in-memory one.
    pub(crate) async fn audit_page(
        &self,
        principal: &crate::Principal,
        filter: &crate::AuditFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<crate::Page<crate::AuditEntry>, StoreError> {
        match &self.reader {
            Some(reader) => reader.audit_page(principal, filter, cursor, limit).await,
            None => ops::audit_list(&self.pool, principal, filter, cursor, limit).await,
        }
    }

    /// The group commit of `batch`: through rusqlite for a file database (see `commit`),
    /// through the pool for an in-memory one.
    pub(crate) async fn commit_batch(
        &self,
        batch: crate::CheckBatch,
    ) -> Result<Vec<crate::CheckOutcome>, StoreError> {
        self.known.seed_for(batch.checks(), false, self).await?;
        let _turn = self.turn.lock().await;
        match &self.committer {
            Some(committer) => committer.commit(batch, &self.known).await,
            None => ops::commit_checks(&self.pool, batch.checks(), &self.known, None).await,
        }
    }

    /// Seeds the counters `check` claims unseeded, before it joins a batch
    /// (`crate::counting`).
    pub(crate) async fn seed_counters(
        &self,
        check: &crate::PendingCheck,
    ) -> Result<(), StoreError> {
        self.known
            .seed_for(std::slice::from_ref(check), true, self)
            .await
    }

    /// A run import, in pieces (see `import`).
    pub(crate) async fn import_recorded(
        &self,
        principal: &crate::Principal,
        runs: &mut impl crate::RunSource,
    ) -> Result<(u64, u64), StoreError> {
        import::import_in_pieces(&self.pool, &self.turn, principal, runs).await
    }

    /// Runs raw SQL: for tests that prove the database itself refuses forbidden changes.
    /// One batch of a pruning pass, in turn with the group commit and imports (a check waits
    /// for one batch at most), then a pause of a third of its time for the writers that poll
    /// SQLite's lock instead (key usage, policy changes).
    pub(crate) async fn prune_batch(
        &self,
        step: &crate::retention::Step,
    ) -> Result<(crate::Pruned, bool), StoreError> {
        let (pool, turn, step) = (self.pool.clone(), Arc::clone(&self.turn), step.clone());
        let held = std::time::Instant::now();
        // A task of its own: a caller dropped half-way never leaves a pooled connection with
        // its foreign-key checks off.
        let batch = tokio::spawn(async move {
            let _turn = turn.lock().await;
            let mut connection = pool.acquire().await?;
            // With no index of actions by run, SQLite would check each deleted run's
            // references by reading every action; a run's actions are deleted before it.
            sqlx::query("PRAGMA foreign_keys = OFF")
                .execute(&mut *connection)
                .await?;
            let batch = async {
                let mut tx =
                    sqlx::Connection::begin_with(&mut *connection, "BEGIN IMMEDIATE").await?;
                let batch = ops::prune_batch(&mut tx, &step).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(batch)
            }
            .await;
            let restored = sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&mut *connection)
                .await;
            if restored.is_err() {
                // Never back in the pool with its checks off.
                connection.close_on_drop();
            }
            restored?;
            batch
        })
        .await
        .map_err(|e| StoreError::Backend(format!("pruning: {e}")))??;
        tokio::time::sleep(held.elapsed() / 3).await;
        Ok(batch)
    }

    pub(crate) async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

impl crate::counting::MakeSeed for SqliteStore {
    /// On a file, the history is counted in a snapshot through the reader, and only the
    /// writing of the seed takes the write lock, in turn with the group commit; in memory, in
    /// one transaction.
    async fn make_seed(&self, seed: &crate::counting::Seed) -> Result<(), StoreError> {
        match (&self.reader, &self.committer) {
            (Some(reader), Some(committer)) => {
                let counted = reader.seed_snapshot(seed.clone(), &self.known).await?;
                let _turn = self.turn.lock().await;
                committer.seed(seed.clone(), counted, &self.known).await
            }
            _ => ops::seed(&self.pool, seed, &self.known).await,
        }
    }
}
