//! The group commit of checks: settling, deciding and recording a batch in one transaction.

use charter_core::engine::Violation;
use sqlx::{Pool, QueryBuilder, Row};

use super::limits::{load_counters, store_counters};
use super::{BYTE_ORDER, Db, FOR_UPDATE, Result, Tx, begin, ms};
use crate::book::Book;
use crate::ids;
use crate::runs::{ActionRecord, CheckOutcome, PendingCheck};
use crate::settle::{RunState, Step, step};

/// Rows per multi-row statement. Every statement is a round trip (on SQLite, to its
/// connection's thread): a batch of checks is written in a handful of statements, and the
/// chunking keeps the number of distinct statement texts (each prepared once) small.
const ROWS_PER_STATEMENT: usize = 64;

/// The state of the runs of `ids` (sorted, distinct), locked on PostgreSQL in id order.
async fn run_states(
    tx: &mut Tx,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, RunState>> {
    let mut states = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "SELECT id, status, ended_at, halted_by FROM runs WHERE id IN (",
        );
        let mut list = query.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        // Locked in the byte order the chunks were cut in (PostgreSQL's default collation
        // may order ids otherwise), so two nodes always lock shared runs in the same order.
        query.push(format_args!(") ORDER BY id{BYTE_ORDER}{FOR_UPDATE}"));
        for row in query.build().fetch_all(&mut **tx).await? {
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

/// A check decided in a batch, before it is written.
struct Decided<'a> {
    check: &'a PendingCheck,
    decision: charter_core::engine::Decision,
    violation_ids: Vec<String>,
}

/// Settles, decides and records a batch of evaluated checks in one transaction (the group
/// commit). Each check's run is read first (and locked, on PostgreSQL), so a check racing the
/// end or the halt of its run is answered from the run's state and records nothing; the limit
/// counters of the whole batch are locked and loaded once, settled in memory in arrival order,
/// and written back together: exact across concurrent checks and nodes, and a check's spend is
/// counted if and only if the check is recorded as allowed.
pub(crate) async fn commit_checks(
    pool: &Pool<Db>,
    batch: &[PendingCheck],
) -> Result<Vec<CheckOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = begin(pool).await?;
    let mut run_ids: Vec<&str> = batch.iter().map(|c| c.run_id.as_str()).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    let mut runs = run_states(&mut tx, &run_ids).await?;
    let mut book = Book::default();
    let wanted = Book::wanted(batch.iter().map(|c| (c.evaluation.claims.as_slice(), c.at)));
    load_counters(&mut tx, &mut book, wanted).await?;
    // Decided checks are written together after the loop; the others are answered from
    // their run.
    let mut decided: Vec<Decided> = Vec::with_capacity(batch.len());
    let mut refused: Vec<Option<CheckOutcome>> = Vec::with_capacity(batch.len());
    for check in batch {
        let (decision, halting) = match step(runs.get_mut(&check.run_id), &mut book, check)? {
            Step::Refused(outcome) => {
                refused.push(Some(outcome));
                continue;
            }
            Step::Decided { decision, halting } => (decision, halting),
        };
        if let Some(halting) = halting {
            sqlx::query("UPDATE runs SET status = 'halted', halted_by = $1 WHERE id = $2")
                .bind(halting.to_string())
                .bind(&check.run_id)
                .execute(&mut *tx)
                .await?;
        }
        let violation_ids = decision
            .violations
            .iter()
            .map(|_| ids::new("vio"))
            .collect();
        decided.push(Decided {
            check,
            decision,
            violation_ids,
        });
        refused.push(None);
    }
    let records: Vec<ActionRecord<'_>> = decided
        .iter()
        .map(|d| ActionRecord {
            id: &d.check.id,
            run_id: &d.check.run_id,
            tenant_id: &d.check.tenant_id,
            agent_id: &d.check.agent_id,
            at: d.check.at,
            action: &d.check.action,
            decision: d.decision.outcome,
            violations: &d.decision.violations,
            policy_set_hash: &d.check.policy_set_hash,
            violation_ids: &d.violation_ids,
        })
        .collect();
    insert_actions(&mut tx, &records).await?;
    store_counters(&mut tx, &book).await?;
    tx.commit().await?;

    let mut decided = decided.into_iter();
    Ok(refused
        .into_iter()
        .filter_map(|slot| match slot {
            Some(outcome) => Some(outcome),
            None => decided.next().map(|d| CheckOutcome::Decided {
                decision: d.decision,
                violation_ids: d.violation_ids,
            }),
        })
        .collect())
}

/// Writes decided actions and their violation events, many rows per statement.
async fn insert_actions(tx: &mut Tx, records: &[ActionRecord<'_>]) -> Result<()> {
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let inputs = chunk
            .iter()
            .map(|r| serde_json::to_string(r.action))
            .collect::<std::result::Result<Vec<String>, _>>()?;
        let mut query = QueryBuilder::<Db>::new(
            "INSERT INTO actions (id, run_id, tenant_id, agent_id, at, kind, input, decision, policy_set_hash) ",
        );
        query.push_values(chunk.iter().zip(inputs), |mut row, (r, input)| {
            row.push_bind(r.id.to_owned())
                .push_bind(r.run_id.to_owned())
                .push_bind(r.tenant_id.to_owned())
                .push_bind(r.agent_id.to_owned())
                .push_bind(ms(r.at))
                .push_bind(r.action.kind().as_str())
                .push_bind(input)
                .push_bind(r.decision.as_str())
                .push_bind(r.policy_set_hash.to_owned());
        });
        query.build().execute(&mut **tx).await?;
    }
    // The action's summary once per refused action, not once per violation.
    let summaries: Vec<String> = records
        .iter()
        .map(|r| {
            if r.violations.is_empty() {
                String::new()
            } else {
                r.action.summary()
            }
        })
        .collect();
    let violations: Vec<(&ActionRecord<'_>, &Violation, &String, &String)> = records
        .iter()
        .zip(&summaries)
        .flat_map(|(r, summary)| {
            r.violations
                .iter()
                .zip(r.violation_ids)
                .map(move |(v, id)| (r, v, id, summary))
        })
        .collect();
    for chunk in violations.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "INSERT INTO violations (id, at, decision, policy_id, policy_name, policy_version, \
             lineage_id, rule_id, rule_type, tenant_id, agent_id, run_id, action_id, action_kind, \
             action_summary, matching_input, message) ",
        );
        query.push_values(chunk, |mut row, (r, v, id, summary)| {
            let policy = &v.source.policy;
            row.push_bind((*id).clone())
                .push_bind(ms(r.at))
                .push_bind(v.outcome.as_str())
                .push_bind(policy.id.as_str().to_owned())
                .push_bind(policy.name.clone())
                .push_bind(i64::from(policy.version))
                .push_bind(policy.lineage_id.as_str().to_owned())
                .push_bind(v.source.rule_id.as_str().to_owned())
                .push_bind(v.source.rule_type.as_str())
                .push_bind(r.tenant_id.to_owned())
                .push_bind(r.agent_id.to_owned())
                .push_bind(r.run_id.to_owned())
                .push_bind(r.id.to_owned())
                .push_bind(r.action.kind().as_str())
                .push_bind((*summary).clone())
                .push_bind(v.matching_input.clone())
                .push_bind(v.message.clone());
        });
        query.build().execute(&mut **tx).await?;
    }
    Ok(())
}
