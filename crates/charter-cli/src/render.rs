//! Policies for people: a header and each rule as a sentence (`charter policy show`).
//!
//! Rules are read with charter-core's own parser, so the sentences see the same defaults
//! (`per: run`, `timezone: UTC`) the engine applies, and a new field of a rule type fails to
//! compile here until it is described (the rule structs are destructured whole). A rule this
//! build cannot read (a newer server) is printed as its JSON rather than dropped.

use std::fmt::Write as _;

use charter_core::calendar::{Period, Window};
use charter_core::rule::{
    Condition, CostRule, DataAccessRule, Effect, Op, OutputRule, RateMatch, RateRule, TimeRule,
    ToolRule,
};
use charter_core::{Rule, RuleKind};
use serde_json::Value;

use crate::output::cell;

/// A policy as the server answers it: a header, then one line per rule.
pub(crate) fn policy(policy: &Value) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "{:<12} {value}", format!("{name}:"));
    };
    field("name", cell(policy, "/name"));
    field("id", cell(policy, "/id"));
    field("version", cell(policy, "/version"));
    field("status", status(policy));
    field("scope", scope(&policy["scope"]));
    field("revision", cell(policy, "/revision"));
    field("lineage", cell(policy, "/lineage_id"));
    if let Some(description) = policy["description"].as_str().filter(|d| !d.is_empty()) {
        field("description", description.to_owned());
    }
    if let Some(from) = policy["cloned_from"].as_str() {
        field("cloned from", from.to_owned());
    }
    field(
        "created",
        format!(
            "{} by {}",
            cell(policy, "/created_at"),
            cell(policy, "/created_by")
        ),
    );
    field("validated", validation(policy));
    let rules = policy["rules"].as_array().map_or(&[][..], Vec::as_slice);
    let _ = writeln!(out, "rules:       {}", rules.len());
    for value in rules {
        let _ = writeln!(out, "  {}", rule(value));
        if let Some(description) = value["description"].as_str() {
            let _ = writeln!(out, "      {description}");
        }
    }
    out
}

fn status(policy: &Value) -> String {
    let status = cell(policy, "/status");
    let since = |at: &str, by: &str| {
        format!(
            "{status} since {} (by {})",
            cell(policy, at),
            cell(policy, by)
        )
    };
    match status.as_str() {
        "active" => since("/activated_at", "/activated_by"),
        "deprecated" => since("/deprecated_at", "/deprecated_by"),
        _ => status,
    }
}

fn scope(scope: &Value) -> String {
    match scope["type"].as_str() {
        Some("platform") => "platform (every run of every tenant)".to_owned(),
        Some("tenant") => format!("tenant {}", cell(scope, "/tenant_id")),
        Some("agent") => format!(
            "agent {} of tenant {}",
            cell(scope, "/agent_id"),
            cell(scope, "/tenant_id")
        ),
        _ => scope.to_string(),
    }
}

/// The latest validation, and whether it still describes the current revision (activation
/// without `--force` needs one that does).
fn validation(policy: &Value) -> String {
    let last = &policy["last_validation"];
    if last.is_null() {
        return "never".to_owned();
    }
    let report = &last["report"];
    let stale = if last["revision"] == policy["revision"] {
        ""
    } else {
        " (an earlier revision)"
    };
    format!(
        "revision {}{stale} at {}: would block {} of {} actions in {} of {} runs",
        cell(last, "/revision"),
        cell(last, "/at"),
        cell(report, "/actions_blocked"),
        cell(report, "/actions_scanned"),
        cell(report, "/runs_blocked"),
        cell(report, "/runs_scanned"),
    )
}

/// One rule as `ID (TYPE): SENTENCE`.
pub(crate) fn rule(value: &Value) -> String {
    match Rule::parse(value) {
        Ok(rule) => format!(
            "{} ({}): {}",
            rule.id.as_str(),
            rule.rule_type(),
            sentence(&rule.kind)
        ),
        Err(_) => format!("{} ({}): {value}", cell(value, "/id"), cell(value, "/type")),
    }
}

fn sentence(kind: &RuleKind) -> String {
    match kind {
        RuleKind::Tool(rule) => tool(rule),
        RuleKind::DataAccess(rule) => data_access(rule),
        RuleKind::Rate(rule) => rate(rule),
        RuleKind::Cost(rule) => cost(rule),
        RuleKind::Time(rule) => time(rule),
        RuleKind::Output(rule) => output(rule),
    }
}

