//! The SQLite backend: one file in the data directory, WAL mode, writes serialised by
//! `BEGIN IMMEDIATE` (a deferred transaction that reads then writes fails at once with BUSY).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use crate::error::StoreError;

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

pub(crate) async fn begin(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, StoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Charter's store on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: Pool<Db>,
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
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path, sync: Sync) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::connect(options, sync, 8).await
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
            .pragma("recursive_triggers", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Opens the same database anew, as a restarted process would.
    pub async fn reopen(&self) -> Result<SqliteStore, StoreError> {
        let options = (*self.pool.connect_options()).clone();
        let connections = self.pool.options().get_max_connections();
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }

    /// Closes the pool (every connection), as a process would on shutdown.
    pub async fn close(&self) {
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
