//! Property tests of the engine's promises: deny by precedence, rate limits never exceeded in
//! any rolling window, cost never over its cap, and replay equal to live evaluation.

use charter_core::action::Action;
use charter_core::enforcer::Enforcer;
use charter_core::engine::{CompiledSet, Outcome, RunContext};
use charter_core::policy::{Policy, PolicyDefinition, Status};
use charter_core::replay::{RecordedAction, Replay};
use charter_core::{LineageId, PolicyId, RuleId};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};

const TOOLS: &[&str] = &[
    "gmail.send_email",
    "outlook.send_email",
    "send_email",
    "crm.customers.lookup",
    "crm.customers.delete",
    "kb.search",
    "shell.exec",
    "billing.refund",
];
const TOOL_GLOBS: &[&str] = &[
    "*.send_email",
    "**.send_email",
    "crm.**",
    "crm.*.delete",
    "kb.search",
    "shell.exec",
    "billing.*",
    "**",
];
const ADDRESSES: &[&str] = &[
    "ann@acme.com",
    "bob@gmail.com",
    "eve@evil.io",
    "joe@acme.com",
];
const RESOURCES: &[&str] = &[
    "crm/customers/42/ssn",
    "crm/customers/42/name",
    "hr/salaries",
    "kb/faq",
];
const RESOURCE_GLOBS: &[&str] = &["crm/customers/*/ssn", "hr/**", "crm/**", "kb/*", "**"];
const TENANTS: &[&str] = &["acme", "globex"];
const AGENTS: &[&str] = &["support", "billing"];

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(list)
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        pick(ADDRESSES).prop_map(|a| json!({"arg": "to", "op": "eq", "value": a})),
        Just(json!({"arg": "to", "op": "not_ends_with", "value": "@acme.com"})),
        Just(json!({"arg": "to", "op": "ends_with", "value": "@acme.com"})),
        Just(json!({"arg": "amount", "op": "gt", "value": 100})),
        Just(json!({"arg": "amount", "op": "lte", "value": 50})),
        Just(json!({"arg": "to", "op": "exists"})),
        Just(json!({"arg": "to", "op": "glob", "value": "*@acme.com"})),
        Just(json!({"arg": "to", "op": "regex", "value": "gmail"})),
    ]
}

fn rule(id: usize) -> impl Strategy<Value = Value> {
    let id = format!("r{id}");
    prop_oneof![
        (
            prop_oneof![Just("allow"), Just("deny")],
            proptest::collection::vec(pick(TOOL_GLOBS), 1..3),
            proptest::collection::vec(condition(), 0..3)
        )
            .prop_map({
                let id = id.clone();
                move |(effect, tools, when)| {
                    json!({"id": id, "type": "tool", "effect": effect, "tools": tools, "when": when})
                }
            }),
        (
            prop_oneof![Just("allow"), Just("deny")],
            proptest::collection::vec(pick(RESOURCE_GLOBS), 1..3),
            proptest::option::of(proptest::sample::subsequence(vec!["read", "write", "delete"], 1..3))
        )
            .prop_map({
                let id = id.clone();
                move |(effect, resources, operations)| {
                    let mut r = json!({"id": id, "type": "data_access", "effect": effect, "resources": resources});
                    if let Some(ops) = operations {
                        r["operations"] = json!(ops);
                    }
                    r
                }
            }),
        (1u32..5, prop_oneof![Just("run"), Just("agent"), Just("tenant")]).prop_map({
            let id = id.clone();
            move |(limit, per)| json!({"id": id, "type": "rate", "limit": limit, "window": "1m", "per": per})
        }),
        (1u32..300).prop_map({
            let id = id.clone();
            move |cents| json!({"id": id, "type": "cost", "max_usd": format!("{}.{:02}", cents / 100, cents % 100), "period": "run"})
        }),
        Just(json!({"id": id.clone(), "type": "output", "deny_phrases": ["password"], "max_chars": 40})),
    ]
}

