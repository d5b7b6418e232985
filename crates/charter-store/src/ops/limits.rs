//! Limit counters: loaded (and seeded) for a transaction, written back after it, and settled
//! outside a run (`Store::settle`).

use std::collections::HashMap;

use charter_core::limits::{Claim, Exceeded, Limits as _, Settle};
use jiff::Timestamp;
use sqlx::{Pool, Row};

use super::{Db, LOCK_COUNTER, Result, Tx, begin};
use crate::book::{Book, Wanted};
use crate::commit::{
    ADD_TO_COUNTER, IS_SEEDED, LOAD_COUNTER, MARK_SEEDED, PRUNE_COUNTER, Seed, SeedRow,
};
use crate::error::StoreError;

/// Settles the claims of one action in one transaction: every claim is checked against its
/// counter, and all are committed only if none is exceeded (or, for `Record`, unconditionally).
/// Concurrent settlements of a counter, from any node, are serialised, so two requests can
/// never both take the last unit of a budget.
pub(crate) async fn settle(
    pool: &Pool<Db>,
    claims: &[Claim],
    at: Timestamp,
    mode: Settle,
) -> Result<Vec<Exceeded>> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = begin(pool).await?;
    let mut book = Book::default();
    // Outside a run nothing says which recorded actions a counter holds: no seed.
    load_counters(
        &mut tx,
        &mut book,
        Book::wanted([(claims, at)]),
        &HashMap::new(),
    )
    .await?;
    let exceeded = book.settle(claims, at, mode);
    store_counters(&mut tx, &book).await?;
    tx.commit().await?;
    Ok(exceeded)
}

/// Locks (on PostgreSQL) and loads the counters a transaction will claim, in key order
/// everywhere, so two transactions never wait on each other in a cycle. A counter in `seeds`
/// is seeded first if no transaction has (`crate::commit::Seed`), under its lock, so a node
/// seeding while another spends neither counts twice nor loses a count. Returns the counters
/// found or made seeded, to remember once the transaction commits.
pub(super) async fn load_counters(
    tx: &mut Tx,
    book: &mut Book,
    wanted: std::collections::BTreeMap<String, Wanted>,
    seeds: &HashMap<String, Seed<'_>>,
) -> Result<Vec<String>> {
    let mut seeded = Vec::new();
    for (text, Wanted { key, first, .. }) in wanted {
        if !LOCK_COUNTER.is_empty() {
            sqlx::query(LOCK_COUNTER)
                .bind(&text)
                .execute(&mut **tx)
                .await?;
        }
        if let Some(seed) = seeds.get(&text) {
            seed_counter(tx, &text, seed).await?;
            seeded.push(text.clone());
        }
        let rows = sqlx::query(LOAD_COUNTER)
            .bind(&text)
            .bind(first)
            .fetch_all(&mut **tx)
            .await?;
        let rows = rows
            .iter()
            .map(|row| Ok((row.try_get("bucket")?, row.try_get("amount")?)))
            .collect::<Result<Vec<(i64, i64)>>>()?;
        book.load(key, rows);
    }
    Ok(seeded)
}

/// Seeds `counter` from the recorded actions `seed` reads, unless it is marked seeded.
async fn seed_counter(tx: &mut Tx, counter: &str, seed: &Seed<'_>) -> Result<()> {
    let marked = sqlx::query(IS_SEEDED)
        .bind(counter)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if marked {
        return Ok(());
    }
    let (sql, params) = seed.query();
    let rows = super::bind_all(sqlx::query(sql), &params)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("at")?,
                row.try_get("run_id")?,
                row.try_get("agent_id")?,
                row.try_get("input")?,
            ))
        })
        .collect::<Result<Vec<SeedRow>>>()?;
    for (bucket, amount) in seed.buckets(rows) {
        sqlx::query(ADD_TO_COUNTER)
            .bind(counter)
            .bind(bucket)
            .bind(amount)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(MARK_SEEDED)
        .bind(counter)
        .bind(seed.at_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes back what a transaction added to its counters, and drops buckets that can no longer
/// count.
pub(super) async fn store_counters(tx: &mut Tx, book: &Book) -> Result<()> {
    for (key, bucket, amount) in book.additions() {
        let amount = i64::try_from(amount)
            .map_err(|_| StoreError::Backend("counter amount out of range".into()))?;
        sqlx::query(ADD_TO_COUNTER)
            .bind(key)
            .bind(bucket)
            .bind(amount)
            .execute(&mut **tx)
            .await?;
    }
    for (key, before) in book.prunes() {
        sqlx::query(PRUNE_COUNTER)
            .bind(key)
            .bind(before)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
