//! Run imports on SQLite, in pieces.
//!
//! SQLite has one writer at a time, and one transaction for a whole import held every check of
//! the node behind it (measured with `scripts/bench-import`: about 15 s for 500,000 actions;
//! checks that waited 5 s for the lock were answered 409). Here each piece of about `PIECE`
//! actions is its own short transaction, and the group commit and the pieces take turns
//! (`WriteTurn`, first come first served), so a check waits for one piece at most. The runs of
//! an import in progress carry its id, and every read leaves them and their actions out until
//! the last piece clears it for all at once: the import is still all or nothing to readers. A
//! failed import, or one whose request was dropped half-way, deletes what its pieces wrote (in
//! a task nothing cancels); so does opening the database after a crash in the middle of one
//! (one process per database file: nothing else is importing).

use std::sync::Arc;

use sqlx::Pool;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::ops::Tx;
use super::ops::history::import_piece;
use super::{Db, begin};
use crate::error::StoreError;
use crate::ids;
use crate::model::Principal;
use crate::runs::RunSource;

/// Actions per piece (about: a run is never split, so a piece ends with the run that reaches
/// it). Measured with `scripts/bench-import` (500,000 actions): 2,000 per piece
/// kept checks waiting 52 ms at the median (117 ms at most) for an import of 29.5 s; 500, 13.5
/// ms (358 ms at most) for 32.9 s, and with the pause after each piece for the other writers,
/// 19.5 ms (501 ms at most) for 41.8 s (without it a key-usage flush gave up once in 32 s).
const PIECE: u64 = 500;
/// Rows deleted per transaction when an import is discarded.
const DISCARD: i64 = 5_000;

/// The database's one write slot as this process hands it out: the group commit and import
/// pieces queue for it in turn, instead of polling SQLite's lock.
pub(crate) type WriteTurn = Mutex<()>;

/// Imports `runs` in pieces, all or nothing; returns (runs, actions).
pub(crate) async fn import_in_pieces(
    pool: &Pool<Db>,
    turn: &Arc<WriteTurn>,
    principal: &Principal,
    runs: &mut impl RunSource,
) -> Result<(u64, u64), StoreError> {
    let unfinished = Unfinished {
        pool: pool.clone(),
        turn: Arc::clone(turn),
        import_id: Some(ids::new("imp")),
    };
    let import_id = unfinished.import_id.clone().unwrap_or_default();
    let imported = pieces(pool, turn, principal, runs, &import_id).await;
    match &imported {
        Ok(_) => unfinished.finished(),
        Err(_) => unfinished.discard().await,
    }
    imported
}

/// An import under way, whose committed pieces are deleted unless it finishes, also when the
/// request importing it is dropped half-way (a client gone): the deletion runs as a task of
/// its own, which nothing cancels.
struct Unfinished {
    pool: Pool<Db>,
    turn: Arc<WriteTurn>,
    /// `None` once finished or discarded.
    import_id: Option<String>,
}

impl Unfinished {
    fn finished(mut self) {
        self.import_id = None;
    }

    /// Deletes what the import wrote, and waits for it.
    async fn discard(mut self) {
        if let Some(task) = self.spawn() {
            let _ = task.await;
        }
    }

    fn spawn(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        let import_id = self.import_id.take()?;
        let (pool, turn) = (self.pool.clone(), Arc::clone(&self.turn));
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(runtime.spawn(async move {
            if let Err(e) = discard(&pool, &turn, &import_id).await {
                // Unseen meanwhile; deleted when the database is next opened.
                tracing::warn!(error = %e, import_id, "deleting an unfinished import's runs");
            }
        }))
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let _ = self.spawn();
    }
}

async fn pieces(
    pool: &Pool<Db>,
    turn: &Arc<WriteTurn>,
    principal: &Principal,
    runs: &mut impl RunSource,
    import_id: &str,
) -> Result<(u64, u64), StoreError> {
    let (mut done, mut actions) = (0, 0);
    loop {
        let turn = Arc::clone(turn).lock_owned().await;
        let held = std::time::Instant::now();
        let mut tx = begin(pool).await?;
        let piece = import_piece(&mut tx, principal, runs, done, PIECE, Some(import_id)).await?;
        done += piece.runs;
        actions += piece.actions;
        if piece.ended {
            // The last piece shows the whole import at once.
            sqlx::query("UPDATE runs SET import_id = NULL WHERE import_id = $1")
                .bind(import_id)
                .execute(&mut *tx)
                .await?;
            commit_in_turn(tx, turn).await?;
            return Ok((done, actions));
        }
        commit_in_turn(tx, turn).await?;
        // The database's other writers (key usage, policy changes) do not queue for the turn:
        // they poll SQLite's lock, and would rarely find it free between two pieces.
        tokio::time::sleep(held.elapsed() / 3).await;
    }
}

