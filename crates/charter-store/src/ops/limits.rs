//! Limit counters settled outside a run (`Store::settle`).

use charter_core::limits::{Claim, Exceeded, Limits as _, Settle};
use jiff::Timestamp;
use sqlx::{Pool, Row};

use super::{Db, LOCK_COUNTER, Result, Tx, begin};
use crate::book::{Book, Wanted};
use crate::commit::{ADD_TO_COUNTER, LOAD_COUNTER, PRUNE_COUNTER};
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
    load_counters(&mut tx, &mut book, Book::wanted([(claims, at)])).await?;
    let exceeded = book.settle(claims, at, mode);
    store_counters(&mut tx, &book).await?;
    tx.commit().await?;
    Ok(exceeded)
}

/// Locks (on PostgreSQL) and loads the counters a transaction will claim, in key order
/// everywhere, so two transactions never wait on each other in a cycle.
pub(super) async fn load_counters(
    tx: &mut Tx,
    book: &mut Book,
    wanted: std::collections::BTreeMap<String, Wanted>,
) -> Result<()> {
    for (text, Wanted { key, first }) in wanted {
        if !LOCK_COUNTER.is_empty() {
            sqlx::query(LOCK_COUNTER)
                .bind(&text)
                .execute(&mut **tx)
                .await?;
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
