//! The Monitor's reads: violation events, listed and counted per bucket.

use jiff::Timestamp;
use sqlx::{Pool, Row};

use super::query::{Filters, Listing, newest_first, tenant_filters};
use super::{Db, Result, ms, time, to_u32};
use crate::error::StoreError;
use crate::model::Principal;
use crate::runs::{ActionSummary, Page, ViolationEvent, ViolationFilter};

fn violation_row(row: &<Db as sqlx::Database>::Row) -> Result<ViolationEvent> {
    Ok(ViolationEvent {
        id: row.try_get("id")?,
        at: time(row.try_get("at")?)?,
        decision: row.try_get("decision")?,
        policy_id: row.try_get("policy_id")?,
        policy_name: row.try_get("policy_name")?,
        policy_version: to_u32(row.try_get("policy_version")?, "policy_version")?,
        lineage_id: row.try_get("lineage_id")?,
        rule_id: row.try_get("rule_id")?,
        rule_type: row.try_get("rule_type")?,
        tenant_id: row.try_get("tenant_id")?,
        agent_id: row.try_get("agent_id")?,
        run_id: row.try_get("run_id")?,
        action_id: row.try_get("action_id")?,
        action: ActionSummary {
            kind: row.try_get("action_kind")?,
            summary: row.try_get("action_summary")?,
        },
        matching_input: row.try_get("matching_input")?,
        message: row.try_get("message")?,
    })
}

async fn violation_filters(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
) -> Result<Filters> {
    let mut f = Filters::default();
    tenant_filters(&mut f, principal, filter.tenant_id.as_deref());
    f.text("policy_id = ?", filter.policy_id.as_deref());
    f.text("lineage_id = ?", filter.lineage_id.as_deref());
    f.text("agent_id = ?", filter.agent_id.as_deref());
    if let Some(run_id) = filter.run_id.as_deref() {
        // A run's violations are its agent's, from its start on: bounded so the agent's
        // index finds them (there is no index by run). The caller's tenant filter above still
        // decides whether it may see them.
        let run = sqlx::query("SELECT tenant_id, agent_id, started_at FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(pool)
            .await?;
        match run {
            Some(run) => {
                let tenant: String = run.try_get("tenant_id")?;
                let agent: String = run.try_get("agent_id")?;
                f.text("tenant_id = ?", Some(&tenant));
                f.text("agent_id = ?", Some(&agent));
                f.int("at >= ?", Some(run.try_get("started_at")?));
            }
            // No such run: it has no violations.
            None => f.int("0 = ?", Some(1)),
        }
        f.text("run_id = ?", Some(run_id));
    }
    f.text("rule_type = ?", filter.rule_type.as_deref());
    f.text("decision = ?", filter.decision.as_deref());
    f.int("at >= ?", filter.since.map(ms));
    f.int("at < ?", filter.until.map(ms));
    Ok(f)
}

const VIOLATIONS: Listing<ViolationEvent> = Listing {
    table: "violations",
    time: "at",
    row: violation_row,
    key: |v| (v.at.as_millisecond(), v.id.as_str()),
};

pub(crate) async fn list_violations(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<ViolationEvent>> {
    let f = violation_filters(pool, principal, filter).await?;
    newest_first(pool, &VIOLATIONS, f, cursor, limit).await
}

/// The most buckets one stats call returns.
const MAX_BUCKETS: usize = 10_000;

pub(crate) async fn violation_stats(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
    bucket_ms: i64,
) -> Result<Vec<(Timestamp, u64)>> {
    if bucket_ms <= 0 {
        return Err(StoreError::invalid(
            "bucket",
            "a bucket is a positive duration",
        ));
    }
    let f = violation_filters(pool, principal, filter).await?;
    // The bucket width is a number we checked, written into the text so the filters keep
    // their placeholders in order.
    let sql = format!(
        "SELECT (at / {bucket_ms}) * {bucket_ms} AS start, COUNT(*) AS n FROM violations \
         WHERE {} GROUP BY 1 ORDER BY 1 LIMIT {}",
        f.sql(),
        MAX_BUCKETS + 1
    );
    let rows = f.query(sql).fetch_all(pool).await?;
    if rows.len() > MAX_BUCKETS {
        return Err(StoreError::invalid(
            "bucket",
            format!("more than {MAX_BUCKETS} buckets: use a larger bucket or a shorter range"),
        ));
    }
    rows.iter()
        .map(|r| {
            let start: i64 = r.try_get("start")?;
            let n: i64 = r.try_get("n")?;
            Ok((time(start)?, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}
