//! The engine: compile a set of policies once, then evaluate actions against it.
//!
//! Evaluation is a pure function in two phases (see ARCHITECTURE.md): [`CompiledSet::evaluate`]
//! returns the stateless violations of an action and its limit [`Claim`]s; the caller settles
//! the claims atomically against its [`Limits`](crate::limits::Limits) (in memory, or in one
//! database transaction) and decides, both in [`Evaluation::settle`].

mod args;
mod index;
mod matcher;
mod output;

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Serialize, Serializer, ser::SerializeStruct};

use crate::action::Action;
use crate::ids::{LineageId, PolicyId, RuleId};
use crate::limits::{Claim, Exceeded, Limits, Settle};
use crate::money::Money;
use crate::policy::Policy;
use crate::rule::{CostRule, Per, RateRule, Rule, RuleKind, RuleType};
use crate::scope::Scope;

pub use args::ArgsRead;
pub use index::CompileError;
use index::ScopeIndex;

/// What a violation says about the policy it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// The policy version's id.
    pub id: PolicyId,
    /// Its lineage.
    pub lineage_id: LineageId,
    /// Its name.
    pub name: String,
    /// Its version number.
    pub version: u32,
    /// Its scope.
    pub scope: Scope,
}

impl PolicyInfo {
    /// The information of a stored policy.
    pub fn of(policy: &Policy) -> PolicyInfo {
        PolicyInfo {
            id: policy.id.clone(),
            lineage_id: policy.lineage_id.clone(),
            name: policy.definition.name.clone(),
            version: policy.version,
            scope: policy.definition.scope.clone(),
        }
    }
}

/// A rule as named in violations and claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// The rule's policy.
    pub policy: Arc<PolicyInfo>,
    /// The rule's id.
    pub rule_id: RuleId,
    /// The rule's type.
    pub rule_type: RuleType,
}

/// The run an action belongs to, and the moment it is evaluated.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The run's tenant.
    pub tenant_id: &'a str,
    /// The run's agent.
    pub agent_id: &'a str,
    /// The run.
    pub run_id: &'a str,
    /// When the run started.
    pub run_started_at: Timestamp,
    /// When the action happens: the server's clock for live checks, the recorded time in replay.
    pub now: Timestamp,
}

/// The answer to an action.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action may proceed.
    Allow,
    /// The action is refused; the run may go on.
    Block,
    /// The action is refused and the run is stopped.
    Halt,
}

impl Outcome {
    /// The outcome as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Block => "block",
            Outcome::Halt => "halt",
        }
    }

    /// Reads an outcome from its JSON name.
    pub fn from_name(name: &str) -> Option<Outcome> {
        [Outcome::Allow, Outcome::Block, Outcome::Halt]
            .into_iter()
            .find(|o| o.as_str() == name)
    }

    /// Whether the action is refused.
    pub fn is_refused(self) -> bool {
        self != Outcome::Allow
    }
}

/// One violated rule of a refused action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule (shared with the compiled set: a violation copies no strings).
    pub source: Arc<RuleSource>,
    /// `block` or `halt`.
    pub outcome: Outcome,
    /// Why, for people.
    pub message: String,
    /// The part of the input that matched, with personal data masked.
    pub matching_input: Option<String>,
}

impl Serialize for Violation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let policy = &self.source.policy;
        let mut s = serializer.serialize_struct("Violation", 10)?;
        s.serialize_field("policy_id", &policy.id)?;
        s.serialize_field("policy_name", &policy.name)?;
        s.serialize_field("policy_version", &policy.version)?;
        s.serialize_field("lineage_id", &policy.lineage_id)?;
        s.serialize_field("rule_id", &self.source.rule_id)?;
        s.serialize_field("rule_type", &self.source.rule_type)?;
        s.serialize_field("scope", &policy.scope)?;
        s.serialize_field("decision", &self.outcome)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("matching_input", &self.matching_input)?;
        s.end()
    }
}

/// The first phase of a check: what the rules say without limit state.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Violations that need no state (tool, data access, time, output rules).
    pub violations: Vec<Violation>,
    /// Claims on rate and cost limits, to settle atomically.
    pub claims: Vec<Claim>,
}

