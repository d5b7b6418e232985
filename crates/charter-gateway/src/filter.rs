//! Which tools `tools/list` leaves out: those that a `tool` rule of the run's policy set blocks
//! whatever the arguments.
//!
//! API v1 has no "would this tool be blocked" question, and checking a `tool_call` with empty
//! arguments would answer the wrong one: conditions on arguments (`exists`, `not_exists`, a
//! missing argument making a condition false) decide differently for `{}` than for a real call,
//! and the check would be recorded as an action of the run. So the gateway reads the policies
//! the run pinned (`GET /v1/policies/{id}` for each of the run's `policy_set`, which needs the
//! `read` scope) and asks charter-core's own rules (`ToolRule::refuses_every_call_to`): a tool
//! is left out when a `deny` rule without conditions matches it, or when an `allow` rule (an
//! allow-list) matches it with none of its globs. Conditional rules never hide a tool:
//! some arguments may pass. Hiding is not enforcement; every `tools/call` is checked anyway.

use charter_core::rule::ToolRule;
use charter_core::{Rule, RuleKind};
use serde_json::Value;

/// The unconditional tool rules of a run's policy set.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    rules: Vec<ToolRule>,
}

impl ToolFilter {
    /// The filter of these policies (each as `GET /v1/policies/{id}` answers it). A tool rule
    /// that does not parse is skipped with a warning: it can only hide less.
    pub fn from_policies<'a>(policies: impl IntoIterator<Item = &'a Value>) -> ToolFilter {
        let mut rules = Vec::new();
        for policy in policies {
            for rule in policy["rules"].as_array().into_iter().flatten() {
                if rule["type"] != "tool" {
                    continue;
                }
                match Rule::parse(rule) {
                    Ok(Rule {
                        kind: RuleKind::Tool(tool),
                        ..
                    }) => rules.push(tool),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        policy = policy["id"].as_str().unwrap_or("?"),
                        "a tool rule could not be read, so it hides no tool: {e}"
                    ),
                }
            }
        }
        ToolFilter { rules }
    }

    /// Whether Charter blocks every call to `tool` (its `server.tool` name), whatever the
    /// arguments.
    pub fn hides(&self, tool: &str) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.refuses_every_call_to(tool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(rules: &Value) -> ToolFilter {
        let policy = json!({"id": "pol_1", "rules": rules});
        ToolFilter::from_policies([&policy])
    }

    #[test]
    fn an_unconditional_deny_hides_what_it_matches() {
        let f = filter(
            &json!([{"id": "r1", "type": "tool", "effect": "deny", "tools": ["mail.delete_*"]}]),
        );
        assert!(f.hides("mail.delete_all"));
        assert!(!f.hides("mail.send_email"));
    }

    #[test]
    fn a_conditional_deny_hides_nothing() {
        let f = filter(
            &json!([{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
            "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}]),
        );
        assert!(!f.hides("mail.send_email"));
    }

    #[test]
    fn an_allow_list_hides_what_it_does_not_list_even_with_conditions() {
        let f = filter(
            &json!([{"id": "r1", "type": "tool", "effect": "allow", "tools": ["mail.echo", "mail.send_*"],
            "when": [{"arg": "to", "op": "ends_with", "value": "@acme.com"}]}]),
        );
        assert!(!f.hides("mail.echo"));
        assert!(!f.hides("mail.send_email"));
        assert!(f.hides("mail.lookup"));
    }

    #[test]
    fn other_rule_types_and_unreadable_rules_hide_nothing() {
        let f = filter(&json!([
            {"id": "r1", "type": "output", "deny_phrases": ["secret"]},
            {"id": "r2", "type": "tool", "effect": "deny", "tools": ["x"], "surprise": true}
        ]));
        assert!(!f.hides("x"));
        assert!(!ToolFilter::default().hides("anything"));
    }
}