/// Commits a piece in a task of its own that keeps the write turn until the commit is done. A
/// caller dropped while committing (its client gone) would otherwise hand the turn to its
/// discard while the commit is still under way: the discard would find none of the piece's
/// rows, and they would then be committed and left behind.
async fn commit_in_turn(tx: Tx, turn: OwnedMutexGuard<()>) -> Result<(), StoreError> {
    let committed = tokio::spawn(async move {
        let committed = tx.commit().await;
        drop(turn);
        committed
    })
    .await
    .map_err(|e| StoreError::Backend(format!("committing an import's piece: {e}")))?;
    Ok(committed?)
}

/// Deletes the runs of every unfinished import and their actions; returns how many runs.
pub(crate) async fn discard_unfinished(
    pool: &Pool<Db>,
    turn: &Arc<WriteTurn>,
) -> Result<u64, StoreError> {
    let imports: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT import_id FROM runs WHERE import_id IS NOT NULL")
            .fetch_all(pool)
            .await?;
    let mut deleted = 0;
    for import_id in imports {
        deleted += discard(pool, turn, &import_id).await?;
    }
    Ok(deleted)
}

/// Deletes the runs of the import `import_id` and their actions, a piece per transaction;
/// returns how many runs.
pub(crate) async fn discard(
    pool: &Pool<Db>,
    turn: &Arc<WriteTurn>,
    import_id: &str,
) -> Result<u64, StoreError> {
    // Its actions were created after it began, and action ids are time-ordered (UUID v7,
    // milliseconds first; the generator never goes back within a process, even if the clock
    // does, and an import's id and actions are made by one process): they lie in a range of
    // the actions' key from the import's own millisecond on, not scattered through every
    // action ever recorded.
    let since = ids::made_since("evt", import_id);
    let actions = "DELETE FROM actions WHERE id IN (SELECT id FROM actions WHERE id >= $1 \
                   AND run_id IN (SELECT id FROM runs WHERE import_id = $2) LIMIT $3)";
    while delete(pool, turn, actions, &[&since, import_id]).await? > 0 {}
    let runs = "DELETE FROM runs WHERE id IN \
                (SELECT id FROM runs WHERE import_id = $1 LIMIT $2)";
    let mut deleted = 0;
    loop {
        match delete(pool, turn, runs, &[import_id]).await? {
            0 => return Ok(deleted),
            n => deleted += n,
        }
    }
}

/// Runs one piece of a discard (`sql`, its text values, then the piece's size) in its own
/// transaction, in turn; returns the rows deleted. A piece that found the database busy past
/// SQLite's busy timeout (held by writers that do not queue for the turn: key usage, policy and
/// administrative changes, or another process at open) is tried again after a pause: giving up
/// would leave the import's rows unseen until the database is next opened.
async fn delete(
    pool: &Pool<Db>,
    turn: &Arc<WriteTurn>,
    sql: &'static str,
    values: &[&str],
) -> Result<u64, StoreError> {
    let mut tries = 1;
    loop {
        match delete_once(pool, turn, sql, values).await {
            Err(StoreError::Conflict { .. }) if tries < BUSY_TRIES => {
                tokio::time::sleep(BUSY_PAUSE * tries).await;
                tries += 1;
            }
            deleted => return deleted,
        }
    }
}

/// How many times a piece of a discard is tried while the database is busy: at most about 75 s
/// in all (16.5 s of pauses, and SQLite's busy timeout of 5 s per try).
const BUSY_TRIES: u32 = 12;
/// The pause after a piece's first busy try; it grows by as much after each.
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// One try of `delete`. It runs as a task of its own, so a caller dropped half-way never
/// leaves a pooled connection with its foreign-key checks off.
async fn delete_once(
    pool: &Pool<Db>,
    turn: &Arc<WriteTurn>,
    sql: &'static str,
    values: &[&str],
) -> Result<u64, StoreError> {
    let (pool, turn) = (pool.clone(), Arc::clone(turn));
    let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    tokio::spawn(async move {
        let _turn = turn.lock().await;
        let mut connection = pool.acquire().await?;
        // With no index of actions by run, SQLite would check each deleted run's references
        // by reading every action; a run's actions are deleted before it, so none are left.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *connection)
            .await?;
        let mut query = sqlx::query(sql);
        for value in values {
            query = query.bind(value);
        }
        let deleted = query.bind(DISCARD).execute(&mut *connection).await;
        let restored = sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *connection)
            .await;
        if restored.is_err() {
            // Never back in the pool with its checks off.
            connection.close_on_drop();
        }
        restored?;
        Ok(deleted?.rows_affected())
    })
    .await
    .map_err(|e| StoreError::Backend(format!("discarding an import: {e}")))?
}
