//! Compile and evaluate: `{"policies": [definition...], "actions": [action...]}`, the
//! accepted definitions compiled into one set (scopes: the platform, tenant `acme`, agent
//! `acme`/`bot`) and the accepted actions checked in order by an in-memory `Enforcer`
//! (evaluation, settlement against limits, halts), a minute and a half apart. Nothing in it
//! may panic, and a decision's outcome is the strongest of its violations.
#![no_main]

use charter_core::{Action, CompiledSet, Enforcer, Outcome, Policy, PolicyDefinition, RunContext};
use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let items = |name: &str| match input.get(name) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let start = Timestamp::from_second(1_780_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
    let policies: Vec<Policy> = items("policies")
        .iter()
        .filter_map(|v| PolicyDefinition::parse(v).ok())
        .enumerate()
        .filter_map(|(i, definition)| {
            Some(Policy::draft(
                charter_core::PolicyId::new(format!("pol_{i}")).ok()?,
                charter_core::LineageId::new(format!("lin_{i}")).ok()?,
                definition,
                start,
            ))
        })
        .collect();
    let Ok(set) = CompiledSet::compile(&policies) else {
        return;
    };
    let mut enforcer = Enforcer::in_memory();
    for (i, action) in items("actions")
        .iter()
        .filter_map(|v| Action::parse(v).ok())
        .enumerate()
    {
        let step = i64::try_from(i).unwrap_or(i64::MAX).saturating_mul(90);
        let ctx = RunContext {
            tenant_id: "acme",
            agent_id: "bot",
            run_id: "run_1",
            run_started_at: start,
            now: start
                .saturating_add(SignedDuration::from_secs(step))
                .unwrap_or(start),
        };
        let _ = set.claims(&action, &ctx);
        let decision = enforcer.check(&set, &action, &ctx);
        let strongest = decision
            .violations
            .iter()
            .map(|v| v.outcome)
            .max()
            .unwrap_or(Outcome::Allow);
        assert_eq!(decision.outcome, strongest, "{decision:?}");
    }
});
