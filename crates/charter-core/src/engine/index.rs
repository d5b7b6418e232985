//! The compiled rules of one scope (the platform, a tenant, or an agent), indexed by what an
//! action can be matched on, and their evaluation.

use std::sync::Arc;

use jiff::Timestamp;

use super::args::{CompiledCondition, Quantifier, Verdict};
use super::matcher::{MatcherBuilder, NameMatcher, SetCache};
use super::output::CompiledOutput;
use super::{Evaluation, Outcome, PolicyInfo, RuleSource, RunContext, Violation, clip};
use crate::action::{Action, ActionDetail, DataAccess, ToolCall};
use crate::calendar::{self, Period};
use crate::ids::RuleId;
use crate::limits::{Claim, ClaimWindow, CounterKey, Subject};
use crate::pattern::ToolGlob;
use crate::policy::Policy;
use crate::rule::{
    CostRule, DataAccessRule, Effect, OutputRule, Per, RateRule, RuleKind, TimeRule, ToolRule,
};

/// A policy's rule could not be compiled (a pattern or schema that was valid when written but
/// not here, e.g. after a limit changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy_id}, rule {rule_id}: {message}")]
pub struct CompileError {
    /// The policy.
    pub policy_id: String,
    /// The rule.
    pub rule_id: String,
    /// What went wrong.
    pub message: String,
}

/// The compiled rules of one scope. Kept small, since a set may hold one per agent: tool rules
/// (the most common) inline, the other types behind pointers that are absent when unused.
#[derive(Debug)]
pub(crate) struct ScopeIndex {
    sources: Box<[Arc<RuleSource>]>,
    tool_deny: NameMatcher,
    tool_deny_rules: Box<[ToolEntry]>,
    tool_allow: NameMatcher,
    tool_allow_rules: Box<[ToolEntry]>,
    data: Option<Box<DataIndex>>,
    others: Option<Box<Others>>,
}

#[derive(Debug)]
struct DataIndex {
    deny: NameMatcher,
    deny_rules: Box<[DataEntry]>,
    allow: NameMatcher,
    allow_rules: Box<[DataEntry]>,
}

#[derive(Debug, Default)]
struct Others {
    rates: Vec<RateEntry>,
    costs: Vec<CostEntry>,
    times: Vec<TimeEntry>,
    outputs: Vec<OutputEntry>,
}

/// A scope's rules while they are compiled.
#[derive(Default)]
struct Staging {
    sources: Vec<Arc<RuleSource>>,
    tool_deny_rules: Vec<ToolEntry>,
    tool_allow_rules: Vec<ToolEntry>,
    data_deny_rules: Vec<DataEntry>,
    data_allow_rules: Vec<DataEntry>,
    others: Others,
}

#[derive(Debug)]
struct ToolEntry {
    slot: u32,
    conditions: Box<[CompiledCondition]>,
}

#[derive(Debug)]
struct DataEntry {
    slot: u32,
    rule: DataAccessRule,
}

#[derive(Debug)]
struct RateEntry {
    slot: u32,
    rule: RateRule,
    description: Arc<str>,
    /// The counter's identity: equal filters share budget, whichever rule or policy wrote them.
    filter: Arc<str>,
    tools: Option<NameMatcher>,
}

#[derive(Debug)]
struct CostEntry {
    slot: u32,
    rule: CostRule,
    description: Arc<str>,
    zone: Arc<str>,
}

#[derive(Debug)]
struct TimeEntry {
    slot: u32,
    rule: TimeRule,
}

#[derive(Debug)]
struct OutputEntry {
    slot: u32,
    compiled: CompiledOutput,
}

/// Builders for the name matchers while rules are added.
#[derive(Default)]
struct Builders {
    tool_deny: MatcherBuilder,
    tool_allow: MatcherBuilder,
    data_deny: MatcherBuilder,
    data_allow: MatcherBuilder,
}

