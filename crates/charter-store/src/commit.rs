//! The group commit of checks, written once: what a batch reads, how it decides each check,
//! the rows it writes and the statements that write them. Each backend only executes it:
//! `ops::commit_checks` through sqlx (PostgreSQL, an in-memory SQLite database) and
//! `sqlite/commit` through rusqlite (a SQLite file).
//!
//! Its counters are seeded before (`crate::counting`). One batch is one transaction: read the
//! batch's runs (locked on PostgreSQL, in byte order of their ids), lock its subjects
//! (PostgreSQL, shared), lock and load its counters (in key order),
//! read its subjects' watched counters (`crate::counting`), [`plan`] every check in arrival
//! order, then write the halts, the recorded actions, their violation events, what they add to
//! the Monitor's counts per slot ([`SlotCounts`]) and the counters' additions, and commit. A check whose run has ended or halted (here or on another node) is
//! answered from the run and records nothing; budget is spent if and only if the check is
//! recorded as allowed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use charter_core::engine::{Outcome, Violation};
use serde_json::{Value, json};

use crate::Result;
use crate::book::Book;
use crate::counting::Watch;
use crate::runs::{ActionSummary, CheckOutcome, PendingCheck, RunStatus, ViolationEvent};

/// A batch's runs (and subjects) are read in chunks of at most this many ids.
pub(crate) const RUNS_PER_READ: usize = 64;

/// The counter rows a claim counts (`$1` the counter, `$2` the first bucket).
pub(crate) const LOAD_COUNTER: &str =
    "SELECT bucket, amount FROM limit_counters WHERE counter = $1 AND bucket >= $2";

/// Marks a run halted (`$1` the violations that halted it, as JSON text; `$2` the run).
pub(crate) const HALT_RUN: &str = "UPDATE runs SET status = 'halted', halted_by = $1 WHERE id = $2";

/// Adds to a counter's bucket (`$1` counter, `$2` bucket, `$3` amount).
pub(crate) const ADD_TO_COUNTER: &str = "INSERT INTO limit_counters (counter, bucket, amount) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (counter, bucket) DO UPDATE SET amount = limit_counters.amount + excluded.amount";

/// Drops the buckets of a counter that can no longer count (`$1` counter, `$2` first kept).
pub(crate) const PRUNE_COUNTER: &str =
    "DELETE FROM limit_counters WHERE counter = $1 AND bucket < $2";

/// The columns of a recorded action, in the order of [`action_row`].
pub(crate) const ACTION_TABLE: Table = Table {
    name: "actions",
    columns: &[
        "id",
        "run_id",
        "tenant_id",
        "agent_id",
        "at",
        "kind",
        "input",
        "decision",
        "policy_set_hash",
    ],
};

/// The columns of a violation event, in the order of [`violation_row`].
pub(crate) const VIOLATION_TABLE: Table = Table {
    name: "violations",
    columns: &[
        "id",
        "at",
        "decision",
        "policy_id",
        "policy_name",
        "policy_version",
        "lineage_id",
        "rule_id",
        "rule_type",
        "tenant_id",
        "agent_id",
        "run_id",
        "action_id",
        "action_kind",
        "action_summary",
        "matching_input",
        "message",
    ],
};

/// A table the commit inserts into.
pub(crate) struct Table {
    name: &'static str,
    columns: &'static [&'static str],
}

impl Table {
    /// `INSERT INTO name (columns) VALUES ($1, ...), (...)` for `rows` rows.
    pub(crate) fn insert(&self, rows: usize) -> String {
        let width = self.columns.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.name,
            self.columns.join(", ")
        );
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..width {
                let sep = if column == 0 { "" } else { ", " };
                let _ = write!(sql, "{sep}${}", row * width + column + 1);
            }
            sql.push(')');
        }
        sql
    }
}

