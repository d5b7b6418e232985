//! The `tool` rule: allow-lists and denies of tool calls, with conditions on arguments.

use serde::{Deserialize, Serialize};

use super::{Condition, check_list};
use crate::parse::{self, ParseError};
use crate::pattern::ToolGlob;

/// The most conditions one rule may hold.
pub const MAX_CONDITIONS: usize = 64;

/// Whether a rule lists what is allowed or what is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// An allow-list: anything it does not match is blocked.
    Allow,
    /// A deny: what it matches is blocked.
    Deny,
}

impl Effect {
    /// Both effects, deny first (the likelier choice).
    pub const ALL: [Effect; 2] = [Effect::Deny, Effect::Allow];

    /// The effect as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// `deny`: a call to a matching tool is blocked when all `when` conditions hold. `allow`: a call
/// to a tool matching none of `tools` is blocked, and a matching call is blocked unless its
/// conditions hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// Allow-list or deny.
    pub effect: Effect,
    /// Globs over tool names.
    pub tools: Vec<ToolGlob>,
    /// Conditions on the call's arguments, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
}

impl ToolRule {
    /// Whether this rule refuses every call to `tool`, whatever its arguments: a `deny` rule
    /// without conditions whose globs match it, or an allow-list (`allow`) whose globs do not.
    /// A rule with conditions never does (some arguments may pass). What an MCP gateway leaves
    /// out of `tools/list`; a test holds it to the engine's own decisions.
    pub fn refuses_every_call_to(&self, tool: &str) -> bool {
        let listed = self.tools.iter().any(|glob| glob.glob().is_match(tool));
        match self.effect {
            Effect::Deny => listed && self.when.is_empty(),
            Effect::Allow => !listed,
        }
    }

    pub(super) fn check(&self) -> Result<(), ParseError> {
        check_list(&self.tools, "tools")?;
        if self.when.len() > MAX_CONDITIONS {
            return Err(ParseError::new(
                "when",
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        for (i, condition) in self.when.iter().enumerate() {
            condition
                .check()
                .map_err(|e| e.under(&parse::index("when", i)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::{Value, json};

    use crate::engine::{CompiledSet, RunContext};
    use crate::policy::{Policy, PolicyDefinition};
    use crate::{Action, LineageId, PolicyId, Rule, RuleKind};

    /// The engine's answer to a call of `tool` with `args` under `rule` alone: refused?
    fn engine_refuses(rule: &Value, tool: &str, args: &Value) -> bool {
        let definition = PolicyDefinition::parse(
            &json!({"name": "t", "scope": {"type": "platform"}, "rules": [rule]}),
        )
        .unwrap();
        let policy = Policy::draft(
            PolicyId::new("pol_t").unwrap(),
            LineageId::new("lin_t").unwrap(),
            definition,
            Timestamp::UNIX_EPOCH,
        );
        let set = CompiledSet::compile([&policy]).unwrap();
        let action =
            Action::parse(&json!({"kind": "tool_call", "tool": tool, "args": args})).unwrap();
        let ctx = RunContext {
            tenant_id: "acme",
            agent_id: "a",
            run_id: "run_1",
            run_started_at: Timestamp::UNIX_EPOCH,
            now: Timestamp::UNIX_EPOCH,
        };
        !set.evaluate(&action, &ctx).violations.is_empty()
    }

    #[test]
    fn a_tool_refused_whatever_the_arguments_is_refused_by_the_engine_for_any() {
        let rules = [
            json!({"id": "r", "type": "tool", "effect": "deny", "tools": ["mail.delete_*", "**.exec"]}),
            json!({"id": "r", "type": "tool", "effect": "allow", "tools": ["search.*", "mail.send_email"]}),
            json!({"id": "r", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}),
            json!({"id": "r", "type": "tool", "effect": "allow", "tools": ["mail.*"],
                   "when": [{"arg": "to", "op": "ends_with", "value": "@acme.com"}]}),
        ];
        let tools = [
            "mail.delete_all",
            "mail.send_email",
            "search.web",
            "shell.exec",
            "a.b.exec",
            "exec",
            "search",
            "mail",
            "crm.update",
        ];
        let args = [
            json!({}),
            json!({"to": "bob@acme.com"}),
            json!({"to": "eve@gmail.com"}),
            json!({"to": ["bob@acme.com", "eve@gmail.com"]}),
        ];
        for rule in &rules {
            let Ok(Rule {
                kind: RuleKind::Tool(tool_rule),
                ..
            }) = Rule::parse(rule)
            else {
                panic!("{rule}");
            };
            for tool in tools {
                let refused = args.iter().map(|a| engine_refuses(rule, tool, a));
                if tool_rule.refuses_every_call_to(tool) {
                    // Said refused whatever the arguments: the engine refuses every one.
                    assert!(refused.clone().all(|r| r), "{rule} {tool}");
                }
                if refused.clone().all(|r| r) && tool_rule.when.is_empty() {
                    // An unconditional rule the engine always applies is said so.
                    assert!(tool_rule.refuses_every_call_to(tool), "{rule} {tool}");
                }
            }
        }
    }
}
