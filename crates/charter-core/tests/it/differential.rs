//! A differential property: the engine's decisions on random policies and sequences of actions
//! equal those of a deliberately simple reference evaluator written here, straight from
//! product.md §2.3 and §4 (and docs/engine.md where the spec leaves a choice).
//!
//! The generator draws policies at every scope (platform, tenant, agent) with rules of all six
//! types: tool rules (allow and deny, globs with `*`, `?` and `**` over `.` and `/`, conditions
//! with every op on scalar, array, nested and missing arguments), data access rules (globs,
//! operations, labels), output rules (channels, phrases, regexes, PII detectors, `max_chars`,
//! JSON Schema), time rules (allow and deny windows in three zones, windows across midnight,
//! `max_run_duration`), rate rules (per run, agent and tenant, with kind and tool filters) and
//! cost rules (per run, hour, day, week and month, in three zones). Actions of all four kinds
//! come from small alphabets, so that rules match, in a sequence over four runs of three agents
//! and two tenants, with timestamps that cross hours, days and weeks. Policies and actions are
//! JSON read by the real parsers; the engine is the in-process [`Enforcer`].
//!
//! Compared, for every action: the outcome (allow, block, halt) and the violated rules (policy,
//! rule id, outcome), so a run's halt and every budget consumed are compared too. Denser
//! properties compare tool, data access and output rules on many actions each, and time rules
//! on the edges of their windows and durations, without state.
//!
//! The reference reads the generated JSON, never the engine's types: naive loops over every
//! policy and rule, globs by expanding each `**` into every number of whole segments, limits by
//! summing the history of allowed actions.
//!
//! Not covered, by construction:
//! - Rate windows are counted by the engine in buckets of 1/60 of the window, so a limit may
//!   block up to 1/60 early (docs/engine.md). Timestamps here fall on bucket boundaries (5 s
//!   steps, windows of 1 and 5 minutes), where the engine's window is exactly `[now − window,
//!   now]`: that is the window the reference counts.
//! - Calendar periods are read as local dates and hours: no daylight-saving change falls in the
//!   generated time ranges (June), where an hour would repeat.
//! - PII detection is compared on labelled fragments (a text is a few of them, each known to
//!   hold the listed kinds or none), not on the detectors' full grammar.
//! - All runs share one compiled set: counting across runs pinned to different sets is the
//!   store's (docs/engine.md, "What a counter counts, from any run").

use std::collections::BTreeSet;

use charter_core::action::Action;
use charter_core::enforcer::Enforcer;
use charter_core::engine::{CompiledSet, Outcome, RunContext};
use charter_core::policy::{Policy, PolicyDefinition, Status};
use charter_core::{LineageId, PolicyId};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Alphabets

const TOOLS: &[&str] = &[
    "gmail.send_email",
    "gmail.read",
    "db.query",
    "web.fetch",
    "send_email",
    "mcp/fs.read",
    "gmail.drafts.read",
    "db",
];
const TOOL_GLOBS: &[&str] = &[
    "gmail.send_email",
    "gmail.*",
    "gmail?read",
    "*.send_email",
    "**.send_email",
    "**",
    "db.**",
    "**.read",
    "*.re?d",
    "mcp/**",
    "**/fs.read",
    "mcp/**.read",
    "w*b.f*",
    "gmail.**.read",
    "*",
    "send_email",
];
const STRINGS: &[&str] = &[
    "ann@acme.com",
    "bob@gmail.com",
    "eve@evil.io",
    "files/report-2024.pdf",
    "100",
    "ACME",
    "",
];
const NUMBERS: &[&str] = &["100", "100.0", "50", "7.5", "-1", "0"];
const ARG_PATHS: &[&str] = &[
    "to",
    "to",
    "to",
    "amount",
    "amount",
    "amount",
    "flag",
    "meta",
    "meta.tag",
    "meta.0.tag",
    "meta.1",
    "nothing",
];
const ARG_GLOBS: &[&str] = &[
    "*@acme.com",
    "*",
    "**",
    "bob@*",
    "files/*",
    "files/**",
    "report-*",
    "**/report-*.pdf",
    "?ve@evil.io",
];
const ARG_REGEXES: &[&str] = &["acme", "^bob", "(?i)ACME", r"\.io$", "[0-9]+", "^$"];
const ARG_TEXTS: &[&str] = &["@acme.com", "bob", "gmail", ".io", "", "100"];
const OPS: &[&str] = &[
    "eq",
    "ne",
    "in",
    "not_in",
    "glob",
    "not_glob",
    "regex",
    "not_regex",
    "lt",
    "lte",
    "gt",
    "gte",
    "exists",
    "not_exists",
    "contains",
    "ends_with",
    "not_ends_with",
];

/// Resources as written in actions, with their normal form (docs/engine.md, "Globs").
const RESOURCES: &[(&str, &str)] = &[
    ("crm/customers/42/ssn", "crm/customers/42/ssn"),
    ("crm/customers/42/name", "crm/customers/42/name"),
    ("hr/salaries", "hr/salaries"),
    ("hr", "hr"),
    ("kb/faq", "kb/faq"),
    ("kb/faq/intro", "kb/faq/intro"),
    ("kb/./faq", "kb/faq"),
    ("/hr/salaries/", "hr/salaries"),
    ("crm//customers/42/../42/ssn", "crm/customers/42/ssn"),
];
const RESOURCE_GLOBS: &[&str] = &[
    "crm/customers/*/ssn",
    "hr/**",
    "crm/**",
    "kb/*",
    "**",
    "**/ssn",
    "kb/**/intro",
    "crm/customers/4?/name",
    "hr/salaries",
    "kb?faq",
];
const OPERATIONS: &[&str] = &["read", "write", "delete"];
const LABELS: &[&str] = &["pii", "region:us", "public"];

