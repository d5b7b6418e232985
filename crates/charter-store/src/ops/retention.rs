//! Retention's statements: what one batch of a pruning pass deletes, in the transaction its
//! backend opens (`crate::retention` drives the pass).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sqlx::{AssertSqlSafe, Pool, Row};

use super::{Db, Result, to_u32};
use crate::retention::{Pruned, ROWS_PER_BATCH, RUNS_PER_BATCH, Step};

type Connection = <Db as sqlx::Database>::Connection;

/// How much later than its run's end an action may be stamped: a check is stamped by the
/// clock of the node that decided it, the end by the node that ended the run, so clocks
/// further apart than this would leave such an action behind its deleted run.
const CLOCK_SKEW_MS: i64 = 3_600_000;

/// The non-draft policies that may hold rate or cost rules: (id, name, version, rules text).
/// Drafts count nothing; a deprecated version may still be pinned by a running run.
pub(crate) async fn limit_policies(pool: &Pool<Db>) -> Result<Vec<(String, String, u32, String)>> {
    let rows = sqlx::query(
        "SELECT id, name, version, rules FROM policies WHERE status <> 'draft' \
         AND (rules LIKE '%rate%' OR rules LIKE '%cost%')",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("name")?,
                to_u32(r.try_get("version")?, "version")?,
                r.try_get("rules")?,
            ))
        })
        .collect()
}

/// The audit chains there are.
pub(crate) async fn audit_chains(pool: &Pool<Db>) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT chain FROM audit_heads ORDER BY chain")
            .fetch_all(pool)
            .await?,
    )
}

/// Deletes one batch of `step` inside the caller's transaction; returns what it removed and
/// whether more may be left.
pub(crate) async fn prune_batch(conn: &mut Connection, step: &Step) -> Result<(Pruned, bool)> {
    match step {
        Step::Runs { before } => runs(conn, *before).await,
        Step::Violations { before } => violations(conn, *before).await,
        Step::Audit { chain, before } => audit(conn, chain, *before).await,
    }
}

/// Up to [`RUNS_PER_BATCH`] runs that ended before `before` (never one still running, or one
/// of an import in progress), with their actions.
async fn runs(conn: &mut Connection, before: i64) -> Result<(Pruned, bool)> {
    let rows = sqlx::query(
        "SELECT id, tenant_id, agent_id, started_at, ended_at FROM runs \
         WHERE ended_at < $1 AND import_id IS NULL ORDER BY ended_at LIMIT $2",
    )
    .bind(before)
    .bind(RUNS_PER_BATCH)
    .fetch_all(&mut *conn)
    .await?;
    // A run's actions are found through its agent's time-ordered index (there is none by run):
    // one range per agent, from its earliest run's start to its latest run's end.
    let mut agents: BTreeMap<(String, String), (i64, i64, Vec<String>)> = BTreeMap::new();
    for row in &rows {
        let (started, ended): (i64, i64) = (row.try_get("started_at")?, row.try_get("ended_at")?);
        let entry = agents
            .entry((row.try_get("tenant_id")?, row.try_get("agent_id")?))
            .or_insert((started, ended, Vec::new()));
        entry.0 = entry.0.min(started);
        entry.1 = entry.1.max(ended);
        entry.2.push(row.try_get("id")?);
    }
    let mut pruned = Pruned::default();
    for ((tenant, agent), (from, until, ids)) in &agents {
        let sql = format!(
            "DELETE FROM actions WHERE tenant_id = $1 AND agent_id = $2 AND at >= $3 \
             AND at <= $4 AND run_id IN ({})",
            placeholders(5, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant)
            .bind(agent)
            .bind(from)
            .bind(until.saturating_add(CLOCK_SKEW_MS));
        for id in ids {
            query = query.bind(id);
        }
        pruned.actions += query.execute(&mut *conn).await?.rows_affected();
    }
    let ids: Vec<&str> = agents
        .values()
        .flat_map(|(_, _, ids)| ids)
        .map(String::as_str)
        .collect();
    if !ids.is_empty() {
        let sql = format!(
            "DELETE FROM runs WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in &ids {
            query = query.bind(*id);
        }
        pruned.runs = query.execute(&mut *conn).await?.rows_affected();
    }
    Ok((pruned, rows.len() as u64 >= RUNS_PER_BATCH as u64))
}

/// Up to [`ROWS_PER_BATCH`] violations before `before` (the start of a 15-minute slot); the
/// last batch also deletes the Monitor's counts of the slots before it, so counts and events
/// agree once it commits.
async fn violations(conn: &mut Connection, before: i64) -> Result<(Pruned, bool)> {
    let deleted = sqlx::query(
        "DELETE FROM violations WHERE id IN \
         (SELECT id FROM violations WHERE at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(ROWS_PER_BATCH)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let more = deleted >= ROWS_PER_BATCH as u64;
    if !more {
        // `before` starts a slot of every grain (`retention::prune`).
        for grain in &crate::commit::GRAINS {
            for table in [grain.tenants, grain.policies] {
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE slot < $1"
                )))
                .bind(before)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    let pruned = Pruned {
        violations: deleted,
        ..Pruned::default()
    };
    Ok((pruned, more))
}

/// The oldest entries of `chain`, up to [`ROWS_PER_BATCH`], as long as each was written before
/// `before`: a chain loses only a prefix. The anchor records the last one removed, in the same
/// transaction, so the chain is verified from there on.
async fn audit(conn: &mut Connection, chain: &str, before: i64) -> Result<(Pruned, bool)> {
    let rows =
        sqlx::query("SELECT seq, at, hash FROM audit_log WHERE chain = $1 ORDER BY seq LIMIT $2")
            .bind(chain)
            .bind(ROWS_PER_BATCH)
            .fetch_all(&mut *conn)
            .await?;
    let mut last: Option<(i64, String)> = None;
    let mut stopped = false;
    for row in &rows {
        let at: i64 = row.try_get("at")?;
        if at >= before {
            stopped = true;
            break;
        }
        last = Some((row.try_get("seq")?, row.try_get("hash")?));
    }
    let Some((seq, hash)) = last else {
        return Ok((Pruned::default(), false));
    };
    sqlx::query(
        "INSERT INTO audit_anchors (chain, seq, hash) VALUES ($1, $2, $3) \
         ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(chain)
    .bind(seq)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    let deleted = sqlx::query("DELETE FROM audit_log WHERE chain = $1 AND seq <= $2")
        .bind(chain)
        .bind(seq)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let pruned = Pruned {
        audit_entries: deleted,
        ..Pruned::default()
    };
    Ok((
        pruned,
        !stopped && rows.len() as u64 >= ROWS_PER_BATCH as u64,
    ))
}

/// `$first, ..., $(first + n - 1)`.
fn placeholders(first: usize, n: usize) -> String {
    let mut sql = String::with_capacity(n * 6);
    for i in first..first + n {
        let sep = if i == first { "" } else { ", " };
        let _ = write!(sql, "{sep}${i}");
    }
    sql
}