fn scope() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "platform"})),
        pick(TENANTS).prop_map(|t| json!({"type": "tenant", "tenant_id": t})),
        (pick(TENANTS), pick(AGENTS))
            .prop_map(|(t, a)| json!({"type": "agent", "tenant_id": t, "agent_id": a})),
    ]
}

/// A policy whose rule ids start at `first`, so ids are unique across a set.
fn policy(index: usize) -> impl Strategy<Value = Policy> {
    (scope(), proptest::collection::vec(0..1usize, 1..4)).prop_flat_map(move |(scope, sizes)| {
        let rules: Vec<_> = (0..sizes.len()).map(|i| rule(index * 10 + i)).collect();
        rules.prop_map(move |rules| make_policy(index, &scope, &rules))
    })
}

fn make_policy(index: usize, scope: &Value, rules: &[Value]) -> Policy {
    let definition = PolicyDefinition::parse(
        &json!({"name": format!("p{index}"), "scope": scope, "rules": rules}),
    )
    .unwrap_or_else(|e| panic!("generated policy is invalid: {e}"));
    let mut p = Policy::draft(
        PolicyId::new(format!("pol_{index}")).unwrap(),
        LineageId::new(format!("lin_{index}")).unwrap(),
        definition,
        Timestamp::UNIX_EPOCH,
    );
    p.status = Status::Active;
    p
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (
            pick(TOOLS),
            proptest::option::of(prop_oneof![
                pick(ADDRESSES).prop_map(|a| json!(a)),
                proptest::collection::vec(pick(ADDRESSES), 0..3).prop_map(|v| json!(v)),
                Just(json!(7)),
            ]),
            proptest::option::of(0i64..200),
            0u32..150
        )
            .prop_map(|(tool, to, amount, cents)| {
                let mut args = serde_json::Map::new();
                if let Some(to) = to {
                    args.insert("to".into(), to);
                }
                if let Some(amount) = amount {
                    args.insert("amount".into(), json!(amount));
                }
                Action::parse(&json!({"kind": "tool_call", "tool": tool, "args": args,
                                      "cost_usd": format!("{}.{:02}", cents / 100, cents % 100)}))
                .unwrap()
            }),
        (
            pick(RESOURCES),
            prop_oneof![Just("read"), Just("write"), Just("delete")]
        )
            .prop_map(|(resource, operation)| {
                Action::parse(
                    &json!({"kind": "data_access", "resource": resource, "operation": operation}),
                )
                .unwrap()
            }),
        prop_oneof![
            Just("hello"),
            Just("your password is hunter2"),
            Just("a much longer answer that goes past forty characters")
        ]
        .prop_map(|text| Action::parse(&json!({"kind": "output", "text": text})).unwrap()),
    ]
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + seconds).unwrap()
}