const CHANNELS: &[&str] = &["email", "chat"];
const PHRASES: &[&str] = &["password", "Secret", "hunter2"];
const OUTPUT_REGEXES: &[&str] = &[r"\d{3}-\d{2}", "(?i)confidential", "^hello", "é"];
const PII_KINDS: &[&str] = &[
    "email",
    "phone",
    "credit_card",
    "ssn",
    "iban",
    "ip_address",
    "jwt",
    "api_key",
];
/// Pieces of output text and the kinds of personal data each holds (by construction).
const FRAGMENTS: &[(&str, &[&str])] = &[
    ("hello", &[]),
    ("your PassWord is hunter2", &[]),
    ("the SECRET plan", &[]),
    ("Password:", &[]),
    ("déjà vu", &[]),
    ("naïve", &[]),
    ("CONFIDENTIAL: café au lait", &[]),
    ("version 1.2.3", &[]),
    ("mail bob@acme.com", &["email"]),
    ("card 4111111111111111", &["credit_card"]),
    ("card 4111111111111112", &[]),
    ("ssn 123-45-6789", &["ssn"]),
    ("call +14155552671", &["phone"]),
    ("host 192.168.1.20", &["ip_address"]),
    ("iban DE89370400440532013000", &["iban"]),
    (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        &["jwt"],
    ),
    ("key sk_live_abcdefghijklmnop1234", &["api_key"]),
];
/// Whole outputs that are (or are not) JSON, none holding personal data.
const DOCUMENTS: &[&str] = &[
    r#"{"answer":"ok"}"#,
    r#"{"answer":1}"#,
    r#"{"other":"x"}"#,
    "[1,2]",
    r#"{"answer": "not closed""#,
];
/// JSON Schemas of output rules, each with its meaning written out in `schema_holds`.
const SCHEMAS: &[&str] = &[
    r#"{"type":"object","required":["answer"]}"#,
    r#"{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}"#,
];

const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const TIMES_FROM: &[&str] = &["00:00", "08:00", "09:30", "17:00", "22:00"];
const TIMES_TO: &[&str] = &["06:00", "09:30", "17:00", "22:00", "24:00"];
const ZONES: &[&str] = &["UTC", "Europe/Paris", "Asia/Kolkata"];

/// Runs: id, tenant, agent, start (seconds after the sequence's base).
const RUNS: &[(&str, &str, &str, i64)] = &[
    ("run_a", "acme", "support", 0),
    ("run_b", "acme", "billing", 0),
    ("run_c", "globex", "support", 0),
    ("run_d", "acme", "support", -1500),
];
/// A Sunday evening (crossing Paris's midnight at 22:00 UTC) and a Wednesday morning.
const BASES: &[&str] = &["2026-06-14T21:50:00Z", "2026-06-17T08:58:00Z"];

// ---------------------------------------------------------------------------------------------
// Generators

fn pick<T: Clone + std::fmt::Debug + 'static>(list: &'static [T]) -> impl Strategy<Value = T> {
    select(list)
}

fn some_of(list: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    subsequence(list, 1..=max.min(list.len()))
}

fn number() -> impl Strategy<Value = Value> {
    pick(NUMBERS).prop_map(|n| serde_json::from_str(n).unwrap())
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        5 => pick(STRINGS).prop_map(|s| json!(s)),
        3 => number(),
        1 => Just(json!(true)),
        1 => Just(Value::Null),
    ]
}

fn arg_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        2 => proptest::collection::vec(scalar(), 0..4).prop_map(Value::Array),
    ]
}

fn meta() -> impl Strategy<Value = Value> {
    prop_oneof![
        arg_value().prop_map(|v| json!({"tag": v})),
        proptest::collection::vec(proptest::option::of(arg_value()), 0..3).prop_map(|items| {
            Value::Array(
                items
                    .into_iter()
                    .map(|v| match v {
                        Some(v) => json!({"tag": v}),
                        None => json!({"other": 1}),
                    })
                    .collect(),
            )
        }),
        scalar(),
    ]
}

fn args() -> impl Strategy<Value = Value> {
    let to = prop_oneof![
        6 => pick(STRINGS).prop_map(|s| json!(s)),
        3 => proptest::collection::vec(pick(STRINGS).prop_map(|s| json!(s)), 0..4)
            .prop_map(Value::Array),
        2 => arg_value(),
    ];
    let amount = prop_oneof![
        6 => number(),
        1 => proptest::collection::vec(number(), 0..3).prop_map(Value::Array),
        2 => arg_value(),
    ];
    (
        proptest::option::weighted(0.8, to),
        proptest::option::weighted(0.7, amount),
        proptest::option::of(scalar()),
        proptest::option::of(meta()),
    )
        .prop_map(|(to, amount, flag, meta)| {
            let mut map = Map::new();
            for (key, value) in [
                ("to", to),
                ("amount", amount),
                ("flag", flag),
                ("meta", meta),
            ] {
                if let Some(value) = value {
                    map.insert(key.into(), value);
                }
            }
            Value::Object(map)
        })
}

fn condition() -> impl Strategy<Value = Value> {
    (pick(ARG_PATHS), pick(OPS)).prop_flat_map(|(arg, op)| {
        let value: BoxedStrategy<Option<Value>> = match op {
            "exists" | "not_exists" => Just(None).boxed(),
            "eq" | "ne" => arg_value().prop_map(Some).boxed(),
            "in" | "not_in" => proptest::collection::vec(scalar(), 0..4)
                .prop_map(|v| Some(Value::Array(v)))
                .boxed(),
            "glob" | "not_glob" => pick(ARG_GLOBS).prop_map(|g| Some(json!(g))).boxed(),
            "regex" | "not_regex" => pick(ARG_REGEXES).prop_map(|r| Some(json!(r))).boxed(),
            "lt" | "lte" | "gt" | "gte" => number().prop_map(Some).boxed(),
            _ => pick(ARG_TEXTS).prop_map(|t| Some(json!(t))).boxed(),
        };
        value.prop_map(move |value| {
            let mut c = json!({"arg": arg, "op": op});
            if let Some(value) = value {
                c["value"] = value;
            }
            c
        })
    })
}

fn effect() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("deny"), Just("allow")]
}

fn tool_rule() -> impl Strategy<Value = Value> {
    (
        effect(),
        some_of(TOOL_GLOBS, 3),
        prop_oneof![1 => Just(0usize), 3 => Just(1), 1 => Just(2)]
            .prop_flat_map(|n| proptest::collection::vec(condition(), n)),
    )
        .prop_map(|(effect, tools, when)| {
            let mut r = json!({"type": "tool", "effect": effect, "tools": tools});
            if !when.is_empty() {
                r["when"] = json!(when);
            }
            r
        })
}

fn data_rule() -> impl Strategy<Value = Value> {
    (
        effect(),
        some_of(RESOURCE_GLOBS, 3),
        proptest::option::of(some_of(OPERATIONS, 2)),
        proptest::option::of(subsequence(LABELS, 0..=2)),
    )
        .prop_map(|(effect, resources, operations, labels)| {
            let mut r = json!({"type": "data_access", "effect": effect, "resources": resources});
            if let Some(ops) = operations {
                r["operations"] = json!(ops);
            }
            // A deny rule's label list is never empty (refused when written).
            if let Some(labels) = labels
                && (effect == "allow" || !labels.is_empty())
            {
                r["labels"] = json!(labels);
            }
            r
        })
}