/// The statement reading `ids` runs' states (padded: see [`RUNS_PER_READ`]); `lock` is
/// `FOR UPDATE` on PostgreSQL, `order` its byte-order collation.
pub(crate) fn read_runs(ids: usize, order: &str, lock: &str) -> String {
    let mut sql = String::from("SELECT id, status, ended_at, halted_by FROM runs WHERE id IN (");
    for i in 1..=ids {
        let sep = if i == 1 { "" } else { ", " };
        let _ = write!(sql, "{sep}${i}");
    }
    // Locked in the byte order the chunks were cut in (PostgreSQL's default collation may
    // order ids otherwise), so two nodes always lock shared runs in the same order.
    let _ = write!(sql, ") ORDER BY id{order}{lock}");
    sql
}

/// The ids of a batch's runs, sorted and distinct, in the chunks [`read_runs`] reads.
pub(crate) fn run_chunks(batch: &[PendingCheck]) -> Vec<Vec<&str>> {
    let mut ids: Vec<&str> = batch.iter().map(|c| c.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    padded_chunks(&ids)
}

/// `values` (sorted, distinct) in chunks of at most [`RUNS_PER_READ`], each padded to a power
/// of two by repeating its last value, so a prepared statement is kept per size, not per count.
pub(crate) fn padded_chunks<'a>(values: &[&'a str]) -> Vec<Vec<&'a str>> {
    values
        .chunks(RUNS_PER_READ)
        .map(|chunk| {
            let mut chunk = chunk.to_vec();
            if let Some(&last) = chunk.last() {
                chunk.resize(chunk.len().next_power_of_two(), last);
            }
            chunk
        })
        .collect()
}

/// A value bound to a statement: what each backend knows how to bind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    /// Text.
    Text(&'a str),
    /// Text or NULL.
    MaybeText(Option<&'a str>),
    /// An integer.
    Int(i64),
}

/// The values of a recorded action, in [`ACTION_TABLE`]'s order.
pub(crate) fn action_row<'a>(check: &'a PendingCheck, recorded: &'a Recorded) -> [Param<'a>; 9] {
    [
        Param::Text(&check.id),
        Param::Text(&check.run_id),
        Param::Text(&check.tenant_id),
        Param::Text(&check.agent_id),
        Param::Int(check.at.as_millisecond()),
        Param::Text(check.action.kind().as_str()),
        Param::Text(&recorded.input),
        Param::Text(recorded.decision.as_str()),
        Param::Text(&check.policy_set_hash),
    ]
}

/// The values of a violation event, in [`VIOLATION_TABLE`]'s order.
pub(crate) fn violation_row(event: &ViolationEvent) -> [Param<'_>; 17] {
    [
        Param::Text(&event.id),
        Param::Int(event.at.as_millisecond()),
        Param::Text(&event.decision),
        Param::Text(&event.policy_id),
        Param::Text(&event.policy_name),
        Param::Int(i64::from(event.policy_version)),
        Param::Text(&event.lineage_id),
        Param::Text(&event.rule_id),
        Param::Text(&event.rule_type),
        Param::Text(&event.tenant_id),
        Param::Text(&event.agent_id),
        Param::Text(&event.run_id),
        Param::Text(&event.action_id),
        Param::Text(&event.action.kind),
        Param::Text(&event.action.summary),
        Param::MaybeText(event.matching_input.as_deref()),
        Param::Text(&event.message),
    ]
}

/// The length of a slot of the Monitor's finest counts (`violation_counts`,
/// `violation_policy_counts`): 15 minutes of Unix time.
pub(crate) const SLOT_MS: i64 = 900_000;

/// A grain of the Monitor's counts: the length of its slots and the tables that keep them.
pub(crate) struct Grain {
    /// The length of a slot, in milliseconds of Unix time (slots start at its multiples).
    pub(crate) ms: i64,
    /// The table of counts per tenant and slot.
    pub(crate) tenants: &'static str,
    /// The table of counts per policy, tenant and slot.
    pub(crate) policies: &'static str,
    /// Adds `$3` events to tenant `$1`'s count of slot `$2` (the same text on both backends).
    count_tenant: &'static str,
    /// Adds `$4` events to policy `$1`'s count in tenant `$2` of slot `$3`.
    count_policy: &'static str,
}

