//! Limit counters: loaded (and seeded) for a transaction, written back after it, and settled
//! outside a run (`Store::settle`).

use std::collections::HashMap;

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
    let wanted = Book::wanted([(claims, at)]);
    load_counters(
        &mut tx,
        &mut book,
        wanted,
        &HashMap::new(),
        &KnownCounters::default(),
    )
    .await?;
    let exceeded = book.settle(claims, at, mode);
    store_counters(&mut tx, &book).await?;
    tx.commit().await?;
    Ok(exceeded)
}

/// Locks (on PostgreSQL) and loads the counters a transaction will claim, in key order
/// everywhere, so two transactions never wait on each other in a cycle. A counter in `seeds`
/// is seeded first if no transaction has (`crate::counting::Seed`), under its lock, so a node
/// seeding while another spends neither counts twice nor loses a count. Returns the counters
/// found or made seeded, to remember once the transaction commits.
pub(super) async fn load_counters(
    tx: &mut Tx,
    book: &mut Book,
    wanted: std::collections::BTreeMap<String, Wanted>,
    seeds: &HashMap<String, Seed<'_>>,
    known: &KnownCounters,
) -> Result<Vec<String>> {
    let mut now_seeded = Vec::new();
    for (text, Wanted { key, first, .. }) in wanted {
        if !LOCK_COUNTER.is_empty() {
            sqlx::query(LOCK_COUNTER)
                .bind(&text)
                .execute(&mut **tx)
                .await?;
        }
        if let Some(seed) = seeds.get(&text) {
            seed_counter(tx, &text, seed, known).await?;
            now_seeded.push(text.clone());
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
    Ok(now_seeded)
}

/// Seeds `counter` from the recorded actions `seed` reads, unless it is marked seeded.
async fn seed_counter(
    tx: &mut Tx,
    counter: &str,
    seed: &Seed<'_>,
    known: &KnownCounters,
) -> Result<()> {
    let marked = sqlx::query(IS_SEEDED)
        .bind(counter)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if marked {
        return Ok(());
    }
    let (policy_id, rule_id) = seed.rule();
    let rule = counting_rule(tx, known, policy_id, rule_id).await?;
    let (set, (policy_id, rule_id)) = seed.counting(rule);
    let (sql, params) = seed.query();
    let mut count = seed.count(&set);
    {
        let mut rows = super::bind_all(sqlx::query(sql), &params).fetch(&mut **tx);
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
            .bind(counter)
            .bind(bucket)
            .bind(amount)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(MARK_SEEDED)
        .bind(counter)
        .bind(seed.at_ms())
        .bind(seed.subject())
        .bind(policy_id)
        .bind(rule_id)
        .execute(&mut **tx)
        .await?;
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

/// Locks the subjects of `batch` (PostgreSQL), in order: exclusive for a subject with a
/// counter to seed, shared otherwise (see `crate::counting`).
pub(super) async fn lock_subjects(
    tx: &mut Tx,
    batch: &[PendingCheck],
    seeds: &HashMap<String, Seed<'_>>,
) -> Result<()> {
    if LOCK_SUBJECT.is_empty() {
        return Ok(());
    }
    let seeding: Vec<String> = seeds.values().map(Seed::subject).collect();
    for subject in subjects(batch) {
        let lock = if seeding.contains(&subject) {
            LOCK_SUBJECT
        } else {
            LOCK_SUBJECT_SHARED
        };
        sqlx::query(lock)
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