fn output_rule() -> impl Strategy<Value = Value> {
    (
        proptest::option::weighted(0.3, some_of(CHANNELS, 1)),
        proptest::option::weighted(0.35, some_of(PHRASES, 2)),
        proptest::option::weighted(0.35, some_of(OUTPUT_REGEXES, 2)),
        proptest::option::weighted(0.35, some_of(PII_KINDS, 3)),
        proptest::option::weighted(
            0.3,
            prop_oneof![Just(5u64), Just(7), Just(20), Just(26), Just(40)],
        ),
        proptest::option::weighted(0.25, pick(SCHEMAS)),
    )
        .prop_map(|(channels, phrases, regexes, pii, max_chars, schema)| {
            let mut r = json!({"type": "output"});
            let checks = [
                ("deny_phrases", phrases.map(|p| json!(p))),
                ("deny_regex", regexes.map(|p| json!(p))),
                ("pii", pii.map(|p| json!(p))),
                ("max_chars", max_chars.map(|m| json!(m))),
                (
                    "json_schema",
                    schema.map(|s| serde_json::from_str::<Value>(s).unwrap()),
                ),
            ];
            let mut any = false;
            for (field, value) in checks {
                if let Some(value) = value {
                    r[field] = value;
                    any = true;
                }
            }
            if !any {
                r["max_chars"] = json!(20);
            }
            if let Some(channels) = channels {
                r["channels"] = json!(channels);
            }
            r
        })
}

fn window() -> impl Strategy<Value = Value> {
    (some_of(DAYS, 3), pick(TIMES_FROM), pick(TIMES_TO))
        .prop_filter("from and to differ", |(_, from, to)| from != to)
        .prop_map(|(days, from, to)| json!({"days": days, "from": from, "to": to}))
}

fn time_rule() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(prop_oneof![Just("30m"), Just("3h")]),
        proptest::option::of(proptest::collection::vec(window(), 1..3)),
        proptest::option::of(proptest::collection::vec(window(), 1..3)),
        proptest::option::of(pick(ZONES)),
    )
        .prop_map(|(max, allow, deny, zone)| {
            let mut r = json!({"type": "time"});
            if let Some(max) = max {
                r["max_run_duration"] = json!(max);
            }
            if let Some(allow) = allow {
                r["allow"] = json!(allow);
            }
            if let Some(deny) = deny {
                r["deny"] = json!(deny);
            }
            if max.is_none() && r.get("allow").is_none() && r.get("deny").is_none() {
                r["max_run_duration"] = json!("30m");
            }
            if let Some(zone) = zone {
                r["timezone"] = json!(zone);
            }
            r
        })
}

fn per() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop_oneof![Just("run"), Just("agent"), Just("tenant")])
}

fn rate_rule() -> impl Strategy<Value = Value> {
    (
        1u32..4,
        prop_oneof![Just("1m"), Just("5m")],
        per(),
        proptest::option::of(some_of(
            &["tool_call", "data_access", "output", "model_call"],
            2,
        )),
        proptest::option::of(some_of(TOOL_GLOBS, 2)),
    )
        .prop_map(|(limit, window, per, kinds, tools)| {
            let mut r = json!({"type": "rate", "limit": limit, "window": window});
            if let Some(per) = per {
                r["per"] = json!(per);
            }
            if kinds.is_some() || tools.is_some() {
                let mut m = json!({});
                if let Some(kinds) = kinds {
                    m["kinds"] = json!(kinds);
                }
                if let Some(tools) = tools {
                    m["tools"] = json!(tools);
                }
                r["match"] = m;
            }
            r
        })
}

fn cost_rule() -> impl Strategy<Value = Value> {
    (
        pick(&["0", "0.05", "0.10", "0.30"]),
        pick(&["run", "hour", "day", "week", "month"]),
        per(),
        proptest::option::of(pick(ZONES)),
    )
        .prop_map(|(max, period, per, zone)| {
            let mut r = json!({"type": "cost", "max_usd": max, "period": period});
            // With `period: run` the spend counted is the run's own (refused otherwise).
            let per = if period == "run" {
                per.map(|_| "run")
            } else {
                per
            };
            if let Some(per) = per {
                r["per"] = json!(per);
            }
            if let Some(zone) = zone {
                r["timezone"] = json!(zone);
            }
            r
        })
}

fn rule() -> impl Strategy<Value = Value> {
    prop_oneof![
        5 => tool_rule(),
        3 => data_rule(),
        3 => output_rule(),
        2 => time_rule(),
        3 => rate_rule(),
        2 => cost_rule(),
    ]
}

fn scope() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "platform"})),
        pick(&["acme", "globex"]).prop_map(|t| json!({"type": "tenant", "tenant_id": t})),
        pick(&[
            ("acme", "support"),
            ("acme", "billing"),
            ("globex", "support")
        ])
        .prop_map(|(t, a)| json!({"type": "agent", "tenant_id": t, "agent_id": a})),
    ]
}

/// A policy as JSON: a scope and 1–4 rules with ids unique within it.
fn policy_json() -> impl Strategy<Value = Value> {
    (scope(), proptest::collection::vec(rule(), 1..5)).prop_map(|(scope, rules)| {
        let rules: Vec<Value> = rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r["id"] = json!(format!("r{i}"));
                r
            })
            .collect();
        json!({"scope": scope, "rules": rules})
    })
}

fn output_text() -> impl Strategy<Value = (String, BTreeSet<&'static str>)> {
    prop_oneof![
        3 => proptest::collection::vec(pick(FRAGMENTS), 0..4).prop_map(|fragments| {
            let text: Vec<&str> = fragments.iter().map(|(t, _)| *t).collect();
            let kinds = fragments.iter().flat_map(|(_, k)| k.iter().copied()).collect();
            (text.join(" "), kinds)
        }),
        1 => pick(DOCUMENTS).prop_map(|d| (d.to_owned(), BTreeSet::new())),
    ]
}

fn cost() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(pick(&["0", "0.01", "0.05", "0.10"]))
}