impl Evaluation {
    /// The second phase of a check: settles the claims against `limits` at `at` and decides.
    /// Only an action that no stateless rule refuses consumes budget; a refused one is still
    /// checked against every limit, so its decision lists every reason. The evaluation stays
    /// whole (a group commit may settle it again when retried).
    ///
    /// This is the one decision of a check: in process ([`Enforcer`](crate::Enforcer)), in
    /// replay, and in a store's group commit.
    pub fn settle(&self, limits: &mut impl Limits, at: Timestamp) -> Decision {
        let mode = if self.violations.is_empty() {
            Settle::CommitIfWithin
        } else {
            Settle::CheckOnly
        };
        let exceeded = limits.settle(&self.claims, at, mode);
        self.decision(&exceeded)
    }

    /// The decision of these violations and the claims found `exceeded`.
    pub fn decision(&self, exceeded: &[Exceeded]) -> Decision {
        let mut violations = self.violations.clone();
        for e in exceeded {
            if let Some(claim) = self.claims.get(e.claim) {
                violations.push(claim.violation(e.used));
            }
        }
        Decision::from_violations(violations)
    }
}

/// The answer to an action, with every violated rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `allow`, `block` or `halt`: the strongest of the violations.
    #[serde(rename = "decision")]
    pub outcome: Outcome,
    /// Every violated rule, in policy and rule order (limits last).
    pub violations: Vec<Violation>,
}

impl Decision {
    /// The decision of these violations: the strongest of their outcomes (allow when none).
    fn from_violations(violations: Vec<Violation>) -> Decision {
        let outcome = violations
            .iter()
            .map(|v| v.outcome)
            .max()
            .unwrap_or(Outcome::Allow);
        Decision {
            outcome,
            violations,
        }
    }

    /// The violations that halt the run (a cost cap, a run's duration), when it halts.
    pub fn halting(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.outcome == Outcome::Halt)
    }

    /// An allow with no violations.
    pub fn allow() -> Decision {
        Decision {
            outcome: Outcome::Allow,
            violations: Vec::new(),
        }
    }
}

/// A set of policies compiled for evaluation. Built once per pinned set and shared (it is
/// `Send + Sync`); a decision looks only at the platform's, the run's tenant's and the run's
/// agent's rules, so its cost does not grow with policies that cannot apply.
#[derive(Debug, Default)]
pub struct CompiledSet {
    platform: Option<ScopeIndex>,
    tenants: rustc_hash::FxHashMap<Box<str>, TenantIndex>,
    policies: usize,
    rules: usize,
}

#[derive(Debug, Default)]
struct TenantIndex {
    own: Option<ScopeIndex>,
    agents: rustc_hash::FxHashMap<Box<str>, ScopeIndex>,
    /// The `per: tenant` rate and cost rules of the tenant's agent policies: they govern one
    /// agent but count the allowed actions of every agent of the tenant (product.md §4).
    agents_tenant_limits: Option<ScopeIndex>,
}

