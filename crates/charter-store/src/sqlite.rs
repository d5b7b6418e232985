//! The SQLite backend: one file in the data directory, WAL mode, writes serialised by
//! `BEGIN IMMEDIATE` (a deferred transaction that reads then writes fails at once with BUSY).

use std::fs::{File, TryLockError};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use crate::error::StoreError;
use crate::key_cache::KeyCache;

#[path = "ops.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "ops.rs is compiled once per backend, on purpose"
)]
pub(crate) mod ops;

pub(crate) type Db = Sqlite;
/// SQLite has no row locks: `BEGIN IMMEDIATE` already holds the database's write lock.
/// SQLite serialises write transactions already: no per-counter lock is needed.
pub(crate) const LOCK_COUNTER: &str = "";
pub(crate) const FOR_UPDATE: &str = "";

/// Takes the lock file beside the database at `path` (`charter.db` → `charter.db.lock`),
/// held until the store is dropped: a second process on the same database would break the
/// cache of keys and could not be told about revocations.
fn lock(path: &Path) -> Result<File, StoreError> {
    let mut name = path.as_os_str().to_owned();
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

/// How often the write-ahead log is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the write-ahead log in the background until `pool` closes. `PASSIVE` copies
/// what no reader still needs and never blocks the writer, so commits never wait for a
/// checkpoint's copying and syncing; the log restarts from its beginning (cut back to
/// `journal_size_limit`) once a checkpoint has caught up. (A `TRUNCATE` checkpoint was tried:
/// it holds the writer while it waits for readers, 1.5 s under load.)
async fn checkpoints(pool: Pool<Db>) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "checkpointing the write-ahead log");
        }
    }
}

/// The pool that commits checks beside `pool` (which has `connections`), with the background
/// checkpoints of a file database. A private in-memory database exists only on its one
/// connection, which then does both.
async fn writer_for(
    pool: &Pool<Db>,
    options: &SqliteConnectOptions,
    connections: u32,
) -> Result<Pool<Db>, StoreError> {
    if connections == 1 {
        return Ok(pool.clone());
    }
    tokio::spawn(checkpoints(pool.clone()));
    self::pool(options, 1).await
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
    pub(crate) pool: Pool<Db>,
    /// One connection that commits checks. SQLite writes one transaction at a time anyway,
    /// and a connection keeps its page cache only while no other connection writes: the
    /// group commit always on the same connection finds the pages it touched last time still
    /// cached, instead of reading them back after every batch.
    pub(crate) writer: Pool<Db>,
    pub(crate) keys: Option<Arc<KeyCache>>,
    /// The held lock of the database file (none for an in-memory database).
    held_lock: Option<Arc<File>>,
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
    pub async fn open(path: &Path, sync: Sync) -> Result<SqliteStore, StoreError> {
        let lock = lock(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let mut store = Self::connect(options, sync, 8).await?;
        store.held_lock = Some(Arc::new(lock));
        Ok(store)
    }

    /// A private in-memory database (tests, demos that keep nothing).
    pub async fn in_memory() -> Result<SqliteStore, StoreError> {
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
            .foreign_keys(true)
            // REPLACE deletes the row it conflicts with; only with recursive triggers does
            // that delete meet the triggers that keep active policies and the audit log intact.
            .pragma("recursive_triggers", "ON")
            // A multi-row insert keeps a statement journal; on disk it is a temporary file
            // created and deleted per statement.
            .pragma("temp_store", "MEMORY")
            // 16 MiB of pages per connection: the indexes a batch of checks touches stay
            // in memory instead of being read back per statement.
            .pragma("cache_size", "-16384")
            // Checkpoints run in the background (`checkpoints`), not inside commits: an
            // automatic checkpoint copies and syncs megabytes while every waiting check stalls.
            // A backstop only: if the background checkpoints never catch up under sustained
            // load, a commit checkpoints once the log passes 10,000 pages (40 MiB).
            .pragma("wal_autocheckpoint", "10000")
            // The write-ahead log is cut back to this size when it restarts.
            .pragma("journal_size_limit", "67108864");
        let pool = pool(&options, connections).await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating: {e}")))?;
        let writer = writer_for(&pool, &options, connections).await?;
        Ok(SqliteStore {
            pool,
            writer,
            keys: Some(Arc::default()),
            held_lock: None,
        })
    }

    /// Opens the same database anew, as a restarted process would (or another node: in this
    /// process, sharing its lock and its cache of keys).
    pub async fn reopen(&self) -> Result<SqliteStore, StoreError> {
        let options = (*self.pool.connect_options()).clone();
        let connections = self.pool.options().get_max_connections();
        let pool = pool(&options, connections).await?;
        let writer = writer_for(&pool, &options, connections).await?;
        Ok(SqliteStore {
            pool,
            writer,
            keys: self.keys.clone(),
            held_lock: self.held_lock.clone(),
        })
    }

    /// Closes the pools (every connection), as a process would on shutdown.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Runs raw SQL: for tests that prove the database itself refuses forbidden changes.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