/// A [`Grain`] of slots of `$ms` kept in the tables `$tenants` and `$policies`, with their
/// upserts written from the names once.
macro_rules! grain {
    ($ms:expr, $tenants:literal, $policies:literal) => {
        Grain {
            ms: $ms,
            tenants: $tenants,
            policies: $policies,
            count_tenant: concat!(
                "INSERT INTO ",
                $tenants,
                " (tenant_id, slot, n) VALUES ($1, $2, $3) ",
                "ON CONFLICT (tenant_id, slot) DO UPDATE SET n = ",
                $tenants,
                ".n + excluded.n"
            ),
            count_policy: concat!(
                "INSERT INTO ",
                $policies,
                " (policy_id, tenant_id, slot, n) ",
                "VALUES ($1, $2, $3, $4) ON CONFLICT (policy_id, tenant_id, slot) ",
                "DO UPDATE SET n = ",
                $policies,
                ".n + excluded.n"
            ),
        }
    };
}

/// The grains the group commit keeps, finest first: 15 minutes, which every chart bucket of
/// 15 minutes or more is made of, and 3 hours, which the buckets of 3 hours or more are made
/// of (a chart of a month sums 240 slots a tenant instead of 2,880).
pub(crate) const GRAINS: [Grain; 2] = [
    grain!(SLOT_MS, "violation_counts", "violation_policy_counts"),
    grain!(
        12 * SLOT_MS,
        "violation_counts_3h",
        "violation_policy_counts_3h"
    ),
];

/// What a batch's violation events add to the Monitor's counts per slot, in every grain, each
/// count once. The commit writes them in [`SlotCounts::upserts`]' order, so on PostgreSQL two
/// batches lock the count rows they share in the same order and never wait on each other in
/// a cycle (a trigger per inserted row would lock them in the batch's order, which can
/// deadlock two nodes).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotCounts {
    /// Per grain, in [`GRAINS`]' order: `(tenant, slot) → events`.
    pub(crate) tenants: [BTreeMap<(String, i64), i64>; 2],
    /// Per grain: `(policy, tenant, slot) → events`.
    pub(crate) policies: [BTreeMap<(String, String, i64), i64>; 2],
}

impl SlotCounts {
    /// The counts of `events`.
    pub(crate) fn of<'a>(events: impl IntoIterator<Item = &'a ViolationEvent>) -> SlotCounts {
        let mut counts = SlotCounts::default();
        for event in events {
            for (k, grain) in GRAINS.iter().enumerate() {
                let slot = event.at.as_millisecond().div_euclid(grain.ms) * grain.ms;
                *counts.tenants[k]
                    .entry((event.tenant_id.clone(), slot))
                    .or_default() += 1;
                *counts.policies[k]
                    .entry((event.policy_id.clone(), event.tenant_id.clone(), slot))
                    .or_default() += 1;
            }
        }
        counts
    }

    /// The statements that add these counts, with their parameters, in the one order every
    /// batch writes them: grain by grain, tenants' counts before policies', each in key order.
    pub(crate) fn upserts(&self) -> Vec<(&'static str, Vec<Param<'_>>)> {
        let mut out = Vec::new();
        for (k, grain) in GRAINS.iter().enumerate() {
            for ((tenant, slot), n) in &self.tenants[k] {
                out.push((
                    grain.count_tenant,
                    vec![Param::Text(tenant), Param::Int(*slot), Param::Int(*n)],
                ));
            }
            for ((policy, tenant, slot), n) in &self.policies[k] {
                out.push((
                    grain.count_policy,
                    vec![
                        Param::Text(policy),
                        Param::Text(tenant),
                        Param::Int(*slot),
                        Param::Int(*n),
                    ],
                ));
            }
        }
        out
    }
}

/// A run's state as a batch of checks sees it.
pub(crate) struct RunState {
    ended: bool,
    halted_by: Option<Value>,
}