impl CompiledSet {
    /// Compiles policies (whatever their status: choosing which apply is the caller's job).
    pub fn compile<'a>(
        policies: impl IntoIterator<Item = &'a Policy>,
    ) -> Result<CompiledSet, CompileError> {
        let mut by_scope: rustc_hash::FxHashMap<Scope, Vec<&Policy>> =
            rustc_hash::FxHashMap::default();
        let mut count = 0;
        let mut rules = 0;
        for policy in policies {
            count += 1;
            rules += policy.rules().len();
            by_scope
                .entry(policy.scope().clone())
                .or_default()
                .push(policy);
        }
        let mut set = CompiledSet {
            policies: count,
            rules,
            ..CompiledSet::default()
        };
        let mut cache = matcher::SetCache::default();
        let mut tenant_limits: rustc_hash::FxHashMap<&str, TenantLimits> =
            rustc_hash::FxHashMap::default();
        for (scope, group) in &by_scope {
            if let Scope::Agent { tenant_id, .. } = scope {
                let limits = tenant_limits.entry(tenant_id.as_str()).or_default();
                for policy in group {
                    limits.add(policy);
                }
            }
        }
        for (tenant_id, limits) in tenant_limits {
            if limits.policies.is_empty() {
                continue;
            }
            let refs: Vec<&Policy> = limits.policies.iter().collect();
            let index = ScopeIndex::build(&refs, &mut cache)?;
            set.tenants
                .entry(tenant_id.into())
                .or_default()
                .agents_tenant_limits = Some(index);
        }
        for (scope, group) in by_scope {
            let index = ScopeIndex::build(&group, &mut cache)?;
            match scope {
                Scope::Platform => set.platform = Some(index),
                Scope::Tenant { tenant_id } => {
                    set.tenants
                        .entry(tenant_id.as_str().into())
                        .or_default()
                        .own = Some(index);
                }
                Scope::Agent {
                    tenant_id,
                    agent_id,
                } => {
                    set.tenants
                        .entry(tenant_id.as_str().into())
                        .or_default()
                        .agents
                        .insert(agent_id.as_str().into(), index);
                }
            }
        }
        Ok(set)
    }

    /// How many policies were compiled.
    pub fn policy_count(&self) -> usize {
        self.policies
    }

    /// How many rules were compiled.
    pub fn rule_count(&self) -> usize {
        self.rules
    }

    /// The scope indexes that govern a run, highest scope first.
    fn scopes<'s>(&'s self, ctx: &RunContext<'_>) -> impl Iterator<Item = &'s ScopeIndex> {
        let tenant = self.tenants.get(ctx.tenant_id);
        let own = tenant.and_then(|t| t.own.as_ref());
        let agent = tenant.and_then(|t| t.agents.get(ctx.agent_id));
        self.platform.iter().chain(own).chain(agent)
    }

    /// The claims on tenant-wide counters of other agents' rules that an allowed action counts
    /// on: `per: tenant` rate and cost rules of an agent's policy count every allowed matching
    /// action of the tenant, also those of agents they do not govern. Counters the action
    /// claims itself (`own`) are left out, so that it counts once.
    pub fn tenant_claims(
        &self,
        action: &Action,
        ctx: &RunContext<'_>,
        own: &[Claim],
    ) -> Vec<Claim> {
        let Some(index) = self
            .tenants
            .get(ctx.tenant_id)
            .and_then(|t| t.agents_tenant_limits.as_ref())
        else {
            return Vec::new();
        };
        let mut evaluation = Evaluation::default();
        index.claims(action, ctx, &mut evaluation);
        evaluation
            .claims
            .retain(|c| own.iter().all(|o| o.key != c.key));
        evaluation.claims
    }

    /// Evaluates one action: every stateless violation, and every limit claim.
    pub fn evaluate(&self, action: &Action, ctx: &RunContext<'_>) -> Evaluation {
        let mut evaluation = Evaluation::default();
        for index in self.scopes(ctx) {
            index.evaluate(action, ctx, &mut evaluation);
        }
        evaluation
    }

    /// The limit claims an action makes, without its violations: what a store needs to rebuild
    /// limit state from recorded allowed actions.
    pub fn claims(&self, action: &Action, ctx: &RunContext<'_>) -> Vec<Claim> {
        let mut evaluation = Evaluation::default();
        for index in self.scopes(ctx) {
            index.claims(action, ctx, &mut evaluation);
        }
        evaluation.claims
    }
}

/// The `per: tenant` rate and cost rules of a tenant's agent policies, one per counter: the
/// same rule in every agent's policy (the usual case) is one counter, which an allowed action
/// counts on once, so it is compiled once.
#[derive(Default)]
struct TenantLimits {
    policies: Vec<Policy>,
    counters: rustc_hash::FxHashSet<String>,
}

impl TenantLimits {
    /// Adds a copy of `policy` holding only its tenant-wide limits on counters not seen yet.
    fn add(&mut self, policy: &Policy) {
        let mut rules: Vec<Rule> = Vec::new();
        for rule in policy.rules() {
            // What the counter counts, without the cap: rules that differ only in their caps
            // count on one counter.
            let counter = match &rule.kind {
                RuleKind::Rate(rate) if rate.per == Per::Tenant => RuleKind::Rate(RateRule {
                    limit: 1,
                    ..rate.clone()
                }),
                RuleKind::Cost(cost) if cost.per == Per::Tenant => RuleKind::Cost(CostRule {
                    max_usd: Money::ZERO,
                    ..cost.clone()
                }),
                _ => continue,
            };
            // A rule that cannot be named is kept: counting twice on one counter is harmless,
            // since a settlement adds to each counter once.
            let fresh = serde_json::to_string(&counter).map_or(true, |c| self.counters.insert(c));
            if fresh {
                rules.push(rule.clone());
            }
        }
        if !rules.is_empty() {
            let mut copy = policy.clone();
            copy.definition.rules = rules;
            self.policies.push(copy);
        }
    }
}

/// Bounds a text quoted in a message or matching input, so one huge argument cannot swell
/// events (cut at a character boundary, with an ellipsis).
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 256;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
