//! The Charter policy documents (export format `charter.policy/v1`) that express a scenario, so
//! the Charter engine can be plugged into the bench by importing these.

use serde_json::{Map, Value, json};

use crate::model::{Condition, Rule, Scenario};

pub fn charter_policies(s: &Scenario) -> Vec<Value> {
    s.policies
        .iter()
        .map(|p| {
            json!({
                "format": "charter.policy/v1",
                "name": p.name,
                "description": "",
                "scope": {"type": "agent", "tenant_id": p.tenant, "agent_id": p.agent},
                "rules": p.rules.iter().map(rule_json).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn rule_json(rule: &Rule) -> Value {
    let mut m = Map::new();
    match rule {
        Rule::Tool {
            id,
            effect,
            tools,
            when,
        } => {
            m.insert("id".into(), json!(id));
            m.insert("type".into(), json!("tool"));
            m.insert("effect".into(), json!(effect.as_str()));
            m.insert("tools".into(), json!(tools));
            if !when.is_empty() {
                m.insert("when".into(), when.iter().map(condition_json).collect());
            }
        }
        Rule::DataAccess {
            id,
            effect,
            resources,
            operations,
        } => {
            m.insert("id".into(), json!(id));
            m.insert("type".into(), json!("data_access"));
            m.insert("effect".into(), json!(effect.as_str()));
            m.insert("resources".into(), json!(resources));
            let ops: Vec<&str> = operations.iter().map(|o| o.as_str()).collect();
            m.insert("operations".into(), json!(ops));
        }
    }
    Value::Object(m)
}

fn condition_json(c: &Condition) -> Value {
    json!({"arg": c.arg, "op": c.op.as_str(), "value": c.value})
}