impl ScopeIndex {
    /// Compiles the rules of policies that share one scope.
    pub(crate) fn build(
        policies: &[&Policy],
        cache: &mut SetCache,
    ) -> Result<ScopeIndex, CompileError> {
        let mut index = Staging::default();
        let mut builders = Builders::default();
        for policy in policies {
            let info = Arc::new(PolicyInfo::of(policy));
            for rule in policy.rules() {
                let fail = |message: String| CompileError {
                    policy_id: policy.id.to_string(),
                    rule_id: rule.id.to_string(),
                    message,
                };
                let slot = u32::try_from(index.sources.len())
                    .map_err(|_| fail("too many rules in one scope".to_owned()))?;
                index.sources.push(Arc::new(RuleSource {
                    policy: Arc::clone(&info),
                    rule_id: rule.id.clone(),
                    rule_type: rule.rule_type(),
                }));
                index
                    .add(slot, &rule.kind, &mut builders, cache)
                    .map_err(fail)?;
            }
        }
        let fail = |e: regex::Error| CompileError {
            policy_id: String::new(),
            rule_id: String::new(),
            message: format!("patterns of this scope do not compile together: {e}"),
        };
        let data = if index.data_deny_rules.is_empty() && index.data_allow_rules.is_empty() {
            None
        } else {
            Some(Box::new(DataIndex {
                deny: builders.data_deny.build(cache).map_err(fail)?,
                deny_rules: index.data_deny_rules.into_boxed_slice(),
                allow: builders.data_allow.build(cache).map_err(fail)?,
                allow_rules: index.data_allow_rules.into_boxed_slice(),
            }))
        };
        let others = index.others;
        let others = if others.rates.is_empty()
            && others.costs.is_empty()
            && others.times.is_empty()
            && others.outputs.is_empty()
        {
            None
        } else {
            Some(Box::new(others))
        };
        let index = ScopeIndex {
            sources: index.sources.into_boxed_slice(),
            tool_deny: builders.tool_deny.build(cache).map_err(fail)?,
            tool_deny_rules: index.tool_deny_rules.into_boxed_slice(),
            tool_allow: builders.tool_allow.build(cache).map_err(fail)?,
            tool_allow_rules: index.tool_allow_rules.into_boxed_slice(),
            data,
            others,
        };
        Ok(index)
    }
}

impl Staging {
    fn add(
        &mut self,
        slot: u32,
        kind: &RuleKind,
        builders: &mut Builders,
        cache: &mut SetCache,
    ) -> Result<(), String> {
        match kind {
            RuleKind::Tool(rule) => self.add_tool(slot, rule, builders)?,
            RuleKind::DataAccess(rule) => {
                let (matcher, entries) = match rule.effect {
                    Effect::Deny => (&mut builders.data_deny, &mut self.data_deny_rules),
                    Effect::Allow => (&mut builders.data_allow, &mut self.data_allow_rules),
                };
                let position = position(entries.len())?;
                for glob in &rule.resources {
                    matcher.add(glob.glob(), position);
                }
                entries.push(DataEntry {
                    slot,
                    rule: rule.clone(),
                });
            }
            RuleKind::Rate(rule) => self.others.rates.push(rate_entry(slot, rule, cache)?),
            RuleKind::Cost(rule) => self.others.costs.push(CostEntry {
                slot,
                rule: rule.clone(),
                description: cost_text(rule).into(),
                zone: rule.timezone.name().into(),
            }),
            RuleKind::Time(rule) => self.others.times.push(TimeEntry {
                slot,
                rule: rule.clone(),
            }),
            RuleKind::Output(rule) => self.others.outputs.push(output_entry(slot, rule)?),
        }
        Ok(())
    }

    fn add_tool(
        &mut self,
        slot: u32,
        rule: &ToolRule,
        builders: &mut Builders,
    ) -> Result<(), String> {
        let conditions = rule
            .when
            .iter()
            .map(CompiledCondition::compile)
            .collect::<Result<Box<[_]>, _>>()?;
        let (matcher, entries) = match rule.effect {
            Effect::Deny => (&mut builders.tool_deny, &mut self.tool_deny_rules),
            Effect::Allow => (&mut builders.tool_allow, &mut self.tool_allow_rules),
        };
        let position = position(entries.len())?;
        for glob in &rule.tools {
            matcher.add(glob.glob(), position);
        }
        entries.push(ToolEntry { slot, conditions });
        Ok(())
    }
}

impl ScopeIndex {
    fn violation(
        &self,
        slot: u32,
        outcome: Outcome,
        message: String,
        input: Option<String>,
    ) -> Violation {
        Violation {
            source: Arc::clone(&self.sources[slot as usize]),
            outcome,
            message,
            matching_input: input,
        }
    }

    fn rule_id(&self, slot: u32) -> &RuleId {
        &self.sources[slot as usize].rule_id
    }