/// One action as JSON, with the personal data its output holds (for the reference).
fn action_json() -> impl Strategy<Value = (Value, BTreeSet<&'static str>)> {
    prop_oneof![
        4 => (pick(TOOLS), proptest::option::of(args()), cost()).prop_map(|(tool, args, cost)| {
            let mut a = json!({"kind": "tool_call", "tool": tool});
            if let Some(args) = args {
                a["args"] = args;
            }
            (with_cost(a, cost), BTreeSet::new())
        }),
        3 => (pick(RESOURCES), pick(OPERATIONS), subsequence(LABELS, 0..=2), cost()).prop_map(
            |((resource, _), operation, labels, cost)| {
                let mut a = json!({
                    "kind": "data_access", "resource": resource, "operation": operation
                });
                if !labels.is_empty() {
                    a["labels"] = json!(labels);
                }
                (with_cost(a, cost), BTreeSet::new())
            }
        ),
        3 => (output_text(), proptest::option::of(pick(CHANNELS)), cost()).prop_map(
            |((text, kinds), channel, cost)| {
                let mut a = json!({"kind": "output", "text": text});
                if let Some(channel) = channel {
                    a["channel"] = json!(channel);
                }
                (with_cost(a, cost), kinds)
            }
        ),
        1 => cost().prop_map(|cost| {
            (with_cost(model_call(), cost), BTreeSet::new())
        }),
    ]
}

fn model_call() -> Value {
    json!({"kind": "model_call", "model": "openai/gpt-4o", "input_tokens": 10, "output_tokens": 20})
}

fn with_cost(mut action: Value, cost: Option<&str>) -> Value {
    if let Some(cost) = cost {
        action["cost_usd"] = json!(cost);
    }
    action
}

/// Seconds between two actions: bursts, minutes, and jumps across hours and days.
fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0i64),
        6 => Just(5),
        4 => Just(30),
        2 => Just(60),
        1 => Just(300),
        1 => Just(1800),
        1 => Just(7200),
    ]
}

#[derive(Debug, Clone)]
struct Step {
    action: Value,
    pii: BTreeSet<&'static str>,
    run: usize,
    gap: i64,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (action_json(), 0..RUNS.len(), gap()).prop_map(|((action, pii), run, gap)| Step {
            action,
            pii,
            run,
            gap,
        }),
        1..30,
    )
}

// ---------------------------------------------------------------------------------------------
// The reference evaluator

/// A violated rule: the policy's index, the rule's id, and `halt` or `block`.
type Fired = (usize, String, Outcome);

/// An action the reference allowed, as later limits count it.
struct Allowed {
    at: i64,
    run: usize,
    action: Value,
    cost_micros: u64,
}

struct Reference<'a> {
    policies: &'a [Value],
    base: i64,
    allowed: Vec<Allowed>,
    halted: Vec<Option<Vec<Fired>>>,
}

impl Reference<'_> {
    /// Decides one action at `at` (seconds since the epoch) of run `run`.
    fn check(&mut self, step: &Step, at: i64) -> (Outcome, Vec<Fired>) {
        if let Some(fired) = &self.halted[step.run] {
            return (Outcome::Halt, fired.clone());
        }
        let (_, tenant, agent, start) = RUNS[step.run];
        let mut fired = Vec::new();
        for (p, policy) in self.policies.iter().enumerate() {
            if !covers(&policy["scope"], tenant, agent) {
                continue;
            }
            for rule in policy["rules"].as_array().unwrap() {
                let id = rule["id"].as_str().unwrap().to_owned();
                for outcome in self.violations(rule, step, at, self.base + start) {
                    fired.push((p, id.clone(), outcome));
                }
            }
        }
        // Deny by precedence: any violation refuses, the strongest outcome wins (§2.3, §4).
        let outcome = fired.iter().map(|f| f.2).max().unwrap_or(Outcome::Allow);
        match outcome {
            Outcome::Allow => self.allowed.push(Allowed {
                at,
                run: step.run,
                action: step.action.clone(),
                cost_micros: micros(&step.action["cost_usd"]),
            }),
            Outcome::Halt => {
                let halting = fired
                    .iter()
                    .filter(|f| f.2 == Outcome::Halt)
                    .cloned()
                    .collect();
                self.halted[step.run] = Some(halting);
            }
            Outcome::Block => {}
        }
        (outcome, fired)
    }

    /// The outcomes of a rule's violations by this action (a time rule may both halt and
    /// block).
    fn violations(&self, rule: &Value, step: &Step, at: i64, run_start: i64) -> Vec<Outcome> {
        let action = &step.action;
        let block = |v: bool| if v { vec![Outcome::Block] } else { vec![] };
        match rule["type"].as_str().unwrap() {
            "tool" => block(action["kind"] == "tool_call" && tool_refuses(rule, action)),
            "data_access" => block(action["kind"] == "data_access" && data_refuses(rule, action)),
            "output" => block(action["kind"] == "output" && output_refuses(rule, step)),
            "time" => time_violations(rule, at, run_start),
            "rate" => {
                if !rate_counts(rule, action) {
                    return vec![];
                }
                let window = duration_seconds(rule["window"].as_str().unwrap());
                let per = rule["per"].as_str().unwrap_or("run");
                let used = self
                    .allowed
                    .iter()
                    .filter(|a| a.at >= at - window && a.at <= at)
                    .filter(|a| same_key(per, a.run, step.run))
                    .filter(|a| rate_counts(rule, &a.action))
                    .count();
                block(used + 1 > usize::try_from(rule["limit"].as_u64().unwrap()).unwrap())
            }
            "cost" => {
                let per = rule["per"].as_str().unwrap_or("run");
                let period = rule["period"].as_str().unwrap();
                let zone = rule["timezone"].as_str().unwrap_or("UTC");
                let spent: u64 = self
                    .allowed
                    .iter()
                    .filter(|a| same_key(per, a.run, step.run))
                    .filter(|a| {
                        period == "run"
                            || period_of(a.at, period, zone) == period_of(at, period, zone)
                    })
                    .map(|a| a.cost_micros)
                    .sum();
                let cap = micros(&rule["max_usd"]);
                if spent + micros(&action["cost_usd"]) > cap {
                    vec![Outcome::Halt]
                } else {
                    vec![]
                }
            }
            other => panic!("unknown rule type {other}"),
        }
    }
}

/// A time rule: `max_run_duration` halts an action strictly later than that after the run's
/// start; being outside every allow window or inside a deny window blocks (one violation).
fn time_violations(rule: &Value, at: i64, run_start: i64) -> Vec<Outcome> {
    let mut out = Vec::new();
    if let Some(max) = rule["max_run_duration"].as_str()
        && at - run_start > duration_seconds(max)
    {
        out.push(Outcome::Halt);
    }
    let zone = rule["timezone"].as_str().unwrap_or("UTC");
    let inside = |windows: &Value| {
        windows
            .as_array()
            .unwrap()
            .iter()
            .any(|w| window_contains(w, at, zone))
    };
    let outside_allow = rule.get("allow").is_some_and(|a| !inside(a));
    let inside_deny = rule.get("deny").is_some_and(inside);
    if outside_allow || inside_deny {
        out.push(Outcome::Block);
    }
    out
}

