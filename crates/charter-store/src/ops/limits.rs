//! Limit counters: seeded (`crate::counting`), loaded for a transaction, written back after
//! it, and settled outside a run (`Store::settle`).

use charter_core::limits::{Claim, Exceeded, Limits as _, Settle};
use futures_util::TryStreamExt as _;
use jiff::Timestamp;
use sqlx::{Pool, Row};

use super::{Db, LOCK_COUNTER, LOCK_SUBJECT, LOCK_SUBJECT_SHARED, Result, Tx, begin};
use crate::book::{Book, Wanted};
use crate::commit::{ADD_TO_COUNTER, LOAD_COUNTER, PRUNE_COUNTER, padded_chunks};
use crate::counting::{
    IS_SEEDED, KnownCounters, MARK_SEEDED, READ_RULES, Seed, Watch, counting_set, read_watched,
    subject_lock, subjects,
};
use crate::error::StoreError;
use crate::runs::PendingCheck;

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
    for (text, Wanted { key, first, .. }) in wanted {
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

/// Makes `seed` in a transaction of its own (`crate::counting::MakeSeed`): under its subject's
/// lock, held exclusively (PostgreSQL), so no batch of another node commits an action of the
/// subject while the history is read; then under the counter's, as every transaction that
/// writes it.
pub(crate) async fn seed(pool: &Pool<Db>, seed: &Seed, known: &KnownCounters) -> Result<()> {
    let mut tx = begin(pool).await?;
    for (lock, name) in [
        (LOCK_SUBJECT, subject_lock(&seed.subject())),
        (LOCK_COUNTER, seed.counter().to_owned()),
    ] {
        if !lock.is_empty() {
            sqlx::query(lock).bind(name).execute(&mut *tx).await?;
        }
    }
    let marked = sqlx::query(IS_SEEDED)
        .bind(seed.counter())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if marked {
        return Ok(());
    }
    let (policy_id, rule_id) = seed.rule();
    let rule = counting_rule(&mut tx, known, policy_id, rule_id).await?;
    let (set, (policy_id, rule_id)) = seed.counting(rule);
    let (sql, params) = seed.query(None);
    let mut count = seed.count(&set);
    {
        let mut rows =
            super::bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &params).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            count.add((
                row.try_get("at")?,
                row.try_get("run_id")?,
                row.try_get("agent_id")?,
                row.try_get("input")?,
            ));
        }
    }
    for (bucket, amount) in count.finish() {
        sqlx::query(ADD_TO_COUNTER)
            .bind(seed.counter())
            .bind(bucket)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(MARK_SEEDED)
        .bind(seed.counter())
        .bind(seed.at_ms())
        .bind(seed.subject())
        .bind(policy_id)
        .bind(rule_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The compiled rule that says what a counter counts (`crate::counting`), compiled once;
/// `None` when no stored policy holds it.
async fn counting_rule(
    tx: &mut Tx,
    known: &KnownCounters,
    policy_id: &str,
    rule_id: &str,
) -> Result<Option<std::sync::Arc<charter_core::CompiledSet>>> {
    if let Some(set) = known.rule(policy_id, rule_id) {
        return Ok(Some(set));
    }
    let Some(row) = sqlx::query(READ_RULES)
        .bind(policy_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    let set = std::sync::Arc::new(counting_set(&row.try_get::<String, _>("rules")?, rule_id)?);
    known.remember_rule(policy_id, rule_id, &set);
    Ok(Some(set))
}

/// Locks the subjects of `batch` (PostgreSQL), shared, in order (see `crate::counting`).
pub(super) async fn lock_subjects(tx: &mut Tx, batch: &[PendingCheck]) -> Result<()> {
    if LOCK_SUBJECT_SHARED.is_empty() {
        return Ok(());
    }
    for subject in subjects(batch) {
        sqlx::query(LOCK_SUBJECT_SHARED)
            .bind(subject_lock(&subject))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The watched counters of `batch`'s subjects, with what each counts.
pub(super) async fn watched(
    tx: &mut Tx,
    batch: &[PendingCheck],
    known: &KnownCounters,
) -> Result<Watch> {
    let subjects = subjects(batch);
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for chunk in padded_chunks(&subjects) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(read_watched(chunk.len())));
        for subject in chunk {
            query = query.bind(subject);
        }
        for row in query.fetch_all(&mut **tx).await? {
            rows.push((
                row.try_get("counter")?,
                row.try_get("subject")?,
                row.try_get("policy_id")?,
                row.try_get("rule_id")?,
            ));
        }
    }
    let mut watch = Watch::default();
    for (counter, subject, policy_id, rule_id) in rows {
        if let Some(set) = counting_rule(tx, known, &policy_id, &rule_id).await? {
            watch.add(subject, counter, set);
        }
    }
    Ok(watch)
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