    /// Adds this scope's violations and claims for `action`.
    pub(crate) fn evaluate(&self, action: &Action, ctx: &RunContext<'_>, out: &mut Evaluation) {
        match &action.detail {
            ActionDetail::ToolCall(call) => self.evaluate_tool(call, out),
            ActionDetail::DataAccess(access) => self.evaluate_data(access, out),
            ActionDetail::Output(output) => {
                let outputs = self.others.as_ref().map_or(&[][..], |o| &o.outputs[..]);
                for entry in outputs {
                    if entry.compiled.applies(output)
                        && let Some(finding) = entry.compiled.check(&output.text)
                    {
                        out.violations.push(self.violation(
                            entry.slot,
                            Outcome::Block,
                            finding.message,
                            Some(finding.matching_input),
                        ));
                    }
                }
            }
            ActionDetail::ModelCall(_) => {}
        }
        let times = self.others.as_ref().map_or(&[][..], |o| &o.times[..]);
        for entry in times {
            self.evaluate_time(entry, ctx, out);
        }
        self.claims(action, ctx, out);
    }

    fn evaluate_tool(&self, call: &ToolCall, out: &mut Evaluation) {
        let mut denied: Vec<u32> = Vec::new();
        self.tool_deny.for_each(&call.tool, |p| {
            if !denied.contains(&p) {
                denied.push(p);
            }
        });
        denied.sort_unstable();
        for position in denied {
            let entry = &self.tool_deny_rules[position as usize];
            if let Some((message, input)) = deny_fires(entry, call) {
                out.violations
                    .push(self.violation(entry.slot, Outcome::Block, message, input));
            }
        }
        if self.tool_allow_rules.is_empty() {
            return;
        }
        let mut listed = vec![false; self.tool_allow_rules.len()];
        self.tool_allow
            .for_each(&call.tool, |p| listed[p as usize] = true);
        for (entry, listed) in self.tool_allow_rules.iter().zip(listed) {
            let refusal = if listed {
                allow_refuses(entry, call)
            } else {
                Some((
                    format!(
                        "tool `{}` is not on the allow-list of rule `{}`",
                        clip(&call.tool),
                        self.rule_id(entry.slot)
                    ),
                    Some(clip(&call.tool)),
                ))
            };
            if let Some((message, input)) = refusal {
                out.violations
                    .push(self.violation(entry.slot, Outcome::Block, message, input));
            }
        }
    }

    fn evaluate_data(&self, access: &DataAccess, out: &mut Evaluation) {
        let Some(data) = &self.data else {
            return;
        };
        let mut denied: Vec<u32> = Vec::new();
        data.deny.for_each(&access.resource, |p| {
            if !denied.contains(&p) {
                denied.push(p);
            }
        });
        denied.sort_unstable();
        for position in denied {
            let entry = &data.deny_rules[position as usize];
            if !entry.rule.governs(access.operation) {
                continue;
            }
            let label = match &entry.rule.labels {
                None => None,
                Some(labels) => match access
                    .labels
                    .iter()
                    .find(|l| labels.iter().any(|d| d.as_str() == l.as_str()))
                {
                    Some(label) => Some(label),
                    None => continue,
                },
            };
            let message = match label {
                Some(label) => format!(
                    "{} of `{}` carrying label `{}` is denied",
                    access.operation.as_str(),
                    clip(&access.resource),
                    clip(label)
                ),
                None => format!(
                    "{} of `{}` is denied",
                    access.operation.as_str(),
                    clip(&access.resource)
                ),
            };
            out.violations.push(self.violation(
                entry.slot,
                Outcome::Block,
                message,
                Some(clip(&access.resource)),
            ));
        }
        if data.allow_rules.is_empty() {
            return;
        }
        let mut listed = vec![false; data.allow_rules.len()];
        data.allow
            .for_each(&access.resource, |p| listed[p as usize] = true);
        for (entry, listed) in data.allow_rules.iter().zip(listed) {
            if !entry.rule.governs(access.operation) {
                continue;
            }
            let refusal = if listed {
                entry.rule.labels.as_ref().and_then(|permitted| {
                    access
                        .labels
                        .iter()
                        .find(|l| !permitted.iter().any(|p| p.as_str() == l.as_str()))
                        .map(|label| {
                            (
                                format!(
                                    "label `{}` is not permitted by rule `{}`",
                                    clip(label),
                                    self.rule_id(entry.slot)
                                ),
                                clip(label),
                            )
                        })
                })
            } else {
                Some((
                    format!(
                        "{} of `{}` is outside the resources allowed by rule `{}`",
                        access.operation.as_str(),
                        clip(&access.resource),
                        self.rule_id(entry.slot)
                    ),
                    clip(&access.resource),
                ))
            };
            if let Some((message, input)) = refusal {
                out.violations.push(self.violation(
                    entry.slot,
                    Outcome::Block,
                    message,
                    Some(input),
                ));
            }
        }
    }

