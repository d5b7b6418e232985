//! The group commit of checks through sqlx (PostgreSQL, an in-memory SQLite database): the
//! statements and decisions of `crate::commit`, executed here.

use std::collections::HashMap;

use sqlx::{Pool, Row};

use super::limits::{load_counters, lock_subjects, store_counters, watched};
use super::{BYTE_ORDER, Db, FOR_UPDATE, Result, Tx, begin};
use crate::book::Book;
use crate::commit::{
    ACTION_TABLE, HALT_RUN, Param, RunState, SlotCounts, VIOLATION_TABLE, action_row, plan,
    read_runs, run_chunks, violation_row,
};
use crate::counting::KnownCounters;
use crate::runs::{CheckOutcome, PendingCheck};

/// Rows per multi-row insert. Every statement is a round trip (on SQLite, to its connection's
/// thread): a batch of checks is written in a handful of statements, and the chunking keeps
/// the number of distinct statement texts (each prepared once) small.
const ROWS_PER_STATEMENT: usize = 64;

/// Where a commit tells the other nodes sharing the database of its violation events: a
/// PostgreSQL channel, delivered only if the transaction commits (`crate::feed`).
pub(crate) struct Announce<'a> {
    /// The channel.
    pub(crate) channel: &'a str,
    /// This node's tag, by which it skips its own announcements (it streams its events as it
    /// answers them).
    pub(crate) node: &'a str,
}

/// Settles, decides and records a batch of evaluated checks in one transaction (the group
/// commit; see `crate::commit`), announcing its violation events when `announce` says where.
pub(crate) async fn commit_checks(
    pool: &Pool<Db>,
    batch: &[PendingCheck],
    known: &KnownCounters,
    announce: Option<Announce<'_>>,
) -> Result<Vec<CheckOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = begin(pool).await?;
    let mut runs = run_states(&mut tx, batch).await?;
    let mut book = Book::default();
    let wanted = Book::wanted(batch.iter().map(|c| (c.evaluation.claims.as_slice(), c.at)));
    lock_subjects(&mut tx, batch).await?;
    load_counters(&mut tx, &mut book, wanted).await?;
    let watch = watched(&mut tx, batch, known).await?;
    let plan = plan(batch, &mut runs, &mut book, &watch)?;
    for (index, halted_by) in &plan.halts {
        let run = batch.get(*index).map(|c| c.run_id.as_str());
        sqlx::query(HALT_RUN)
            .bind(halted_by)
            .bind(run)
            .execute(&mut *tx)
            .await?;
    }
    let actions: Vec<[Param<'_>; 9]> = plan
        .recorded
        .iter()
        .filter_map(|r| batch.get(r.check).map(|check| action_row(check, r)))
        .collect();
    insert(&mut tx, &ACTION_TABLE, &actions).await?;
    let events: Vec<[Param<'_>; 17]> = plan.events().map(violation_row).collect();
    insert(&mut tx, &VIOLATION_TABLE, &events).await?;
    let counts = SlotCounts::of(plan.events());
    for (sql, params) in counts.upserts() {
        super::bind_all(sqlx::query(sql), &params)
            .execute(&mut *tx)
            .await?;
    }
    store_counters(&mut tx, &book).await?;
    if let Some(announce) = announce {
        let ids: Vec<&str> = plan.events().map(|e| e.id.as_str()).collect();
        for payload in crate::feed::payloads(announce.node, &ids) {
            sqlx::query(crate::feed::NOTIFY)
                .bind(announce.channel)
                .bind(payload)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(plan.outcomes)
}

/// The state of the batch's runs, locked on PostgreSQL in the byte order of their ids.
async fn run_states(tx: &mut Tx, batch: &[PendingCheck]) -> Result<HashMap<String, RunState>> {
    let mut states = HashMap::new();
    for chunk in run_chunks(batch) {
        let sql = read_runs(chunk.len(), BYTE_ORDER, FOR_UPDATE);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let status: String = row.try_get("status")?;
            let ended: Option<i64> = row.try_get("ended_at")?;
            let halted_by: Option<String> = row.try_get("halted_by")?;
            states.insert(
                row.try_get("id")?,
                RunState::read(&status, ended.is_some(), halted_by.as_deref())?,
            );
        }
    }
    Ok(states)
}

/// Inserts `rows` into `table`, many rows per statement.
async fn insert<const N: usize>(
    tx: &mut Tx,
    table: &crate::commit::Table,
    rows: &[[Param<'_>; N]],
) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let params: Vec<Param<'_>> = chunk.iter().flatten().copied().collect();
        let sql = table.insert(chunk.len());
        super::bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &params)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
