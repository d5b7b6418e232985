//! How a group commit decides one check against its run and the batch's counters: the rules
//! both group commits (`ops::commit_checks` and SQLite's `sqlite/commit`) share.

use charter_core::engine::{Decision, Outcome, Violation};
use charter_core::limits::Settle;
use serde_json::{Value, json};

use crate::Result;
use crate::book::Book;
use crate::runs::{CheckOutcome, PendingCheck, RunStatus};

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

/// What a batch does with one check.
pub(crate) enum Step {
    /// Answered from its run (missing, ended or halted): nothing is recorded.
    Refused(CheckOutcome),
    /// Decided: the check is recorded with this decision. `halting` holds the violations that
    /// halt its run, to be stored on the run.
    Decided {
        decision: Decision,
        halting: Option<Value>,
    },
}

/// Decides `check` against its run (`None`: no such run) and the batch's counters, settling its
/// claims in `book`: only an action no other rule refuses consumes budget. A halt is noted on
/// `run`, so the run's later checks in the same batch are refused as any later one is. The
/// evaluation stays whole (the writer may retry the check alone).
pub(crate) fn step(
    run: Option<&mut RunState>,
    book: &mut Book,
    check: &PendingCheck,
) -> Result<Step> {
    let Some(run) = run else {
        return Ok(Step::Refused(CheckOutcome::NoRun));
    };
    if run.ended {
        return Ok(Step::Refused(CheckOutcome::Ended));
    }
    if let Some(halted_by) = &run.halted_by {
        return Ok(Step::Refused(CheckOutcome::Halted {
            halted_by: halted_by.clone(),
        }));
    }
    let mode = if check.evaluation.violations.is_empty() {
        Settle::CommitIfWithin
    } else {
        Settle::CheckOnly
    };
    let exceeded = book.settle(&check.evaluation.claims, check.at, mode);
    let decision = check.evaluation.decision(&exceeded);
    let halting = if decision.outcome == Outcome::Halt {
        let halting: Vec<&Violation> = decision
            .violations
            .iter()
            .filter(|v| v.outcome == Outcome::Halt)
            .collect();
        let halting = serde_json::to_value(&halting)?;
        run.halted_by = Some(halting.clone());
        Some(halting)
    } else {
        None
    };
    Ok(Step::Decided { decision, halting })
}