fn covers(scope: &Value, tenant: &str, agent: &str) -> bool {
    match scope["type"].as_str().unwrap() {
        "platform" => true,
        "tenant" => scope["tenant_id"] == tenant,
        _ => scope["tenant_id"] == tenant && scope["agent_id"] == agent,
    }
}

/// Whether two runs share a limit's key.
fn same_key(per: &str, a: usize, b: usize) -> bool {
    let (ra, ta, aa, _) = RUNS[a];
    let (rb, tb, ab, _) = RUNS[b];
    match per {
        "run" => ra == rb,
        "agent" => ta == tb && aa == ab,
        _ => ta == tb,
    }
}

/// Dollars written as a decimal string, in micro-dollars (absent: 0).
fn micros(value: &Value) -> u64 {
    let Some(text) = value.as_str() else {
        return 0;
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = format!("{fraction:0<6}");
    whole.parse::<u64>().unwrap() * 1_000_000 + fraction.parse::<u64>().unwrap()
}

fn duration_seconds(text: &str) -> i64 {
    let (number, unit) = text.split_at(text.len() - 1);
    let n: i64 = number.parse().unwrap();
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 86_400,
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
        .unwrap_or_default()
}

// Tool rules

fn tool_refuses(rule: &Value, action: &Value) -> bool {
    let tool = action["tool"].as_str().unwrap();
    let listed = strings(&rule["tools"])
        .iter()
        .any(|g| glob_matches(g, tool, &['.', '/']));
    let empty = Map::new();
    let args = action["args"].as_object().unwrap_or(&empty);
    let conditions = rule
        .get("when")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rule["effect"] == "deny" {
        listed && conditions.iter().all(|c| condition_holds(c, args, true))
    } else {
        !listed || !conditions.iter().all(|c| condition_holds(c, args, false))
    }
}

/// A condition on the arguments, read as a deny rule (`deny`: any element, an unevaluable value
/// counting as holding) or an allow rule (every element, an unevaluable value as unmet).
fn condition_holds(condition: &Value, args: &Map<String, Value>, deny: bool) -> bool {
    let op = condition["op"].as_str().unwrap();
    let found = resolve(args, condition["arg"].as_str().unwrap());
    match op {
        "exists" => return !found.is_empty(),
        "not_exists" => return found.is_empty(),
        _ => {}
    }
    // A missing argument makes a condition false.
    if found.is_empty() {
        return false;
    }
    let mut elements = Vec::new();
    for value in found {
        match value {
            Value::Array(items) => elements.extend(items.iter()),
            other => elements.push(other),
        }
    }
    let operand = &condition["value"];
    if deny {
        elements.iter().any(|e| test(op, operand, e) != Some(false))
    } else {
        elements.iter().all(|e| test(op, operand, e) == Some(true))
    }
}

/// The values at a dotted path: objects by key, arrays element by element (a number indexes).
fn resolve<'v>(args: &'v Map<String, Value>, path: &str) -> Vec<&'v Value> {
    let mut segments = path.split('.');
    let first = segments.next().unwrap();
    let mut current: Vec<&Value> = args.get(first).into_iter().collect();
    for segment in segments {
        let mut next = Vec::new();
        for value in current {
            walk(value, segment, &mut next);
        }
        current = next;
    }
    current
}

fn walk<'v>(value: &'v Value, segment: &str, out: &mut Vec<&'v Value>) {
    match value {
        Value::Object(map) => out.extend(map.get(segment)),
        Value::Array(items) => match segment.parse::<usize>() {
            Ok(i) => out.extend(items.get(i)),
            Err(_) => {
                for item in items {
                    walk(item, segment, out);
                }
            }
        },
        _ => {}
    }
}

/// One value against an op: `None` when the op cannot evaluate it.
fn test(op: &str, operand: &Value, value: &Value) -> Option<bool> {
    let text = value.as_str();
    match op {
        "eq" => Some(same(value, operand)),
        "ne" => Some(!same(value, operand)),
        "in" => Some(operand.as_array().unwrap().iter().any(|c| same(value, c))),
        "not_in" => Some(!operand.as_array().unwrap().iter().any(|c| same(value, c))),
        "glob" => text.map(|s| glob_matches(operand.as_str().unwrap(), s, &['/'])),
        "not_glob" => text.map(|s| !glob_matches(operand.as_str().unwrap(), s, &['/'])),
        "regex" => text.map(|s| regex_matches(operand.as_str().unwrap(), s)),
        "not_regex" => text.map(|s| !regex_matches(operand.as_str().unwrap(), s)),
        "contains" => text.map(|s| s.contains(operand.as_str().unwrap())),
        "ends_with" => text.map(|s| s.ends_with(operand.as_str().unwrap())),
        "not_ends_with" => text.map(|s| !s.ends_with(operand.as_str().unwrap())),
        _ => {
            let (x, y) = (value.as_f64()?, operand.as_f64().unwrap());
            Some(match op {
                "lt" => x < y,
                "lte" => x <= y,
                "gt" => x > y,
                _ => x >= y,
            })
        }
    }
}

/// Whether a regex finds a match anywhere in `text` (regexes built once: debug builds are slow).
fn regex_matches(pattern: &str, text: &str) -> bool {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>> =
            std::cell::RefCell::default();
    }
    CACHE.with_borrow_mut(|cache| {
        cache
            .entry(pattern.to_owned())
            .or_insert_with(|| regex::Regex::new(pattern).unwrap())
            .is_match(text)
    })
}

/// JSON equality where numbers compare by value and other types must agree.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

// Globs

#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// One segment, with `*` and `?` inside it.
    Segment(String),
    /// `**`: any number of whole segments.
    Deep,
    /// One whole segment, whatever it is (a segment that `**` took).
    Any,
}

/// Splits at separators: the segments and the separator after each but the last.
fn split(text: &str, separators: &[char]) -> (Vec<String>, Vec<char>) {
    let mut segments = vec![String::new()];
    let mut seps = Vec::new();
    for c in text.chars() {
        if separators.contains(&c) {
            seps.push(c);
            segments.push(String::new());
        } else {
            segments.last_mut().unwrap().push(c);
        }
    }
    (segments, seps)
}

/// product.md §4's globs, by brute force: each `**` is tried as every number of whole segments;
/// taking none, it drops the separator after it (or, last, the one before it).
fn glob_matches(pattern: &str, name: &str, separators: &[char]) -> bool {
    let (segments, seps) = split(pattern, separators);
    let parts: Vec<Part> = segments
        .into_iter()
        .map(|s| {
            if s == "**" {
                Part::Deep
            } else {
                Part::Segment(s)
            }
        })
        .collect();
    let (names, name_seps) = split(name, separators);
    let seps: Vec<Option<char>> = seps.into_iter().map(Some).collect();
    expand(&parts, &seps, &names, &name_seps)
}

