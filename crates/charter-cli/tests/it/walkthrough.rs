//! The seed's walkthrough against the real binary over HTTP: history → a draft policy → the
//! draft is not enforced → Validate reports exactly the would-be blocks → activate → a run
//! started before keeps its rules, a new run is blocked → the block is in the Monitor by
//! policy id → clone, edit, validate, activate with supersede → the old version deprecated in
//! the version chain and the audit log.

use serde_json::{Value, json};

use crate::serve::{request, start, stop};

fn call(addr: &str, key: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, answer) = request(addr, method, path, key, &text);
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

#[test]
fn the_seed_walkthrough() {
    let dir = std::env::temp_dir().join(format!("charter-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(&dir);
    let (addr, key) = (server.addr.clone(), server.key.clone().unwrap());
    let c = |method: &str, path: &str, body: Value| call(&addr, &key, method, path, &body);

    assert_eq!(
        c("POST", "/v1/tenants", json!({"id": "acme", "name": "Acme"})).0,
        201
    );
    assert_eq!(
        c(
            "POST",
            "/v1/tenants/acme/agents",
            json!({"id": "support", "name": "Support"})
        )
        .0,
        201
    );
    // History: two external emails (one refused back then), one internal, yesterday (within
    // Validate's default week whatever day the test runs).
    let day = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap()
        .strftime("%Y-%m-%d")
        .to_string();
    let t = |time: &str| format!("{day}T{time}Z");
    let email = |at: &str, to: &str, decision: &str| json!({"at": t(at), "kind": "tool_call", "tool": "gmail.send_email", "args": {"to": to}, "decision": decision});
    let (status, imported) = c(
        "POST",
        "/v1/runs/import",
        json!({"runs": [
        {"agent_id": "support", "tenant_id": "acme", "started_at": t("09:00:00"), "actions": [
            email("09:00:01", "ann@acme.com", "allow"), email("09:00:02", "bob@gmail.com", "allow")]},
        {"agent_id": "support", "tenant_id": "acme", "started_at": t("10:00:00"), "actions": [
            email("10:00:01", "eve@evil.io", "block")]}]}),
    );
    assert_eq!((status, imported), (201, json!({"runs": 2, "actions": 3})));

    let policy = json!({"name": "Block external email", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
        "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}]});
    let (_, v1) = c("POST", "/v1/policies", policy);
    let v1 = v1["id"].as_str().unwrap().to_owned();
    let external =
        json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@gmail.com"}});
    // The draft is not enforced.
    let (_, early) = c(
        "POST",
        "/v1/runs",
        json!({"agent_id": "support", "tenant_id": "acme"}),
    );
    let early = early["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c("POST", &format!("/v1/runs/{early}/check"), external.clone()).1["decision"],
        "allow"
    );
    // Validate reports exactly the would-be blocks (history and the check just made).
    let (status, report) = c(
        "POST",
        &format!("/v1/policies/{v1}/validate"),
        json!({"lookback": "7d"}),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            report["actions_blocked"].clone(),
            report["actions_new"].clone(),
            report["actions_already_blocked"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(report["by_rule"], json!([{"rule_id": "r1", "blocked": 3}]));
    // Activate (validated, no force); the run started before keeps its rules, a new one is blocked.
    let (status, active) = c("POST", &format!("/v1/policies/{v1}/activate"), json!({}));
    assert_eq!(
        (status, active["status"].clone()),
        (200, json!("active")),
        "{active}"
    );
    assert_eq!(
        c("POST", &format!("/v1/runs/{early}/check"), external.clone()).1["decision"],
        "allow"
    );
    let (_, late) = c(
        "POST",
        "/v1/runs",
        json!({"agent_id": "support", "tenant_id": "acme"}),
    );
    let late = late["id"].as_str().unwrap().to_owned();
    let (_, blocked) = c("POST", &format!("/v1/runs/{late}/check"), external);
    assert_eq!(blocked["decision"], "block");
    // The block is in the Monitor, filtered by the policy, with rule, agent, run and input.
    let (_, events) = c(
        "GET",
        &format!("/v1/violations?policy_id={v1}"),
        Value::Null,
    );
    let event = &events["items"][0];
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(
        (
            event["rule_id"].clone(),
            event["agent_id"].clone(),
            event["run_id"].clone(),
            event["matching_input"].clone()
        ),
        (
            json!("r1"),
            json!("support"),
            json!(late),
            json!("bob@gmail.com")
        )
    );
    // Clone, edit, validate, activate with supersede.
    let (_, v2) = c("POST", &format!("/v1/policies/{v1}/clone"), json!({}));
    let v2 = v2["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c(
            "PUT",
            &format!("/v1/policies/{v2}"),
            json!({"description": "also partners"})
        )
        .0,
        200
    );
    assert_eq!(
        c("POST", &format!("/v1/policies/{v2}/validate"), json!({})).0,
        200
    );
    let (status, _) = c(
        "POST",
        &format!("/v1/policies/{v2}/activate"),
        json!({"supersede": true}),
    );
    assert_eq!(status, 200);
    let (_, versions) = c("GET", &format!("/v1/policies/{v2}/versions"), Value::Null);
    let chain: Vec<(u64, &str)> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["version"].as_u64().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(chain, [(1, "deprecated"), (2, "active")]);
    let (_, audit) = c(
        "GET",
        &format!(
            "/v1/audit?lineage_id={}&limit=500",
            versions["lineage_id"].as_str().unwrap()
        ),
        Value::Null,
    );
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "policy.created",
        "policy.validated",
        "policy.activated",
        "policy.cloned",
        "policy.updated",
        "policy.deprecated",
    ] {
        assert!(actions.contains(&expected), "{expected}: {actions:?}");
    }
    assert_eq!(c("GET", "/v1/audit/verify", Value::Null).1["ok"], true);
    stop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
