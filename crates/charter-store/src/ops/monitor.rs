//! The Monitor's reads: violation events, listed and counted per bucket.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sqlx::{Pool, Row};

use super::query::{Filters, Listing, newest_first, tenant_filters};
use super::{Db, Result, ms, time, to_u32};
use crate::commit::{GRAINS, Grain, SLOT_MS};
use crate::error::StoreError;
use crate::model::Principal;
use crate::runs::{ActionSummary, Page, ViolationEvent, ViolationFilter};

pub(crate) fn violation_row(row: &<Db as sqlx::Database>::Row) -> Result<ViolationEvent> {
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

/// When the first event `filter` selects happened, `None` if it selects none: the start of
/// an all-time chart. One read through the index of the events' time (by tenant, by policy,
/// or all of them), not a count of every event.
pub(crate) async fn first_violation_at(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
) -> Result<Option<Timestamp>> {
    let f = violation_filters(pool, principal, filter).await?;
    let sql = format!("SELECT MIN(at) AS first FROM violations WHERE {}", f.sql());
    let row = f.query(sql).fetch_one(pool).await?;
    row.try_get::<Option<i64>, _>("first")?
        .map(time)
        .transpose()
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
    let mut counts = BTreeMap::new();
    match slots_of(filter, bucket_ms) {
        // Whole slots from the counts tables, the partial slots at either end from the events.
        Some((first, end)) => {
            if let Some(since) = filter.since
                && since < first
            {
                let head = ViolationFilter {
                    since: Some(since),
                    until: Some(first),
                    ..filter.clone()
                };
                count_events(pool, principal, &head, bucket_ms, &mut counts).await?;
            }
            if let (Some(end), Some(until)) = (end, filter.until)
                && end < until
            {
                let tail = ViolationFilter {
                    since: Some(end),
                    until: Some(until),
                    ..filter.clone()
                };
                count_events(pool, principal, &tail, bucket_ms, &mut counts).await?;
            }
            count_slots(pool, principal, filter, bucket_ms, first, end, &mut counts).await?;
        }
        None => count_events(pool, principal, filter, bucket_ms, &mut counts).await?,
    }
    if counts.len() > MAX_BUCKETS {
        return Err(StoreError::invalid(
            "bucket",
            format!("more than {MAX_BUCKETS} buckets: use a larger bucket or a shorter range"),
        ));
    }
    counts
        .into_iter()
        .map(|(start, n)| Ok((time(start)?, n)))
        .collect()
}

/// Whether the counts per slot (`violation_counts`, `violation_policy_counts`, kept by the
/// group commit: `commit::SlotCounts`) can answer `filter` in buckets of `bucket_ms`: whole slots, and no filter but
/// tenant and policy. Then the whole slots they answer, as (first slot, end: the slot after the last,
/// `None` for no end); the events before the first and from the end on are counted.
fn slots_of(filter: &ViolationFilter, bucket_ms: i64) -> Option<(Timestamp, Option<Timestamp>)> {
    let plain = filter.lineage_id.is_none()
        && filter.agent_id.is_none()
        && filter.run_id.is_none()
        && filter.rule_type.is_none()
        && filter.decision.is_none();
    if !plain || bucket_ms % SLOT_MS != 0 {
        return None;
    }
    // The first whole slot at or after `since`, the last ending at or before `until`.
    let first = filter
        .since
        .map_or(0, |s| (ms(s) + SLOT_MS - 1).div_euclid(SLOT_MS) * SLOT_MS);
    let end = filter.until.map(|u| ms(u).div_euclid(SLOT_MS) * SLOT_MS);
    if end.is_some_and(|end| end <= first) {
        return None;
    }
    Some((
        Timestamp::from_millisecond(first).ok()?,
        end.map(Timestamp::from_millisecond).transpose().ok()?,
    ))
}

/// Adds the events `filter` selects to `counts`, per bucket.
async fn count_events(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
    bucket_ms: i64,
    counts: &mut BTreeMap<i64, u64>,
) -> Result<()> {
    let f = violation_filters(pool, principal, filter).await?;
    // The bucket width is a number we checked, written into the text so the filters keep
    // their placeholders in order.
    let sql = format!(
        "SELECT (at / {bucket_ms}) * {bucket_ms} AS start, COUNT(*) AS n FROM violations \
         WHERE {} GROUP BY 1 ORDER BY 1 LIMIT {}",
        f.sql(),
        MAX_BUCKETS + 1
    );
    add_rows(&f.query(sql).fetch_all(pool).await?, counts)
}

/// Adds the counts of the slots from `first` to `end` (excluded) to `counts`, per bucket:
/// `filter`'s tenant and policy only (`slots_of` said it has no other). Buckets made of
/// 3-hour slots sum those, and the 15-minute slots only at the range's edges.
async fn count_slots(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
    bucket_ms: i64,
    first: Timestamp,
    end: Option<Timestamp>,
    counts: &mut BTreeMap<i64, u64>,
) -> Result<()> {
    let [fine, coarse] = &GRAINS;
    let (first, end) = (ms(first), end.map(ms));
    let sum = Sum {
        pool,
        principal,
        filter,
        bucket_ms,
    };
    if bucket_ms % coarse.ms == 0 {
        // The whole coarse slots inside the range.
        let inner = (first + coarse.ms - 1).div_euclid(coarse.ms) * coarse.ms;
        let inner_end = end.map(|end| end.div_euclid(coarse.ms) * coarse.ms);
        if inner_end.is_none_or(|inner_end| inner < inner_end) {
            sum.slots(fine, first, Some(inner), counts).await?;
            sum.slots(coarse, inner, inner_end, counts).await?;
            if let (Some(inner_end), Some(end)) = (inner_end, end) {
                sum.slots(fine, inner_end, Some(end), counts).await?;
            }
            return Ok(());
        }
    }
    sum.slots(fine, first, end, counts).await
}

/// What sums counts per bucket: the filter's tenant and policy, and the bucket's length.
struct Sum<'a> {
    pool: &'a Pool<Db>,
    principal: &'a Principal,
    filter: &'a ViolationFilter,
    bucket_ms: i64,
}