/// Separators between parts: a written one, or `None` inside what a `**` took (any).
fn expand(parts: &[Part], seps: &[Option<char>], names: &[String], name_seps: &[char]) -> bool {
    let Some(i) = parts.iter().position(|p| *p == Part::Deep) else {
        return parts.len() == names.len()
            && parts.iter().zip(names).all(|(p, n)| match p {
                Part::Segment(s) => segment_matches(
                    &s.chars().collect::<Vec<_>>(),
                    &n.chars().collect::<Vec<_>>(),
                ),
                _ => true,
            })
            && seps
                .iter()
                .zip(name_seps)
                .all(|(s, n)| s.is_none_or(|s| s == *n));
    };
    for k in 0..=names.len() {
        let mut p = parts.to_vec();
        let mut s = seps.to_vec();
        if k == 0 {
            p.remove(i);
            if i < s.len() {
                s.remove(i);
            } else if i > 0 {
                s.remove(i - 1);
            }
        } else {
            p.splice(i..=i, std::iter::repeat_n(Part::Any, k));
            s.splice(i..i, std::iter::repeat_n(None, k - 1));
        }
        if expand(&p, &s, names, name_seps) {
            return true;
        }
    }
    false
}

/// One segment: `*` any run of characters, `?` one, the rest literal.
fn segment_matches(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| segment_matches(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && segment_matches(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && segment_matches(rest, &text[1..]),
    }
}

// Data access rules

fn data_refuses(rule: &Value, action: &Value) -> bool {
    let written = action["resource"].as_str().unwrap();
    let resource = RESOURCES.iter().find(|(w, _)| *w == written).unwrap().1;
    let operation = action["operation"].as_str().unwrap();
    let labels = strings(&action["labels"]);
    let governed = rule
        .get("operations")
        .is_none_or(|ops| strings(ops).contains(&operation));
    if !governed {
        return false;
    }
    let listed = strings(&rule["resources"])
        .iter()
        .any(|g| glob_matches(g, resource, &['/']));
    let rule_labels = rule.get("labels").map(strings);
    if rule["effect"] == "deny" {
        listed && rule_labels.is_none_or(|denied| labels.iter().any(|l| denied.contains(l)))
    } else {
        !listed
            || rule_labels.is_some_and(|permitted| labels.iter().any(|l| !permitted.contains(l)))
    }
}

// Output rules

fn output_refuses(rule: &Value, step: &Step) -> bool {
    let action = &step.action;
    let text = action["text"].as_str().unwrap();
    if let Some(channels) = rule.get("channels") {
        let Some(channel) = action["channel"].as_str() else {
            return false;
        };
        if !strings(channels).contains(&channel) {
            return false;
        }
    }
    let lower = text.to_lowercase();
    let phrase = strings(&rule["deny_phrases"])
        .iter()
        .any(|p| lower.contains(&p.to_lowercase()));
    let pattern = strings(&rule["deny_regex"])
        .iter()
        .any(|r| regex_matches(r, text));
    let pii = strings(&rule["pii"]).iter().any(|k| step.pii.contains(k));
    let long = rule["max_chars"]
        .as_u64()
        .is_some_and(|max| text.chars().count() as u64 > max);
    let schema = rule
        .get("json_schema")
        .is_some_and(|schema| !schema_holds(schema, text));
    phrase || pattern || pii || long || schema
}

fn schema_holds(schema: &Value, text: &str) -> bool {
    let Ok(Value::Object(document)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let Some(answer) = document.get("answer") else {
        return false;
    };
    let wants_string = schema.pointer("/properties/answer/type") == Some(&json!("string"));
    !wants_string || answer.is_string()
}

// Time

fn local(at: i64, zone: &str) -> jiff::civil::DateTime {
    TimeZone::get(zone)
        .unwrap()
        .to_datetime(Timestamp::from_second(at).unwrap())
}

fn day_name(date: jiff::civil::Date) -> &'static str {
    DAYS[usize::from(date.weekday().to_monday_zero_offset().unsigned_abs())]
}

/// From inclusive, to exclusive; a window whose `to` is not after its `from` crosses midnight
/// and belongs to the day it starts on.
fn window_contains(window: &Value, at: i64, zone: &str) -> bool {
    let minutes = |t: &str| {
        let (h, m) = t.split_once(':').unwrap();
        h.parse::<i32>().unwrap() * 60 + m.parse::<i32>().unwrap()
    };
    let (from, to) = (
        minutes(window["from"].as_str().unwrap()),
        minutes(window["to"].as_str().unwrap()),
    );
    let days = strings(&window["days"]);
    let now = local(at, zone);
    let minute = i32::from(now.hour()) * 60 + i32::from(now.minute());
    let today = days.contains(&day_name(now.date()));
    let yesterday = days.contains(&day_name(now.date().yesterday().unwrap()));
    if from < to {
        today && from <= minute && minute < to
    } else {
        (today && minute >= from) || (yesterday && minute < to)
    }
}

/// The calendar period holding `at`, named by its local start.
fn period_of(at: i64, period: &str, zone: &str) -> String {
    let now = local(at, zone);
    let date = now.date();
    match period {
        "hour" => format!("{date} {}", now.hour()),
        "day" => date.to_string(),
        "week" => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            date.checked_sub(jiff::Span::new().days(back))
                .unwrap()
                .to_string()
        }
        _ => format!("{}-{}", date.year(), date.month()),
    }
}

// Rate filters

fn rate_counts(rule: &Value, action: &Value) -> bool {
    let Some(filter) = rule.get("match") else {
        return true;
    };
    let kind = action["kind"].as_str().unwrap();
    if filter
        .get("kinds")
        .is_some_and(|k| !strings(k).contains(&kind))
    {
        return false;
    }
    match filter.get("tools") {
        None => true,
        Some(globs) => {
            kind == "tool_call"
                && strings(globs)
                    .iter()
                    .any(|g| glob_matches(g, action["tool"].as_str().unwrap(), &['.', '/']))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The properties

fn make_policy(index: usize, json: &Value) -> Policy {
    let mut document = json.clone();
    document["name"] = json!(format!("p{index}"));
    let definition = PolicyDefinition::parse(&document)
        .unwrap_or_else(|e| panic!("generated policy is invalid: {e}\n{document}"));
    let mut policy = Policy::draft(
        PolicyId::new(format!("pol_{index}")).unwrap(),
        LineageId::new(format!("lin_{index}")).unwrap(),
        definition,
        Timestamp::UNIX_EPOCH,
    );
    policy.status = Status::Active;
    policy
}

fn policies() -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec(policy_json(), 1..4)
}

/// One policy at platform scope with these rules, compiled.
fn compile_one(rules: &[Value]) -> CompiledSet {
    let rules: Vec<Value> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r["id"] = json!(format!("r{i}"));
            r
        })
        .collect();
    let policy = make_policy(0, &json!({"scope": {"type": "platform"}, "rules": rules}));
    CompiledSet::compile([&policy]).unwrap()
}