    fn evaluate_time(&self, entry: &TimeEntry, ctx: &RunContext<'_>, out: &mut Evaluation) {
        let rule = &entry.rule;
        if let Some(max) = &rule.max_run_duration {
            let elapsed = ctx
                .now
                .as_millisecond()
                .saturating_sub(ctx.run_started_at.as_millisecond());
            if elapsed > i64::try_from(max.as_millis()).unwrap_or(i64::MAX) {
                out.violations.push(self.violation(
                    entry.slot,
                    Outcome::Halt,
                    format!(
                        "the run has gone on for {}, longer than max_run_duration {max}",
                        elapsed_text(elapsed)
                    ),
                    Some(elapsed_text(elapsed)),
                ));
            }
        }
        let zone = &rule.timezone;
        let local = || local_text(ctx.now, zone);
        if let Some(allow) = &rule.allow
            && !allow.iter().any(|w| w.contains(ctx.now, zone))
        {
            out.violations.push(self.violation(
                entry.slot,
                Outcome::Block,
                format!("{} is outside every allowed window", local()),
                Some(local()),
            ));
        } else if let Some(deny) = &rule.deny
            && deny.iter().any(|w| w.contains(ctx.now, zone))
        {
            out.violations.push(self.violation(
                entry.slot,
                Outcome::Block,
                format!("{} is inside a denied window", local()),
                Some(local()),
            ));
        }
    }

    /// Adds this scope's claims on rate and cost limits for `action`.
    pub(crate) fn claims(&self, action: &Action, ctx: &RunContext<'_>, out: &mut Evaluation) {
        let Some(others) = &self.others else {
            return;
        };
        for entry in &others.rates {
            if !rate_matches(entry, action) {
                continue;
            }
            out.claims.push(Claim {
                key: CounterKey::Rate {
                    filter: Arc::clone(&entry.filter),
                    window_ms: entry.rule.window.as_millis(),
                    subject: subject(entry.rule.per, ctx),
                },
                amount: 1,
                cap: u64::from(entry.rule.limit),
                window: ClaimWindow::Rolling {
                    millis: entry.rule.window.as_millis(),
                },
                source: Arc::clone(&self.sources[entry.slot as usize]),
                description: Arc::clone(&entry.description),
            });
        }
        for entry in &others.costs {
            let window =
                match calendar::period_bounds(ctx.now, entry.rule.period, &entry.rule.timezone) {
                    Some((start, end)) => ClaimWindow::Calendar { start, end },
                    None => ClaimWindow::Run,
                };
            out.claims.push(Claim {
                key: CounterKey::Cost {
                    period: entry.rule.period,
                    zone: Arc::clone(&entry.zone),
                    subject: subject(entry.rule.per, ctx),
                },
                amount: action.cost_usd.micros(),
                cap: entry.rule.max_usd.micros(),
                window,
                source: Arc::clone(&self.sources[entry.slot as usize]),
                description: Arc::clone(&entry.description),
            });
        }
    }
}

fn position(len: usize) -> Result<u32, String> {
    u32::try_from(len).map_err(|_| "too many rules in one scope".to_owned())
}