impl Sum<'_> {
    /// Adds the counts of `grain`'s slots from `first` to `end` (excluded) to `counts`.
    async fn slots(
        &self,
        grain: &Grain,
        first: i64,
        end: Option<i64>,
        counts: &mut BTreeMap<i64, u64>,
    ) -> Result<()> {
        if end.is_some_and(|end| end <= first) {
            return Ok(());
        }
        let mut f = Filters::default();
        tenant_filters(&mut f, self.principal, self.filter.tenant_id.as_deref());
        f.text("policy_id = ?", self.filter.policy_id.as_deref());
        f.int("slot >= ?", Some(first));
        f.int("slot < ?", end);
        let table = if self.filter.policy_id.is_some() {
            grain.policies
        } else {
            grain.tenants
        };
        let bucket_ms = self.bucket_ms;
        let sql = format!(
            "SELECT (slot / {bucket_ms}) * {bucket_ms} AS start, CAST(SUM(n) AS BIGINT) AS n \
             FROM {table} WHERE {} GROUP BY 1 ORDER BY 1 LIMIT {}",
            f.sql(),
            MAX_BUCKETS + 1
        );
        add_rows(&f.query(sql).fetch_all(self.pool).await?, counts)
    }
}

fn add_rows(rows: &[<Db as sqlx::Database>::Row], counts: &mut BTreeMap<i64, u64>) -> Result<()> {
    for r in rows {
        let start: i64 = r.try_get("start")?;
        let n: i64 = r.try_get("n")?;
        *counts.entry(start).or_default() += u64::try_from(n).unwrap_or(0);
    }
    Ok(())
}