/// The ids and outcomes of the rules that refuse an action at `at` of a run started at
/// `start`, evaluated without limit state.
fn engine_fired(set: &CompiledSet, action: &Value, at: i64, start: i64) -> Vec<(String, Outcome)> {
    let action = Action::parse(action).unwrap_or_else(|e| panic!("invalid action: {e}\n{action}"));
    let ctx = RunContext {
        tenant_id: "acme",
        agent_id: "support",
        run_id: "run_a",
        run_started_at: Timestamp::from_second(start).unwrap(),
        now: Timestamp::from_second(at).unwrap(),
    };
    let mut fired: Vec<(String, Outcome)> = set
        .evaluate(&action, &ctx)
        .violations
        .iter()
        .map(|v| (v.source.rule_id.to_string(), v.outcome))
        .collect();
    fired.sort();
    fired
}

/// What the reference says of rules that block or not.
fn blocked_by(rules: &[Value], refuses: impl Fn(&Value) -> bool) -> Vec<(String, Outcome)> {
    rules
        .iter()
        .enumerate()
        .filter(|(_, r)| refuses(r))
        .map(|(i, _)| (format!("r{i}"), Outcome::Block))
        .collect()
}

/// An instant of no importance to the rules it is used with.
const NOON: i64 = 1_781_524_800; // 2026-06-15T12:00:00Z

/// Instants on the windows' edges (and a minute before them) in each zone of `ZONES`, through
/// a week from Monday 2026-06-15.
fn edge_instant() -> impl Strategy<Value = i64> {
    let monday = 1_781_481_600; // 2026-06-15T00:00:00Z
    (
        0i64..8,
        pick(&[0i64, 359, 360, 569, 570, 720, 1019, 1020, 1319, 1320, 1439]),
        pick(&[0i64, -7200, -19_800]),
        0i64..60,
    )
        .prop_map(move |(day, minute, shift, second)| {
            monday + day * 86_400 + minute * 60 + shift + second
        })
}

fn tool_call() -> impl Strategy<Value = Value> {
    (pick(TOOLS), proptest::option::of(args())).prop_map(|(tool, args)| {
        let mut a = json!({"kind": "tool_call", "tool": tool});
        if let Some(args) = args {
            a["args"] = args;
        }
        a
    })
}

/// Decides a sequence with the engine and with the reference, step by step.
fn compare_sequence(policies: &[Value], base: &str, steps: &[Step]) -> Result<(), TestCaseError> {
    let compiled: Vec<Policy> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| make_policy(i, p))
        .collect();
    let set = CompiledSet::compile(&compiled).unwrap();
    let mut enforcer = Enforcer::in_memory();
    let base = base.parse::<Timestamp>().unwrap().as_second();
    let mut reference = Reference {
        policies,
        base,
        allowed: Vec::new(),
        halted: vec![None; RUNS.len()],
    };
    let mut at = base;
    for (i, step) in steps.iter().enumerate() {
        at += step.gap;
        let (run_id, tenant, agent, start) = RUNS[step.run];
        let action = Action::parse(&step.action)
            .unwrap_or_else(|e| panic!("generated action is invalid: {e}\n{}", step.action));
        let ctx = RunContext {
            tenant_id: tenant,
            agent_id: agent,
            run_id,
            run_started_at: Timestamp::from_second(base + start).unwrap(),
            now: Timestamp::from_second(at).unwrap(),
        };
        let decision = enforcer.check(&set, &action, &ctx);
        let engine: Vec<Fired> = decision
            .violations
            .iter()
            .map(|v| {
                let policy = &v.source.policy.id;
                let index = compiled.iter().position(|p| &p.id == policy).unwrap();
                (index, v.source.rule_id.to_string(), v.outcome)
            })
            .collect();
        let (outcome, fired) = reference.check(step, at);
        let messages: Vec<&String> = decision.violations.iter().map(|v| &v.message).collect();
        prop_assert_eq!(
            (decision.outcome, sorted(engine)),
            (outcome, sorted(fired)),
            "step {} at {} in {}: {}\nengine's messages: {:?}",
            i,
            Timestamp::from_second(at).unwrap(),
            run_id,
            step.action,
            messages
        );
    }
    Ok(())
}

fn sorted(mut fired: Vec<Fired>) -> Vec<Fired> {
    fired.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    fired
}

