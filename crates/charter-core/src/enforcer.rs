//! Enforcement of live runs in process: the engine, limit settlement and halts, in one step.
//!
//! This is what a Rust runtime embeds to govern its agents without a server, and what replay
//! drives, so that Validate and live checks cannot disagree.

use rustc_hash::FxHashMap;

use crate::action::Action;
use crate::engine::{CompiledSet, Decision, Outcome, RunContext, Violation};
use crate::limits::{Claim, Limits, MemoryLimits, Settle};

/// Checks actions of runs against compiled sets, keeping limit state and halted runs.
#[derive(Debug, Default)]
pub struct Enforcer<L = MemoryLimits> {
    limits: L,
    halted: FxHashMap<Box<str>, Vec<Violation>>,
}

impl Enforcer<MemoryLimits> {
    /// An enforcer whose limit state lives in memory.
    pub fn in_memory() -> Enforcer<MemoryLimits> {
        Enforcer::default()
    }
}

impl<L: Limits> Enforcer<L> {
    /// An enforcer over the given limit state.
    pub fn new(limits: L) -> Enforcer<L> {
        Enforcer {
            limits,
            halted: FxHashMap::default(),
        }
    }

    /// Decides one action of a run. A halted run refuses everything with the violations that
    /// halted it; only allowed actions consume limit budget, also on the tenant-wide limits of
    /// other agents' policies ([`CompiledSet::tenant_claims`]).
    pub fn check(&mut self, set: &CompiledSet, action: &Action, ctx: &RunContext<'_>) -> Decision {
        if let Some(violations) = self.halted.get(ctx.run_id) {
            return Decision {
                outcome: Outcome::Halt,
                violations: violations.clone(),
            };
        }
        let evaluation = set.evaluate(action, ctx);
        let decision = evaluation.settle(&mut self.limits, ctx.now);
        match decision.outcome {
            Outcome::Allow => self.count_for_tenant(set, action, ctx, &evaluation.claims),
            Outcome::Halt => {
                let halting = decision.halting().cloned().collect();
                self.halted.insert(ctx.run_id.into(), halting);
            }
            Outcome::Block => {}
        }
        decision
    }

    /// Counts an allowed action on the tenant-wide counters it did not claim itself.
    fn count_for_tenant(
        &mut self,
        set: &CompiledSet,
        action: &Action,
        ctx: &RunContext<'_>,
        own: &[Claim],
    ) {
        let claims = set.tenant_claims(action, ctx, own);
        if !claims.is_empty() {
            self.limits.settle(&claims, ctx.now, Settle::Record);
        }
    }

    /// Records an action that was allowed in the past, without checking it: how limit state is
    /// rebuilt from recorded history at start (oldest first), and how a new rule is given the
    /// budget already used by the actions it counts.
    pub fn record_allowed(&mut self, set: &CompiledSet, action: &Action, ctx: &RunContext<'_>) {
        let claims = set.claims(action, ctx);
        self.limits.settle(&claims, ctx.now, Settle::Record);
        self.count_for_tenant(set, action, ctx, &claims);
    }

    /// Marks a run halted by earlier violations (when rebuilding state).
    pub fn restore_halt(&mut self, run_id: &str, violations: Vec<Violation>) {
        self.halted.insert(run_id.into(), violations);
    }

    /// Whether a run has been halted.
    pub fn is_halted(&self, run_id: &str) -> bool {
        self.halted.contains_key(run_id)
    }

    /// Forgets a run's halt once it has ended.
    pub fn end_run(&mut self, run_id: &str) {
        self.halted.remove(run_id);
    }

    /// The limit state.
    pub fn limits(&self) -> &L {
        &self.limits
    }

    /// The limit state, to record history into.
    pub fn limits_mut(&mut self) -> &mut L {
        &mut self.limits
    }
}