impl RunState {
    /// From the stored row: its status, whether it has ended, and its `halted_by` text.
    pub(crate) fn read(status: &str, ended: bool, halted_by: Option<&str>) -> Result<RunState> {
        let halted_by = if status == RunStatus::Halted.as_str() {
            Some(match halted_by {
                Some(text) => serde_json::from_str(text)?,
                None => json!([]),
            })
        } else {
            None
        };
        Ok(RunState { ended, halted_by })
    }
}

/// A decided check as it is recorded.
pub(crate) struct Recorded {
    /// The batch index of the check.
    pub(crate) check: usize,
    /// Its decision.
    pub(crate) decision: Outcome,
    /// The action as stored (its JSON text).
    pub(crate) input: String,
}

/// What a batch writes, decided before it writes anything.
pub(crate) struct Plan {
    /// One outcome per check, in order; decided ones carry their violation events.
    pub(crate) outcomes: Vec<CheckOutcome>,
    /// Runs halted by this batch: (batch index of the halting check, the violations that halt
    /// its run as JSON text).
    pub(crate) halts: Vec<(usize, String)>,
    /// The decided checks, recorded.
    pub(crate) recorded: Vec<Recorded>,
}

impl Plan {
    /// The violation events to write, in order.
    pub(crate) fn events(&self) -> impl Iterator<Item = &ViolationEvent> {
        self.outcomes.iter().flat_map(|outcome| match outcome {
            CheckOutcome::Decided { events, .. } => events.as_slice(),
            _ => &[],
        })
    }
}