proptest! {
    // Debug builds compile regexes slowly: these counts keep the module near 7 s of CPU.
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The engine decides every action of a sequence (outcome, and which rules of which
    /// policies it violates) as the reference does, limits and halts included.
    #[test]
    fn engine_equals_reference(policies in policies(), base in pick(BASES), steps in steps()) {
        compare_sequence(&policies, base, &steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Tool rules and their conditions, densely: a few rules, many calls, no state.
    #[test]
    fn tool_rules_equal_reference(
        rules in proptest::collection::vec(tool_rule(), 1..4),
        calls in proptest::collection::vec(tool_call(), 1..24),
    ) {
        let set = compile_one(&rules);
        for call in &calls {
            let expected = blocked_by(&rules, |r| tool_refuses(r, call));
            prop_assert_eq!(engine_fired(&set, call, NOON, NOON), expected, "{}", call);
        }
    }

    /// Data access rules, densely.
    #[test]
    fn data_rules_equal_reference(
        rules in proptest::collection::vec(data_rule(), 1..4),
        actions in proptest::collection::vec(action_json(), 1..24),
    ) {
        let set = compile_one(&rules);
        for (access, _) in actions.iter().filter(|(a, _)| a["kind"] == "data_access") {
            let expected = blocked_by(&rules, |r| data_refuses(r, access));
            prop_assert_eq!(engine_fired(&set, access, NOON, NOON), expected, "{}", access);
        }
    }

    /// Output rules, densely.
    #[test]
    fn output_rules_equal_reference(
        rules in proptest::collection::vec(output_rule(), 1..4),
        actions in proptest::collection::vec(action_json(), 1..24),
    ) {
        let set = compile_one(&rules);
        for (output, pii) in actions.iter().filter(|(a, _)| a["kind"] == "output") {
            let step = Step { action: output.clone(), pii: pii.clone(), run: 0, gap: 0 };
            let expected = blocked_by(&rules, |r| output_refuses(r, &step));
            prop_assert_eq!(engine_fired(&set, output, NOON, NOON), expected, "{}", output);
        }
    }

    /// Time rules on the edges of their windows and durations.
    #[test]
    fn time_rules_equal_reference(
        rules in proptest::collection::vec(time_rule(), 1..3),
        instants in proptest::collection::vec(
            (edge_instant(), pick(&[0i64, 1800, 1801, 7200, 10_800, 10_801])),
            1..24,
        ),
    ) {
        let set = compile_one(&rules);
        let action = model_call();
        for (at, elapsed) in instants {
            let mut expected: Vec<(String, Outcome)> = Vec::new();
            for (i, rule) in rules.iter().enumerate() {
                for outcome in time_violations(rule, at, at - elapsed) {
                    expected.push((format!("r{i}"), outcome));
                }
            }
            expected.sort();
            let fired = engine_fired(&set, &action, at, at - elapsed);
            prop_assert_eq!(fired, expected, "at {}", Timestamp::from_second(at).unwrap());
        }
    }
}

/// A `per: tenant` limit in an agent's policy counts the allowed actions of the tenant's other
/// agents, which it does not govern (product.md §4), in process as in the store: found by the
/// property above.
#[test]
fn a_tenant_limit_of_an_agent_policy_counts_the_other_agents() {
    let policy = make_policy(
        0,
        &json!({
            "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
            "rules": [
                {"id": "rate", "type": "rate", "limit": 1, "window": "1m", "per": "tenant"},
                {"id": "cost", "type": "cost", "max_usd": "0.10", "period": "day", "per": "tenant"}
            ]
        }),
    );
    let set = CompiledSet::compile([&policy]).unwrap();
    let call = |cost: &str| {
        Action::parse(&json!({"kind": "tool_call", "tool": "db.query", "cost_usd": cost})).unwrap()
    };
    let ctx = |tenant_id, agent_id, run_id, seconds| RunContext {
        tenant_id,
        agent_id,
        run_id,
        run_started_at: Timestamp::from_second(NOON).unwrap(),
        now: Timestamp::from_second(NOON + seconds).unwrap(),
    };
    let others = [
        (ctx("acme", "billing", "run_b", 0), Outcome::Allow),
        (ctx("globex", "support", "run_c", 1), Outcome::Allow),
    ];
    let support = ctx("acme", "support", "run_a", 10);

    let mut live = Enforcer::in_memory();
    for (ctx, outcome) in &others {
        assert_eq!(live.check(&set, &call("0.08"), ctx).outcome, *outcome);
    }
    // Billing's call is counted (1 call, $0.08 spent), globex's is not.
    let decision = live.check(&set, &call("0.05"), &support);
    let fired: Vec<(String, Outcome)> = decision
        .violations
        .iter()
        .map(|v| (v.source.rule_id.to_string(), v.outcome))
        .collect();
    assert_eq!(decision.outcome, Outcome::Halt);
    assert_eq!(
        fired,
        [
            ("rate".to_owned(), Outcome::Block),
            ("cost".to_owned(), Outcome::Halt)
        ]
    );

    // Rebuilt from history, the counters hold the same.
    let mut rebuilt = Enforcer::in_memory();
    for (ctx, _) in &others {
        rebuilt.record_allowed(&set, &call("0.08"), ctx);
    }
    assert_eq!(rebuilt.check(&set, &call("0.05"), &support), decision);
    // Within both limits, support's call passes.
    let mut fresh = Enforcer::in_memory();
    assert_eq!(
        fresh.check(&set, &call("0.05"), &support).outcome,
        Outcome::Allow
    );
}

/// The reference's globs against product.md §4's own examples, so that the reference is not
/// only as right as the engine it is compared with.
#[test]
fn reference_globs_follow_the_spec_examples() {
    let name = ['.', '/'];
    assert!(glob_matches("**.send_email", "send_email", &name));
    assert!(glob_matches("**.send_email", "a.b.send_email", &name));
    assert!(!glob_matches("**.send_email", "mcp/send_email", &name));
    assert!(glob_matches("corp.**", "corp", &name));
    assert!(glob_matches("corp.**", "corp.x.y", &name));
    assert!(!glob_matches("corp.**", "corpx", &name));
    assert!(glob_matches("*.send_email", "gmail.send_email", &name));
    assert!(!glob_matches("*.send_email", "a.b.send_email", &name));
    assert!(glob_matches("files/*", "files/report.pdf", &['/']));
    assert!(glob_matches("*@acme.com", "john.doe@acme.com", &['/']));
    assert!(glob_matches("report-*", "report-2024.pdf", &['/']));
    assert!(!glob_matches("files/*", "files/a/b", &['/']));
    assert!(glob_matches("files/**", "files/a/b", &['/']));
    assert!(glob_matches("**", "anything.at/all", &name));
}

/// The reference's windows and periods against hand-checked instants.
#[test]
fn reference_calendar_follows_the_spec() {
    // 2026-06-14 is a Sunday; 21:50 UTC is 23:50 in Paris and 03:20 on Monday in Kolkata.
    let at = "2026-06-14T21:50:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_second();
    let sunday_night = json!({"days": ["sun"], "from": "22:00", "to": "06:00"});
    assert!(!window_contains(&sunday_night, at, "UTC"));
    assert!(window_contains(&sunday_night, at, "Europe/Paris"));
    assert!(window_contains(&sunday_night, at + 8 * 3600, "UTC"));
    assert!(!window_contains(&sunday_night, at + 9 * 3600, "UTC"));
    let whole_monday = json!({"days": ["mon"], "from": "00:00", "to": "24:00"});
    assert!(window_contains(&whole_monday, at, "Asia/Kolkata"));
    assert!(!window_contains(&whole_monday, at, "UTC"));
    assert_eq!(period_of(at, "week", "Europe/Paris"), "2026-06-08");
    assert_eq!(period_of(at + 600, "week", "Europe/Paris"), "2026-06-15");
    assert_eq!(period_of(at, "hour", "Asia/Kolkata"), "2026-06-15 3");
    assert_eq!(period_of(at + 600, "hour", "Asia/Kolkata"), "2026-06-15 3");
    assert_eq!(period_of(at + 2400, "hour", "Asia/Kolkata"), "2026-06-15 4");
    assert_eq!(micros(&json!("0.05")), 50_000);
}
