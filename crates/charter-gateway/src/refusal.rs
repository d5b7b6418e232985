//! What the agent receives when Charter refuses: a tool execution error (`isError: true`),
//! which the MCP specification says clients should show to the model, naming the policy, its
//! version, the rule and why.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// The `_meta` key under which a refusal carries Charter's decision.
pub const META_KEY: &str = "charter/decision";

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The tool call itself: it was never forwarded.
    Call,
    /// The tool's result: it was withheld.
    Output,
}

/// The text of a refusal: one line saying what happened, one per violation.
pub fn text(decision: &Value, tool: &str, refused: Refused) -> String {
    let halted = decision["decision"] == "halt";
    let mut text = match (refused, halted) {
        (Refused::Call, false) => format!("Charter blocked the call to {tool}."),
        (Refused::Call, true) => {
            format!("Charter halted this run: the call to {tool} was refused.")
        }
        (Refused::Output, false) => {
            format!("Charter withheld the result of {tool}: the output was blocked.")
        }
        (Refused::Output, true) => {
            format!("Charter halted this run: the result of {tool} was withheld.")
        }
    };
    if let Some(violations) = decision["violations"].as_array() {
        for v in violations {
            let _ = write!(
                text,
                "\n- policy \"{}\" ({} version {}), rule {} ({}): {}",
                v["policy_name"].as_str().unwrap_or("?"),
                v["policy_id"].as_str().unwrap_or("?"),
                v["policy_version"],
                v["rule_id"].as_str().unwrap_or("?"),
                v["rule_type"].as_str().unwrap_or("?"),
                v["message"].as_str().unwrap_or("refused"),
            );
            if let Some(input) = v["matching_input"].as_str().filter(|s| !s.is_empty()) {
                let _ = write!(text, " (matching input: {input})");
            }
        }
    }
    if halted {
        text.push_str("\nEvery later tool call of this session will be refused.");
    }
    text
}

/// The `CallToolResult` of a refusal: the text, `isError: true`, no `structuredContent`, and
/// Charter's decision in `_meta`. In the 2026-07-28 era (`modern`) a result must also say
/// `resultType: "complete"`; earlier revisions have no such field, so it is left out there.
pub fn result(decision: &Value, tool: &str, refused: Refused, modern: bool) -> Value {
    let mut result = json!({
        "content": [{"type": "text", "text": text(decision, tool, refused)}],
        "isError": true,
        "_meta": {META_KEY: decision},
    });
    if modern {
        result["resultType"] = json!("complete");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: &str) -> Value {
        json!({"decision": kind, "run_id": "run_1", "action_id": "evt_1", "violations": [{
            "policy_id": "pol_9", "policy_name": "Block external email", "policy_version": 2,
            "rule_id": "r1", "rule_type": "tool", "scope": {"type": "tenant", "tenant_id": "acme"},
            "message": "to does not end with @acme.com", "matching_input": "bob@gmail.com"}]})
    }

    #[test]
    fn a_block_names_the_policy_its_version_the_rule_and_the_input() {
        let result = result(&decision("block"), "mail.send_email", Refused::Call, false);
        assert_eq!(result["isError"], true);
        assert!(result.get("resultType").is_none());
        assert!(result.get("structuredContent").is_none());
        assert_eq!(result["_meta"][META_KEY]["action_id"], "evt_1");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Charter blocked the call to mail.send_email.\n- policy \"Block external email\" \
             (pol_9 version 2), rule r1 (tool): to does not end with @acme.com \
             (matching input: bob@gmail.com)"
        );
    }

    #[test]
    fn a_modern_refusal_says_it_is_complete() {
        let modern = result(&decision("block"), "mail.send_email", Refused::Output, true);
        assert_eq!(modern["resultType"], "complete");
    }

    #[test]
    fn a_halt_says_the_session_is_over_and_an_output_says_withheld() {
        let halt = text(&decision("halt"), "mail.send_email", Refused::Call);
        assert!(halt.starts_with("Charter halted this run"));
        assert!(halt.ends_with("Every later tool call of this session will be refused."));
        let output = text(&decision("block"), "mail.lookup", Refused::Output);
        assert!(output.starts_with("Charter withheld the result of mail.lookup"));
        assert!(output.contains("rule r1"));
    }
}
