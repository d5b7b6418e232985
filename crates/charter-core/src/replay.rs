//! Replay: run recorded actions through a policy with simulated limits and report what it
//! would have refused — the core of Validate (product.md §5).

use jiff::Timestamp;
use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::action::Action;
use crate::enforcer::Enforcer;
use crate::engine::{CompiledSet, Outcome, RunContext};
use crate::ids::RuleId;
use crate::limits::MemoryLimits;

/// The most samples a report keeps.
pub const MAX_SAMPLES: usize = 100;

/// One recorded action, as the store streams it: in time order across runs (ties by run id,
/// then position).
#[derive(Debug, Clone)]
pub struct RecordedAction {
    /// The run.
    pub run_id: String,
    /// The run's tenant.
    pub tenant_id: String,
    /// The run's agent.
    pub agent_id: String,
    /// When the run started.
    pub run_started_at: Timestamp,
    /// When the action happened.
    pub at: Timestamp,
    /// The action, or `None` when its input was not kept (counted "not replayable").
    pub action: Option<Action>,
    /// What was decided when it happened, if known.
    pub recorded: Option<Outcome>,
}

/// How many actions one rule would have refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RuleCount {
    /// The rule.
    pub rule_id: RuleId,
    /// Actions it would have refused.
    pub blocked: u64,
}

/// One refused action in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Sample {
    /// The run.
    pub run_id: String,
    /// The run's agent.
    pub agent_id: String,
    /// When the action happened.
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// The rule that would refuse it.
    pub rule_id: RuleId,
    /// `block` or `halt`.
    pub decision: Outcome,
    /// What matched, masked.
    pub matching_input: Option<String>,
    /// Whether it was refused when it happened.
    pub already_blocked: bool,
}

/// What a policy would have done to recorded history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReplayReport {
    /// Distinct runs seen.
    pub runs_scanned: u64,
    /// Actions seen.
    pub actions_scanned: u64,
    /// Runs with at least one refused action.
    pub runs_blocked: u64,
    /// Actions the policy would refuse (block or halt).
    pub actions_blocked: u64,
    /// Runs the policy would halt.
    pub runs_halted: u64,
    /// Refused actions that are halts, including every action after a halt.
    pub actions_halted: u64,
    /// Refused actions that were allowed when they happened.
    pub actions_new: u64,
    /// Refused actions that were refused then too.
    pub actions_already_blocked: u64,
    /// Actions whose input was not kept.
    pub actions_not_replayable: u64,
    /// Per rule, in the order given to the replay.
    pub by_rule: Vec<RuleCount>,
    /// The first refusals in replay order.
    pub samples: Vec<Sample>,
}

/// A replay in progress: feed it actions in order, then take its report.
#[derive(Debug)]
pub struct Replay<'s> {
    set: &'s CompiledSet,
    enforcer: Enforcer<MemoryLimits>,
    runs: FxHashSet<String>,
    blocked_runs: FxHashSet<String>,
    halted_runs: FxHashSet<String>,
    report: ReplayReport,
}

impl<'s> Replay<'s> {
    /// Starts a replay of `set` with empty counters; `rules` lists the rule ids to report on,
    /// in order (the policy's rules).
    pub fn new(set: &'s CompiledSet, rules: impl IntoIterator<Item = RuleId>) -> Replay<'s> {
        let report = ReplayReport {
            by_rule: rules
                .into_iter()
                .map(|rule_id| RuleCount {
                    rule_id,
                    blocked: 0,
                })
                .collect(),
            ..ReplayReport::default()
        };
        Replay {
            set,
            enforcer: Enforcer::default(),
            runs: FxHashSet::default(),
            blocked_runs: FxHashSet::default(),
            halted_runs: FxHashSet::default(),
            report,
        }
    }

    /// Replays one action; returns what the policy decides for it (`None` when it is not
    /// replayable).
    pub fn push(&mut self, recorded: &RecordedAction) -> Option<Outcome> {
        let report = &mut self.report;
        report.actions_scanned += 1;
        if !self.runs.contains(&recorded.run_id) {
            self.runs.insert(recorded.run_id.clone());
            report.runs_scanned += 1;
        }
        let Some(action) = &recorded.action else {
            report.actions_not_replayable += 1;
            return None;
        };
        let already = recorded.recorded.is_some_and(Outcome::is_refused);
        if self.enforcer.is_halted(&recorded.run_id) {
            // After a halt, the run's later actions are refused as part of the halt, not by
            // any rule of their own.
            report.actions_blocked += 1;
            report.actions_halted += 1;
            count_new(report, already);
            return Some(Outcome::Halt);
        }
        let ctx = RunContext {
            tenant_id: &recorded.tenant_id,
            agent_id: &recorded.agent_id,
            run_id: &recorded.run_id,
            run_started_at: recorded.run_started_at,
            now: recorded.at,
        };
        let decision = self.enforcer.check(self.set, action, &ctx);
        if decision.outcome == Outcome::Allow {
            return Some(Outcome::Allow);
        }
        report.actions_blocked += 1;
        count_new(report, already);
        if self.blocked_runs.insert(recorded.run_id.clone()) {
            report.runs_blocked += 1;
        }
        if decision.outcome == Outcome::Halt {
            report.actions_halted += 1;
            if self.halted_runs.insert(recorded.run_id.clone()) {
                report.runs_halted += 1;
            }
        }
        let mut counted: Vec<&RuleId> = Vec::new();
        for violation in &decision.violations {
            let rule_id = &violation.source.rule_id;
            if !counted.contains(&rule_id) {
                counted.push(rule_id);
                match report.by_rule.iter_mut().find(|c| &c.rule_id == rule_id) {
                    Some(count) => count.blocked += 1,
                    None => report.by_rule.push(RuleCount {
                        rule_id: rule_id.clone(),
                        blocked: 1,
                    }),
                }
            }
            if report.samples.len() < MAX_SAMPLES {
                report.samples.push(Sample {
                    run_id: recorded.run_id.clone(),
                    agent_id: recorded.agent_id.clone(),
                    at: recorded.at,
                    rule_id: rule_id.clone(),
                    decision: violation.outcome,
                    matching_input: violation.matching_input.clone(),
                    already_blocked: already,
                });
            }
        }
        Some(decision.outcome)
    }

    /// The report.
    pub fn finish(self) -> ReplayReport {
        self.report
    }
}

fn count_new(report: &mut ReplayReport, already: bool) {
    if already {
        report.actions_already_blocked += 1;
    } else {
        report.actions_new += 1;
    }
}

/// Replays a whole sequence.
pub fn replay<'a>(
    set: &CompiledSet,
    rules: impl IntoIterator<Item = RuleId>,
    actions: impl IntoIterator<Item = &'a RecordedAction>,
) -> ReplayReport {
    let mut replay = Replay::new(set, rules);
    for action in actions {
        replay.push(action);
    }
    replay.finish()
}