/// `` `text` ``.
fn code(text: &str) -> String {
    format!("`{text}`")
}

/// `a`, `a or b`, `a, b or c`.
fn either(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    match items.split_last() {
        None => String::new(),
        Some((only, [])) => only.clone(),
        Some((tail, head)) => format!("{} or {tail}", head.join(", ")),
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn tool(rule: &ToolRule) -> String {
    let ToolRule {
        effect,
        tools,
        when,
    } = rule;
    let tools = either(tools.iter().map(|t| code(t.as_str())));
    // Not `a, b and c`: a condition's own values may be listed with commas.
    let conditions = when.iter().map(condition).collect::<Vec<_>>().join(" and ");
    match (effect, when.is_empty()) {
        (Effect::Deny, true) => format!("block {tools}"),
        (Effect::Deny, false) => format!("block {tools} when {conditions}"),
        (Effect::Allow, true) => format!("allow only {tools}"),
        (Effect::Allow, false) => format!("allow only {tools}, and only when {conditions}"),
    }
}

/// A value of a condition: strings as written, anything else as JSON.
fn literal(value: &Value) -> String {
    match value {
        Value::String(text) => code(text),
        other => code(&other.to_string()),
    }
}

fn condition(condition: &Condition) -> String {
    let Condition { arg, op, value } = condition;
    let value = value.as_ref().unwrap_or(&Value::Null);
    let values = || match value {
        Value::Array(items) => either(items.iter().map(literal)),
        other => literal(other),
    };
    let test = match op {
        Op::Eq => format!("is {}", literal(value)),
        Op::Ne => format!("is not {}", literal(value)),
        Op::In => format!("is one of {}", values()),
        Op::NotIn => format!("is none of {}", values()),
        Op::Glob => format!("matches {}", literal(value)),
        Op::NotGlob => format!("does not match {}", literal(value)),
        Op::Regex => format!("matches the regex {}", literal(value)),
        Op::NotRegex => format!("does not match the regex {}", literal(value)),
        Op::Lt => format!("is less than {}", literal(value)),
        Op::Lte => format!("is at most {}", literal(value)),
        Op::Gt => format!("is more than {}", literal(value)),
        Op::Gte => format!("is at least {}", literal(value)),
        Op::Exists => "is present".to_owned(),
        Op::NotExists => "is absent".to_owned(),
        Op::Contains => format!("contains {}", literal(value)),
        Op::EndsWith => format!("ends with {}", literal(value)),
        Op::NotEndsWith => format!("does not end with {}", literal(value)),
    };
    format!("{} {test}", code(&format!("args.{arg}")))
}

fn data_access(rule: &DataAccessRule) -> String {
    let DataAccessRule {
        effect,
        resources,
        operations,
        labels,
    } = rule;
    let resources = either(resources.iter().map(|r| code(r.as_str())));
    let operations = operations
        .as_ref()
        .map(|ops| either(ops.iter().map(|o| o.as_str().to_owned())));
    let labels = labels
        .as_ref()
        .map(|labels| either(labels.iter().map(|l| code(l.as_str()))));
    match effect {
        Effect::Deny => {
            let what = match operations {
                None => format!("any access to {resources}"),
                Some(ops) => format!("{ops} of {resources}"),
            };
            match labels {
                None => format!("block {what}"),
                Some(labels) => format!("block {what} labelled {labels}"),
            }
        }
        Effect::Allow => {
            let what = match operations {
                None => format!("access only to {resources}"),
                Some(ops) => format!("{ops} only of {resources}"),
            };
            match labels {
                None => format!("allow {what}"),
                Some(labels) => format!("allow {what}, with no label but {labels}"),
            }
        }
    }
}

fn rate(rule: &RateRule) -> String {
    let RateRule {
        limit,
        window,
        per,
        matcher,
    } = rule;
    let number = |one: &str, many: &str| if *limit == 1 { one } else { many }.to_owned();
    let (kinds, tools) = match matcher {
        None => (None, None),
        Some(RateMatch { kinds, tools }) => (
            kinds
                .as_ref()
                .map(|k| either(k.iter().map(|k| code(k.as_str())))),
            tools
                .as_ref()
                .map(|t| either(t.iter().map(|t| code(t.as_str())))),
        ),
    };
    let counted = match (kinds, tools) {
        (None, None) => number("action", "actions"),
        (Some(kinds), None) => format!("{kinds} {}", number("action", "actions")),
        (None, Some(tools)) => format!("{} {tools}", number("call to", "calls to")),
        (Some(kinds), Some(tools)) => {
            format!(
                "{kinds} {} {tools}",
                number("action calling", "actions calling")
            )
        }
    };
    format!(
        "at most {limit} {counted} per {window} per {}",
        per.as_str()
    )
}

fn cost(rule: &CostRule) -> String {
    let CostRule {
        max_usd,
        period,
        per,
        timezone,
    } = rule;
    match period {
        Period::Run => format!("halt past ${max_usd} per run"),
        _ => format!(
            "halt past ${max_usd} per {} ({timezone}) per {}",
            period.as_str(),
            per.as_str()
        ),
    }
}

const WEEK: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `mon-fri 09:00-17:00`, `sat,sun 22:00-06:00 (overnight)`.
fn window(window: &Window) -> String {
    let Window { days, from, to } = window;
    let names: Vec<&str> = days.iter().map(|d| d.as_str()).collect();
    let positions: Vec<usize> = names
        .iter()
        .filter_map(|n| WEEK.iter().position(|w| w == n))
        .collect();
    let consecutive = positions.windows(2).all(|p| p[1] == p[0] + 1);
    let days = match (names.as_slice(), consecutive) {
        (all, true) if all.len() == 7 => "every day".to_owned(),
        ([first, .., last], true) if names.len() >= 3 => format!("{first}-{last}"),
        _ => names.join(","),
    };
    let overnight = if to <= from { " (overnight)" } else { "" };
    format!("{days} {from}-{to}{overnight}")
}

fn time(rule: &TimeRule) -> String {
    let TimeRule {
        max_run_duration,
        allow,
        deny,
        timezone,
    } = rule;
    let windows = |list: &Vec<Window>| either(list.iter().map(window));
    let mut parts = Vec::new();
    if let Some(span) = max_run_duration {
        parts.push(format!("halt runs past {span}"));
    }
    if let Some(list) = allow {
        parts.push(format!("allow only {} ({timezone})", windows(list)));
    }
    if let Some(list) = deny {
        parts.push(format!("block {} ({timezone})", windows(list)));
    }
    if parts.is_empty() {
        return "no limits".to_owned();
    }
    parts.join("; ")
}

fn output(rule: &OutputRule) -> String {
    let OutputRule {
        channels,
        deny_phrases,
        deny_regex,
        pii,
        max_chars,
        json_schema,
    } = rule;
    let mut tests = Vec::new();
    if let Some(phrases) = deny_phrases {
        tests.push(format!(
            "contain {} (any case)",
            either(phrases.iter().map(|p| code(p)))
        ));
    }
    if let Some(patterns) = deny_regex {
        tests.push(format!(
            "match {}",
            either(patterns.iter().map(|p| code(p.as_str())))
        ));
    }
    if let Some(kinds) = pii {
        tests.push(format!(
            "contain PII ({})",
            either(kinds.iter().map(|k| k.as_str().to_owned()))
        ));
    }
    if let Some(max) = max_chars {
        tests.push(format!(
            "are over {}",
            plural(*max, "character", "characters")
        ));
    }
    if json_schema.is_some() {
        tests.push("are not JSON valid against the rule's schema".to_owned());
    }
    let outputs = match channels {
        None => "outputs".to_owned(),
        Some(channels) => format!("outputs on {}", either(channels.iter().map(|c| code(c)))),
    };
    if tests.is_empty() {
        return format!("no checks on {outputs}");
    }
    format!("block {outputs} that {}", either(tests))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{policy, rule};

    #[track_caller]
    fn reads(value: &serde_json::Value, expected: &str) {
        assert_eq!(rule(value), expected);
    }

    #[test]
    fn tool_rules_read_as_sentences() {
        reads(
            &json!({"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}),
            "r1 (tool): block `*.send_email` when `args.to` does not end with `@acme.com`",
        );
        reads(
            &json!({"id": "r2", "type": "tool", "effect": "deny", "tools": ["shell.*", "fs.delete"]}),
            "r2 (tool): block `shell.*` or `fs.delete`",
        );
        reads(
            &json!({"id": "r3", "type": "tool", "effect": "allow", "tools": ["kb.*", "crm.read", "http.get"],
                   "when": [{"arg": "amount", "op": "lte", "value": 100},
                            {"arg": "region", "op": "in", "value": ["eu", "us"]},
                            {"arg": "token", "op": "not_exists"}]}),
            "r3 (tool): allow only `kb.*`, `crm.read` or `http.get`, and only when `args.amount` is at most `100` and `args.region` is one of `eu` or `us` and `args.token` is absent",
        );
    }

    #[test]
    fn data_access_rules_read_as_sentences() {
        reads(
            &json!({"id": "d1", "type": "data_access", "effect": "deny", "resources": ["crm/**"],
                   "operations": ["read", "delete"], "labels": ["pii"]}),
            "d1 (data_access): block read or delete of `crm/**` labelled `pii`",
        );
        reads(
            &json!({"id": "d2", "type": "data_access", "effect": "deny", "resources": ["hr/*"]}),
            "d2 (data_access): block any access to `hr/*`",
        );
        reads(
            &json!({"id": "d3", "type": "data_access", "effect": "allow", "resources": ["files/*"],
                   "operations": ["read"], "labels": ["public", "internal"]}),
            "d3 (data_access): allow read only of `files/*`, with no label but `public` or `internal`",
        );
    }

    #[test]
    fn limits_read_as_sentences() {
        reads(
            &json!({"id": "rate", "type": "rate", "limit": 10, "window": "1m", "per": "agent"}),
            "rate (rate): at most 10 actions per 1m per agent",
        );
        reads(
            &json!({"id": "mail", "type": "rate", "limit": 1, "window": "1h",
                   "match": {"tools": ["*.send_email"]}}),
            "mail (rate): at most 1 call to `*.send_email` per 1h per run",
        );
        reads(
            &json!({"id": "cost", "type": "cost", "max_usd": "50", "period": "day", "per": "tenant"}),
            "cost (cost): halt past $50.00 per day (UTC) per tenant",
        );
        reads(
            &json!({"id": "c2", "type": "cost", "max_usd": 0.5, "period": "run"}),
            "c2 (cost): halt past $0.50 per run",
        );
    }

    #[test]
    fn time_and_output_rules_read_as_sentences() {
        reads(
            &json!({"id": "t1", "type": "time", "max_run_duration": "30m", "timezone": "Europe/Paris",
                   "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}],
                   "deny": [{"days": ["sat", "mon"], "from": "22:00", "to": "06:00"}]}),
            "t1 (time): halt runs past 30m; allow only mon-fri 09:00-17:00 (Europe/Paris); block sat,mon 22:00-06:00 (overnight) (Europe/Paris)",
        );
        reads(
            &json!({"id": "o1", "type": "output", "channels": ["chat"], "deny_phrases": ["secret"],
                   "deny_regex": ["\\d{16}"], "pii": ["email", "credit_card"], "max_chars": 2000,
                   "json_schema": {"type": "object"}}),
            "o1 (output): block outputs on `chat` that contain `secret` (any case), match `\\d{16}`, contain PII (email or credit_card), are over 2000 characters or are not JSON valid against the rule's schema",
        );
    }

    #[test]
    fn an_unreadable_rule_is_shown_as_its_json() {
        reads(
            &json!({"id": "x", "type": "quantum", "spin": "up"}),
            r#"x (quantum): {"id":"x","spin":"up","type":"quantum"}"#,
        );
    }

    #[test]
    fn a_policy_has_a_header_and_its_rules() {
        let text = policy(&json!({
            "id": "pol_1", "lineage_id": "lin_1", "version": 2, "status": "active", "revision": 3,
            "name": "Block external email", "description": "Support mail stays inside.",
            "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
            "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                       "description": "Only @acme.com."}],
            "cloned_from": "pol_0", "created_at": "2026-12-01T10:00:00Z", "created_by": "key_a",
            "activated_at": "2026-12-02T10:00:00Z", "activated_by": "key_b",
            "deprecated_at": null, "deprecated_by": null,
            "last_validation": {"revision": 2, "at": "2026-12-01T11:00:00Z",
                "report": {"runs_scanned": 9, "actions_scanned": 40, "runs_blocked": 2, "actions_blocked": 3}}
        }));
        assert_eq!(
            text,
            "\
name:        Block external email
id:          pol_1
version:     2
status:      active since 2026-12-02T10:00:00Z (by key_b)
scope:       agent support of tenant acme
revision:    3
lineage:     lin_1
description: Support mail stays inside.
cloned from: pol_0
created:     2026-12-01T10:00:00Z by key_a
validated:   revision 2 (an earlier revision) at 2026-12-01T11:00:00Z: would block 3 of 40 actions in 2 of 9 runs
rules:       1
  r1 (tool): block `*.send_email`
      Only @acme.com.
"
        );
    }
}