fn rule_ids(decision: &charter_core::Decision) -> Vec<String> {
    let mut ids: Vec<String> = decision
        .violations
        .iter()
        .map(|v| format!("{}/{}", v.source.policy.id, v.source.rule_id))
        .collect();
    ids.sort();
    ids
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Adding a policy never turns a refusal into an allow, and never removes a violation.
    #[test]
    fn adding_a_policy_never_widens(
        base in proptest::collection::vec(0..1usize, 0..4)
            .prop_flat_map(|v| (0..v.len()).map(policy).collect::<Vec<_>>()),
        extra in policy(9),
        action in action(),
        tenant in pick(TENANTS),
        agent in pick(AGENTS),
    ) {
        let ctx = RunContext { tenant_id: tenant, agent_id: agent, run_id: "run_1", run_started_at: at(0), now: at(5) };
        let before = CompiledSet::compile(&base).unwrap();
        let mut wider = base.clone();
        wider.push(extra);
        let after = CompiledSet::compile(&wider).unwrap();
        let d1 = Enforcer::in_memory().check(&before, &action, &ctx);
        let d2 = Enforcer::in_memory().check(&after, &action, &ctx);
        prop_assert!(d2.outcome >= d1.outcome, "{:?} then {:?}", d1.outcome, d2.outcome);
        let (v1, v2) = (rule_ids(&d1), rule_ids(&d2));
        for v in &v1 {
            prop_assert!(v2.contains(v), "violation {v} disappeared: {v1:?} -> {v2:?}");
        }
    }

    /// In any rolling window, at most `limit` matching actions are allowed per key.
    #[test]
    fn rate_limit_holds_in_every_rolling_window(
        limit in 1u32..6,
        window_s in 1i64..120,
        gaps in proptest::collection::vec(0i64..40, 1..120),
        runs in proptest::collection::vec(0usize..3, 120),
    ) {
        let policy = make_policy(0, &json!({"type": "tenant", "tenant_id": "acme"}),
            &[json!({"id": "r", "type": "rate", "limit": limit, "window": format!("{window_s}s"), "per": "agent"})]);
        let set = CompiledSet::compile([&policy]).unwrap();
        let mut enforcer = Enforcer::in_memory();
        let action = Action::parse(&json!({"kind": "tool_call", "tool": "kb.search"})).unwrap();
        let run_ids = ["run_a", "run_b", "run_c"];
        let mut t = 0i64;
        let mut allowed = Vec::new();
        for (gap, run) in gaps.iter().zip(&runs) {
            // Tenths of a second, so bursts land inside one second.
            t += gap;
            let now = at(0).checked_add(SignedDuration::from_millis(t * 100)).unwrap();
            let ctx = RunContext { tenant_id: "acme", agent_id: "support", run_id: run_ids[*run], run_started_at: at(0), now };
            if enforcer.check(&set, &action, &ctx).outcome == Outcome::Allow {
                allowed.push(t * 100);
            }
        }
        let window = window_s * 1000;
        for (i, end) in allowed.iter().enumerate() {
            let inside = allowed[..=i].iter().filter(|s| **s > end - window).count();
            prop_assert!(inside <= limit as usize, "{inside} allowed in the window ending at {end}ms (limit {limit})");
        }
        // Not absurdly strict either: the first `limit` actions always pass.
        prop_assert!(allowed.len() >= (limit as usize).min(gaps.len()));
    }

    /// Allowed spend never exceeds the cap, whatever the order and size of costs.
    #[test]
    fn cost_never_exceeds_the_cap(
        cap_cents in 1u64..2_000,
        costs in proptest::collection::vec(0u64..500, 1..60),
    ) {
        let policy = make_policy(0, &json!({"type": "platform"}),
            &[json!({"id": "c", "type": "cost", "max_usd": format!("{}.{:02}", cap_cents / 100, cap_cents % 100), "period": "day", "per": "tenant", "timezone": "Europe/Paris"})]);
        let set = CompiledSet::compile([&policy]).unwrap();
        let mut enforcer = Enforcer::in_memory();
        let mut spent = 0u64;
        for (i, cents) in costs.iter().enumerate() {
            let action = Action::parse(&json!({"kind": "model_call", "model": "m", "cost_usd": format!("{}.{:02}", cents / 100, cents % 100)})).unwrap();
            // A new run per action: a halt stops one run, not the tenant's budget accounting.
            let run = format!("run_{i}");
            let ctx = RunContext { tenant_id: "acme", agent_id: "support", run_id: &run, run_started_at: at(0), now: at(i64::try_from(i).unwrap()) };
            let decision = enforcer.check(&set, &action, &ctx);
            let fits = spent + cents <= cap_cents;
            prop_assert_eq!(decision.outcome == Outcome::Allow, fits, "spent {} + {} vs cap {}", spent, cents, cap_cents);
            if decision.outcome == Outcome::Allow {
                spent += cents;
            } else {
                prop_assert_eq!(decision.outcome, Outcome::Halt);
            }
        }
        prop_assert!(spent <= cap_cents);
    }

    /// State rebuilt from the allowed actions of a history decides the next action exactly as
    /// the state that lived through it.
    #[test]
    fn rebuilt_limits_equal_live_limits(
        history in proptest::collection::vec((0usize..3, 0i64..15, 0u32..120), 1..80),
        next in (0usize..3, 0u32..120),
    ) {
        let policy = make_policy(0, &json!({"type": "tenant", "tenant_id": "acme"}), &[
            json!({"id": "rate", "type": "rate", "limit": 5, "window": "1m", "per": "agent"}),
            json!({"id": "cost", "type": "cost", "max_usd": "3.00", "period": "day", "per": "tenant"}),
        ]);
        let set = CompiledSet::compile([&policy]).unwrap();
        let mut live = Enforcer::in_memory();
        let mut allowed = Vec::new();
        let mut t = 0;
        let action = |cents: u32| Action::parse(&json!({"kind": "model_call", "model": "m",
            "cost_usd": format!("{}.{:02}", cents / 100, cents % 100)})).unwrap();
        let agents = ["support", "billing", "research"];
        for (i, (agent, gap, cents)) in history.iter().enumerate() {
            t += gap;
            let run = format!("run_{i}");
            let ctx = RunContext { tenant_id: "acme", agent_id: agents[*agent], run_id: &run, run_started_at: at(0), now: at(t) };
            if live.check(&set, &action(*cents), &ctx).outcome == Outcome::Allow {
                allowed.push((*agent, t, *cents, run));
            }
        }
        let mut rebuilt = Enforcer::in_memory();
        for (agent, t, cents, run) in &allowed {
            let ctx = RunContext { tenant_id: "acme", agent_id: agents[*agent], run_id: run, run_started_at: at(0), now: at(*t) };
            rebuilt.record_allowed(&set, &action(*cents), &ctx);
        }
        let ctx = RunContext { tenant_id: "acme", agent_id: agents[next.0], run_id: "run_next", run_started_at: at(0), now: at(t + 1) };
        let a = live.check(&set, &action(next.1), &ctx);
        let b = rebuilt.check(&set, &action(next.1), &ctx);
        prop_assert_eq!(a, b);
    }

    /// Replaying a sequence gives the same decision for every action as checking it live.
    #[test]
    fn replay_equals_live_evaluation(
        policies in proptest::collection::vec(0..1usize, 1..3)
            .prop_flat_map(|v| (0..v.len()).map(policy).collect::<Vec<_>>()),
        steps in proptest::collection::vec((action(), 0usize..3, 0i64..20, pick(AGENTS)), 1..60),
    ) {
        let set = CompiledSet::compile(&policies).unwrap();
        let mut live = Enforcer::in_memory();
        let rules: Vec<RuleId> = policies.iter().flat_map(|p| p.rules().iter().map(|r| r.id.clone())).collect();
        let mut replay = Replay::new(&set, rules);
        let mut t = 0;
        let mut refused = 0u64;
        for (action, run, gap, agent) in steps {
            t += gap;
            let run_id = format!("run_{run}");
            let ctx = RunContext { tenant_id: "acme", agent_id: agent, run_id: &run_id, run_started_at: at(0), now: at(t) };
            let expected = live.check(&set, &action, &ctx).outcome;
            if expected.is_refused() {
                refused += 1;
            }
            let recorded = RecordedAction {
                run_id: run_id.clone(), tenant_id: "acme".into(), agent_id: agent.into(),
                run_started_at: at(0), at: at(t), action: Some(action), recorded: None,
            };
            prop_assert_eq!(replay.push(&recorded), Some(expected));
        }
        let report = replay.finish();
        prop_assert_eq!(report.actions_blocked, refused);
        prop_assert_eq!(report.actions_new, refused);
    }
}
