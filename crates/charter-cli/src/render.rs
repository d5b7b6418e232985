//! Policies for people: a header and each rule as a sentence (`charter policy show`).
//!
//! Rules are read with charter-core's own parser and told by its `sentence` module, as the
//! workspace tells them. A rule this build cannot read (a newer server) is printed as its JSON
//! rather than dropped.

use std::fmt::Write as _;

use charter_core::Rule;
use charter_core::sentence::Sentence;
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
            Sentence::of(&rule.kind)
        ),
        Err(_) => format!("{} ({}): {value}", cell(value, "/id"), cell(value, "/type")),
    }
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
    fn a_rule_reads_as_its_id_type_and_sentence() {
        reads(
            &json!({"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}),
            "r1 (tool): block `*.send_email` when `args.to` does not end with `@acme.com`",
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
