//! Runs the engine cases in `tests/cases/*.json`: a policy set, a run context and actions, each
//! with its expected decision, violated rule ids and (optionally) matching input. See
//! `tests/cases/README.md` for the format.

use std::path::{Path, PathBuf};

use charter_core::action::Action;
use charter_core::enforcer::Enforcer;
use charter_core::engine::{CompiledSet, Outcome, RunContext};
use charter_core::policy::{Policy, PolicyDefinition, Status};
use charter_core::{LineageId, PolicyDocument, PolicyId};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// The minimum number of engine cases the suite must hold (issue 2).
const MIN_CASES: usize = 150;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[allow(dead_code)]
    about: String,
    #[serde(default)]
    policies: Vec<PolicySpec>,
    #[serde(default)]
    context: ContextSpec,
    #[serde(default)]
    cases: Vec<Case>,
    #[serde(default)]
    invalid: Vec<Invalid>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    lineage: Option<String>,
    scope: Value,
    #[serde(default)]
    rules: Vec<Value>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct ContextSpec {
    tenant: Option<String>,
    agent: Option<String>,
    run: Option<String>,
    started: Option<Timestamp>,
    at: Option<Timestamp>,
}

impl ContextSpec {
    fn over(&self, base: &ContextSpec) -> ContextSpec {
        ContextSpec {
            tenant: self.tenant.clone().or_else(|| base.tenant.clone()),
            agent: self.agent.clone().or_else(|| base.agent.clone()),
            run: self.run.clone().or_else(|| base.run.clone()),
            started: self.started.or(base.started),
            at: self.at.or(base.at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    policies: Option<Vec<PolicySpec>>,
    #[serde(default)]
    context: ContextSpec,
    #[serde(default)]
    action: Option<Value>,
    #[serde(default)]
    expect: Option<Expect>,
    #[serde(default)]
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default)]
    context: ContextSpec,
    #[serde(default)]
    at: Option<Timestamp>,
    action: Value,
    expect: Expect,
    #[serde(default = "one")]
    repeat: u32,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expect {
    Outcome(Outcome),
    Full(FullExpect),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullExpect {
    decision: Outcome,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    matching_input: Option<String>,
    #[serde(default)]
    message_contains: Option<String>,
}

/// Input that must be refused, with the JSON path the error must name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invalid {
    name: String,
    #[serde(default)]
    definition: Option<Value>,
    #[serde(default)]
    rule: Option<Value>,
    #[serde(default)]
    action: Option<Value>,
    #[serde(default)]
    document: Option<String>,
    path: String,
    #[serde(default)]
    message_contains: Option<String>,
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn build_policies(specs: &[PolicySpec]) -> Vec<Policy> {
    specs
        .iter()
        .map(|spec| {
            let definition = PolicyDefinition::parse(&serde_json::json!({
                "name": spec.name.clone().unwrap_or_else(|| spec.id.clone()),
                "scope": spec.scope,
                "rules": spec.rules,
            }))
            .unwrap_or_else(|e| panic!("policy {}: {e}", spec.id));
            let mut policy = Policy::draft(
                PolicyId::new(spec.id.clone()).unwrap(),
                LineageId::new(
                    spec.lineage
                        .clone()
                        .unwrap_or_else(|| format!("lin_{}", spec.id)),
                )
                .unwrap(),
                definition,
                Timestamp::UNIX_EPOCH,
            );
            policy.version = spec.version;
            policy.status = Status::Active;
            policy
        })
        .collect()
}

struct Outcomes {
    cases: usize,
    failures: Vec<String>,
}

fn check(expect: &Expect, decision: &charter_core::Decision) -> Result<(), String> {
    let got_rules = {
        let mut r: Vec<String> = decision
            .violations
            .iter()
            .map(|v| v.source.rule_id.to_string())
            .collect();
        r.sort();
        r
    };
    let (outcome, rules, input, message) = match expect {
        Expect::Outcome(o) => (*o, None, None, None),
        Expect::Full(f) => (
            f.decision,
            Some(&f.rules),
            f.matching_input.as_ref(),
            f.message_contains.as_ref(),
        ),
    };
    if decision.outcome != outcome {
        return Err(format!(
            "expected {}, got {} with {:?}",
            outcome.as_str(),
            decision.outcome.as_str(),
            decision
                .violations
                .iter()
                .map(|v| format!("{}: {}", v.source.rule_id, v.message))
                .collect::<Vec<_>>()
        ));
    }
    if outcome == Outcome::Allow && !decision.violations.is_empty() {
        return Err("an allow carries violations".into());
    }
    if let Some(rules) = rules {
        let mut want = rules.clone();
        want.sort();
        if want != got_rules {
            return Err(format!("expected rules {want:?}, got {got_rules:?}"));
        }
    } else if outcome != Outcome::Allow {
        return Err("a refusal must name its rules in the case".into());
    }
    if let Some(input) = input {
        let inputs: Vec<Option<&str>> = decision
            .violations
            .iter()
            .map(|v| v.matching_input.as_deref())
            .collect();
        if !inputs.contains(&Some(input.as_str())) {
            return Err(format!("expected matching input {input:?}, got {inputs:?}"));
        }
    }
    if let Some(fragment) = message
        && !decision
            .violations
            .iter()
            .any(|v| v.message.contains(fragment.as_str()))
    {
        return Err(format!(
            "no message contains {fragment:?}: {:?}",
            decision
                .violations
                .iter()
                .map(|v| &v.message)
                .collect::<Vec<_>>()
        ));
    }
    Ok(())
}

fn run_case(file: &CaseFile, case: &Case, policies: &[Policy]) -> Result<(), String> {
    let own;
    let policies = match &case.policies {
        Some(specs) => {
            own = build_policies(specs);
            &own
        }
        None => policies,
    };
    let set = CompiledSet::compile(policies).map_err(|e| e.to_string())?;
    let mut enforcer: Enforcer = Enforcer::default();
    let mut steps: Vec<(ContextSpec, Option<Timestamp>, &Value, &Expect, u32)> = Vec::new();
    if let (Some(action), Some(expect)) = (&case.action, &case.expect) {
        steps.push((ContextSpec::default(), None, action, expect, 1));
    } else if case.action.is_some() || case.expect.is_some() {
        return Err("a case has both `action` and `expect`, or `steps`".into());
    }
    for step in &case.steps {
        steps.push((
            step.context.clone(),
            step.at,
            &step.action,
            &step.expect,
            step.repeat,
        ));
    }
    if steps.is_empty() {
        return Err("a case needs an action or steps".into());
    }
    let base = case.context.over(&file.context);
    for (i, (context, at, action, expect, repeat)) in steps.into_iter().enumerate() {
        let ctx = context.over(&base);
        let action = Action::parse(action).map_err(|e| format!("step {i}: action: {e}"))?;
        let started = ctx.started.unwrap_or(Timestamp::UNIX_EPOCH);
        let now = at.or(ctx.at).unwrap_or(started);
        let run_ctx = RunContext {
            tenant_id: ctx.tenant.as_deref().unwrap_or("acme"),
            agent_id: ctx.agent.as_deref().unwrap_or("support"),
            run_id: ctx.run.as_deref().unwrap_or("run_1"),
            run_started_at: started,
            now,
        };
        for r in 0..repeat {
            let decision = enforcer.check(&set, &action, &run_ctx);
            check(expect, &decision).map_err(|e| format!("step {i} (repeat {r}): {e}"))?;
        }
    }
    Ok(())
}

fn check_invalid(invalid: &Invalid) -> Result<(), String> {
    let result = if let Some(d) = &invalid.definition {
        PolicyDefinition::parse(d).map(drop)
    } else if let Some(r) = &invalid.rule {
        charter_core::Rule::parse(r).map(drop)
    } else if let Some(a) = &invalid.action {
        Action::parse(a).map(drop)
    } else if let Some(text) = &invalid.document {
        PolicyDocument::parse_many(text).map(drop)
    } else {
        return Err("an invalid case needs definition, rule, action or document".into());
    };
    match result {
        Ok(()) => Err("accepted".into()),
        Err(e) if e.path != invalid.path => Err(format!(
            "expected path {:?}, got {:?} ({})",
            invalid.path, e.path, e.message
        )),
        Err(e) => match &invalid.message_contains {
            Some(fragment) if !e.message.contains(fragment.as_str()) => {
                Err(format!("message {:?} lacks {fragment:?}", e.message))
            }
            _ => Ok(()),
        },
    }
}

fn run_all() -> Outcomes {
    let mut outcomes = Outcomes {
        cases: 0,
        failures: Vec::new(),
    };
    for path in case_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let file: CaseFile = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                outcomes.failures.push(format!("{name}: unreadable: {e}"));
                continue;
            }
        };
        let policies = build_policies(&file.policies);
        for case in &file.cases {
            outcomes.cases += 1;
            if let Err(e) = run_case(&file, case, &policies) {
                outcomes
                    .failures
                    .push(format!("{name} / {}: {e}", case.name));
            }
        }
        for invalid in &file.invalid {
            outcomes.cases += 1;
            if let Err(e) = check_invalid(invalid) {
                outcomes
                    .failures
                    .push(format!("{name} / {}: {e}", invalid.name));
            }
        }
    }
    outcomes
}

#[test]
fn engine_cases() {
    let outcomes = run_all();
    assert!(
        outcomes.failures.is_empty(),
        "{} of {} cases failed:\n{}",
        outcomes.failures.len(),
        outcomes.cases,
        outcomes.failures.join("\n")
    );
    assert!(
        outcomes.cases >= MIN_CASES,
        "only {} cases; the suite must hold at least {MIN_CASES}",
        outcomes.cases
    );
}
