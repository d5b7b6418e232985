//! The JSON Schema of `charter.policy/v1`: generated from the types, committed in docs/, and
//! accepting what the parser accepts.

use std::path::Path;

use charter_core::PolicyDocument;
use charter_core::document::json_schema;
use serde_json::{Value, json};

fn committed_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.schema.json")
}

/// Fails when docs/policy.schema.json drifts from the types. Regenerate with
/// `UPDATE_SCHEMA=1 cargo test -p charter-core --test it schema`.
#[test]
fn committed_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    let path = committed_path();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/policy.schema.json is out of date: run UPDATE_SCHEMA=1 cargo test -p charter-core --test it schema"
    );
}

#[test]
fn schema_accepts_a_parsed_document_and_refuses_unknown_fields() {
    let document = json!({
        "format": "charter.policy/v1",
        "name": "Support guardrails",
        "description": "what support agents may do",
        "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
        "rules": [
            {"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
             "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
            {"id": "r2", "type": "data_access", "effect": "deny", "resources": ["crm/customers/*/ssn"], "operations": ["read"]},
            {"id": "r3", "type": "rate", "limit": 10, "window": "1m", "per": "agent", "match": {"kinds": ["tool_call"]}},
            {"id": "r4", "type": "cost", "max_usd": "5.00", "period": "day", "per": "tenant", "timezone": "Europe/Paris"},
            {"id": "r5", "type": "time", "max_run_duration": "30m",
             "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}], "timezone": "Europe/Paris"},
            {"id": "r6", "type": "output", "pii": ["credit_card", "email"], "deny_phrases": ["internal only"], "max_chars": 4000}
        ]
    });
    PolicyDocument::parse(&document).unwrap();
    let validator = jsonschema::validator_for(&json_schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let mut bad: Value = document.clone();
    bad["rules"][0]["when"][0]["opp"] = json!("x");
    assert!(!validator.is_valid(&bad));
    let mut bad: Value = document.clone();
    bad["rules"][2]["burst"] = json!(3);
    assert!(
        !validator.is_valid(&bad),
        "an unknown rule field passes the schema"
    );
    let mut bad: Value = document;
    bad["color"] = json!("blue");
    assert!(!validator.is_valid(&bad));
}