/// Decides every check of `batch` in arrival order against its run (missing from `runs`: no
/// such run) and the batch's counters, settling their claims in `book` through charter-core's
/// one decision (`Evaluation::settle`); an allowed one also counts on the watched counters of
/// its subjects (`watch`, see `crate::counting`). A halt is noted on the run, so the run's later checks
/// in the same batch are refused as any later one is. The evaluations stay whole (the writer
/// may retry a check alone).
pub(crate) fn plan(
    batch: &[PendingCheck],
    runs: &mut HashMap<String, RunState>,
    book: &mut Book,
    watch: &Watch,
) -> Result<Plan> {
    let mut plan = Plan {
        outcomes: Vec::with_capacity(batch.len()),
        halts: Vec::new(),
        recorded: Vec::with_capacity(batch.len()),
    };
    for (index, check) in batch.iter().enumerate() {
        let Some(run) = runs.get_mut(&check.run_id) else {
            plan.outcomes.push(CheckOutcome::NoRun);
            continue;
        };
        if run.ended {
            plan.outcomes.push(CheckOutcome::Ended);
            continue;
        }
        if let Some(halted_by) = &run.halted_by {
            plan.outcomes.push(CheckOutcome::Halted {
                halted_by: halted_by.clone(),
            });
            continue;
        }
        let decision = check.evaluation.settle(book, check.at);
        if decision.outcome == Outcome::Allow {
            watch.record(check, book);
        }
        if decision.outcome == Outcome::Halt {
            let halting = serde_json::to_value(decision.halting().collect::<Vec<&Violation>>())?;
            plan.halts.push((index, halting.to_string()));
            run.halted_by = Some(halting);
        }
        plan.recorded.push(Recorded {
            check: index,
            decision: decision.outcome,
            input: serde_json::to_string(&check.action)?,
        });
        let events = if decision.violations.is_empty() {
            Vec::new()
        } else {
            // What the Monitor shows of the action, once per refused action.
            let shown = ActionSummary {
                kind: check.action.kind().as_str().to_owned(),
                summary: check.action.summary(),
            };
            decision
                .violations
                .iter()
                .map(|v| ViolationEvent::of(check, v, &shown))
                .collect()
        };
        plan.outcomes
            .push(CheckOutcome::Decided { decision, events });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tenant: &str, policy: &str, at_ms: i64) -> ViolationEvent {
        ViolationEvent {
            id: "vio_1".into(),
            at: jiff::Timestamp::from_millisecond(at_ms).unwrap(),
            decision: "block".into(),
            policy_id: policy.into(),
            policy_name: "p".into(),
            policy_version: 1,
            lineage_id: "lin_1".into(),
            rule_id: "r1".into(),
            rule_type: "tool".into(),
            tenant_id: tenant.into(),
            agent_id: "a".into(),
            run_id: "run_1".into(),
            action_id: "act_1".into(),
            action: ActionSummary {
                kind: "tool_call".into(),
                summary: "x".into(),
            },
            matching_input: None,
            message: "m".into(),
        }
    }

    #[test]
    fn a_batch_adds_to_each_count_once_in_key_order() {
        let events = [
            event("globex", "pol_b", 1_800_000),
            event("acme", "pol_a", 899_999),
            event("globex", "pol_a", 1_800_001),
            event("acme", "pol_a", 0),
            event("acme", "pol_a", 900_000),
            event("acme", "pol_a", 10_800_000),
        ];
        let counts = SlotCounts::of(&events);
        let [fine, coarse] = &counts.tenants;
        assert_eq!(
            fine.clone().into_iter().collect::<Vec<_>>(),
            [
                (("acme".to_owned(), 0), 2),
                (("acme".to_owned(), 900_000), 1),
                (("acme".to_owned(), 10_800_000), 1),
                (("globex".to_owned(), 1_800_000), 2),
            ]
        );
        assert_eq!(
            coarse.clone().into_iter().collect::<Vec<_>>(),
            [
                (("acme".to_owned(), 0), 3),
                (("acme".to_owned(), 10_800_000), 1),
                (("globex".to_owned(), 0), 2),
            ]
        );
        let [fine, coarse] = &counts.policies;
        assert_eq!(
            fine.clone().into_iter().collect::<Vec<_>>(),
            [
                (("pol_a".to_owned(), "acme".to_owned(), 0), 2),
                (("pol_a".to_owned(), "acme".to_owned(), 900_000), 1),
                (("pol_a".to_owned(), "acme".to_owned(), 10_800_000), 1),
                (("pol_a".to_owned(), "globex".to_owned(), 1_800_000), 1),
                (("pol_b".to_owned(), "globex".to_owned(), 1_800_000), 1),
            ]
        );
        assert_eq!(
            coarse.clone().into_iter().collect::<Vec<_>>(),
            [
                (("pol_a".to_owned(), "acme".to_owned(), 0), 3),
                (("pol_a".to_owned(), "acme".to_owned(), 10_800_000), 1),
                (("pol_a".to_owned(), "globex".to_owned(), 0), 1),
                (("pol_b".to_owned(), "globex".to_owned(), 0), 1),
            ]
        );
        // Written grain by grain, tenants before policies, each in key order.
        let tables: Vec<&str> = counts
            .upserts()
            .iter()
            .map(|(sql, _)| sql.split_whitespace().nth(2).unwrap_or_default())
            .collect();
        let expected: Vec<&str> = [
            ("violation_counts", 4),
            ("violation_policy_counts", 5),
            ("violation_counts_3h", 3),
            ("violation_policy_counts_3h", 4),
        ]
        .into_iter()
        .flat_map(|(table, n)| std::iter::repeat_n(table, n))
        .collect();
        assert_eq!(tables, expected);
    }

    #[test]
    fn inserts_number_their_placeholders_row_by_row() {
        let table = Table {
            name: "t",
            columns: &["a", "b"],
        };
        assert_eq!(table.insert(1), "INSERT INTO t (a, b) VALUES ($1, $2)");
        assert_eq!(
            table.insert(2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(
            read_runs(2, " COLLATE \"C\"", " FOR UPDATE"),
            "SELECT id, status, ended_at, halted_by FROM runs WHERE id IN ($1, $2) \
             ORDER BY id COLLATE \"C\" FOR UPDATE"
        );
    }
}