fn rate_entry(slot: u32, rule: &RateRule, cache: &mut SetCache) -> Result<RateEntry, String> {
    let mut kinds: Vec<&str> = rule
        .matcher
        .as_ref()
        .and_then(|m| m.kinds.as_ref())
        .map(|k| k.iter().map(|k| k.as_str()).collect())
        .unwrap_or_default();
    kinds.sort_unstable();
    kinds.dedup();
    let mut globs: Vec<&str> = rule
        .matcher
        .as_ref()
        .and_then(|m| m.tools.as_ref())
        .map(|t| t.iter().map(ToolGlob::as_str).collect())
        .unwrap_or_default();
    globs.sort_unstable();
    globs.dedup();
    let tools = match rule.matcher.as_ref().and_then(|m| m.tools.as_ref()) {
        Some(list) => {
            let mut builder = MatcherBuilder::default();
            for glob in list {
                builder.add(glob.glob(), 0);
            }
            Some(builder.build(cache).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    // Globs cannot contain a newline (names cannot), so this text is unambiguous.
    let filter = format!("kinds={}\ntools={}", kinds.join(","), globs.join("\n"));
    Ok(RateEntry {
        slot,
        rule: rule.clone(),
        description: format!(
            "{} per {} (per {})",
            rule.limit,
            rule.window,
            rule.per.as_str()
        )
        .into(),
        filter: filter.into(),
        tools,
    })
}

fn output_entry(slot: u32, rule: &OutputRule) -> Result<OutputEntry, String> {
    Ok(OutputEntry {
        slot,
        compiled: CompiledOutput::compile(rule)?,
    })
}

fn rate_matches(entry: &RateEntry, action: &Action) -> bool {
    let Some(matcher) = &entry.rule.matcher else {
        return true;
    };
    if let Some(kinds) = &matcher.kinds
        && !kinds.contains(&action.kind())
    {
        return false;
    }
    match (&entry.tools, &action.detail) {
        (None, _) => true,
        (Some(tools), ActionDetail::ToolCall(call)) => tools.any(&call.tool),
        (Some(_), _) => false,
    }
}

fn subject(per: Per, ctx: &RunContext<'_>) -> Subject {
    match per {
        Per::Run => Subject::Run(ctx.run_id.into()),
        Per::Agent => Subject::Agent(ctx.tenant_id.into(), ctx.agent_id.into()),
        Per::Tenant => Subject::Tenant(ctx.tenant_id.into()),
    }
}

fn cost_text(rule: &CostRule) -> String {
    let period = rule.period;
    match period {
        Period::Run => format!("${} per run", rule.max_usd),
        _ => format!(
            "${} per {} in {} (per {})",
            rule.max_usd,
            period.as_str(),
            rule.timezone.name(),
            rule.per.as_str()
        ),
    }
}

/// Whether a deny tool rule fires on a call whose tool it matches: all conditions hold, an
/// unevaluable one counting as holding.
fn deny_fires(entry: &ToolEntry, call: &ToolCall) -> Option<(String, Option<String>)> {
    let mut witness = None;
    let mut reasons = Vec::new();
    for condition in &entry.conditions {
        match condition.evaluate(&call.args, Quantifier::Any) {
            Verdict::Holds { witness: w } => {
                if witness.is_none() {
                    witness = w;
                }
            }
            Verdict::Fails { .. } => return None,
            Verdict::Error {
                message,
                witness: w,
            } => {
                reasons.push(format!("{}: {message}", condition.describe()));
                witness.get_or_insert(w);
            }
        }
    }
    let message = if entry.conditions.is_empty() {
        format!("tool `{}` is denied", clip(&call.tool))
    } else if reasons.is_empty() {
        let described: Vec<String> = entry
            .conditions
            .iter()
            .map(CompiledCondition::describe)
            .collect();
        format!(
            "tool `{}` is denied when {}",
            clip(&call.tool),
            described.join(" and ")
        )
    } else {
        format!(
            "tool `{}` is denied: {}",
            clip(&call.tool),
            reasons.join("; ")
        )
    };
    Some((message, witness.or_else(|| Some(clip(&call.tool)))))
}

/// Whether an allow tool rule refuses a call whose tool it lists: some condition unmet.
fn allow_refuses(entry: &ToolEntry, call: &ToolCall) -> Option<(String, Option<String>)> {
    for condition in &entry.conditions {
        match condition.evaluate(&call.args, Quantifier::Every) {
            Verdict::Holds { .. } => {}
            Verdict::Fails { witness } => {
                return Some((
                    format!(
                        "tool `{}` is allowed only when {}",
                        clip(&call.tool),
                        condition.describe()
                    ),
                    witness.or_else(|| Some(clip(&call.tool))),
                ));
            }
            Verdict::Error { message, witness } => {
                return Some((
                    format!(
                        "tool `{}`: {}: {message}",
                        clip(&call.tool),
                        condition.describe()
                    ),
                    Some(witness),
                ));
            }
        }
    }
    None
}

fn elapsed_text(millis: i64) -> String {
    let seconds = millis / 1000;
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

fn local_text(at: Timestamp, zone: &calendar::Zone) -> String {
    let local = at.to_zoned_datetime(zone.tz().clone());
    format!("{} {}", local.strftime("%a %H:%M"), zone.name())
}
