//! Real answers against the document: every route is called on the in-process server, and each
//! JSON answer is validated against the schema the document declares for its route and status,
//! so a handler that answers a status or a shape the document does not declare fails here.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{App, Response, policy_body};

/// The document and what has been checked against it.
struct Contract {
    document: Value,
    seen: BTreeSet<(String, String)>,
}

impl Contract {
    fn new() -> Contract {
        Contract {
            document: serde_json::to_value(charter_server::openapi()).unwrap(),
            seen: BTreeSet::new(),
        }
    }

    /// Validates `r`, the answer to `method` on the route `template`, against the document.
    fn check(&mut self, method: &str, template: &str, r: &Response) {
        let method = method.to_lowercase();
        let status = r.status.as_u16().to_string();
        let operation = &self.document["paths"][template][&method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let response = &operation["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which the document does not declare: {}",
            r.body
        );
        let Some(schema) = response["content"]["application/json"]["schema"].as_object() else {
            panic!("{method} {template} {status}: no JSON schema declared");
        };
        // The response's schema, with the document's components beside it so its `$ref`s
        // (`#/components/schemas/...`) resolve.
        let mut root = schema.clone();
        root.insert("components".into(), self.document["components"].clone());
        let validator = jsonschema::validator_for(&Value::Object(root))
            .unwrap_or_else(|e| panic!("{method} {template} {status}: bad schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&r.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the answer does not match the document: {errors:#?}\n{}",
            r.body
        );
        self.seen.insert((method, template.to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_document_on_sqlite() {
    every_answer_matches_the_document(App::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_document_on_postgres() {
    if let Some((app, schema)) = App::postgres().await {
        every_answer_matches_the_document(app).await;
        schema.drop().await;
    }
}

/// Every JSON route, in its successes and its usual refusals.
async fn every_answer_matches_the_document(app: App) {
    let (app, acme, _globex) = app.seed().await;
    let admin = app.admin.clone();
    let mut c = Contract::new();
    let call = |method: &'static str, path: String, key: Option<String>, body: Option<Value>| {
        let app = &app;
        async move { app.call(method, &path, key.as_deref(), body).await }
    };
    let admin_ = || Some(admin.clone());

    // Tenants, agents, keys.
    let r = call(
        "POST",
        "/v1/tenants".into(),
        admin_(),
        Some(json!({"id": "initech", "name": "Initech"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    c.check("POST", "/v1/tenants", &r);
    let r = call(
        "POST",
        "/v1/tenants".into(),
        admin_(),
        Some(json!({"id": "initech", "name": "Initech"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    c.check("POST", "/v1/tenants", &r);
    let r = call(
        "POST",
        "/v1/tenants".into(),
        admin_(),
        Some(json!({"id": "", "name": "x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    c.check("POST", "/v1/tenants", &r);
    let r = call("POST", "/v1/tenants".into(), None, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    c.check("POST", "/v1/tenants", &r);
    let r = call("GET", "/v1/tenants".into(), admin_(), None).await;
    c.check("GET", "/v1/tenants", &r);
    let r = call(
        "POST",
        "/v1/tenants/initech/agents".into(),
        admin_(),
        Some(json!({"id": "bot", "name": "Bot", "owner": "ops"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    c.check("POST", "/v1/tenants/{tenant_id}/agents", &r);
    let r = call("GET", "/v1/tenants/initech/agents".into(), admin_(), None).await;
    c.check("GET", "/v1/tenants/{tenant_id}/agents", &r);
    let r = call("GET", "/v1/tenants/nowhere/agents".into(), admin_(), None).await;
    c.check("GET", "/v1/tenants/{tenant_id}/agents", &r);
    let r = call(
        "POST",
        "/v1/keys".into(),
        admin_(),
        Some(json!({"name": "reader", "tenant_id": "acme", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    c.check("POST", "/v1/keys", &r);
    let (key_id, reader) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["key"].as_str().unwrap().to_owned(),
    );
    let r = call(
        "POST",
        "/v1/policies".into(),
        Some(reader.clone()),
        Some(policy_body("x")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    c.check("POST", "/v1/policies", &r);
    let r = call("GET", "/v1/keys".into(), admin_(), None).await;
    c.check("GET", "/v1/keys", &r);
    let r = call("DELETE", format!("/v1/keys/{key_id}"), admin_(), None).await;
    assert_eq!(r.status, StatusCode::OK);
    c.check("DELETE", "/v1/keys/{key_id}", &r);
    let r = call("DELETE", format!("/v1/keys/{key_id}"), admin_(), None).await;
    c.check("DELETE", "/v1/keys/{key_id}", &r);

    // Policies through their lifecycle.
    let r = call(
        "POST",
        "/v1/policies".into(),
        Some(acme.clone()),
        Some(policy_body("email")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    c.check("POST", "/v1/policies", &r);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = call(
        "GET",
        "/v1/policies?scope_type=agent".into(),
        Some(acme.clone()),
        None,
    )
    .await;
    c.check("GET", "/v1/policies", &r);
    let r = call(
        "GET",
        format!("/v1/policies/{id}"),
        Some(acme.clone()),
        None,
    )
    .await;
    c.check("GET", "/v1/policies/{id}", &r);
    let r = call(
        "GET",
        "/v1/policies/pol_missing".into(),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    c.check("GET", "/v1/policies/{id}", &r);
    let r = call(
        "PUT",
        format!("/v1/policies/{id}"),
        Some(acme.clone()),
        Some(json!({"description": "edited"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    c.check("PUT", "/v1/policies/{id}", &r);
    let r = app
        .raw(
            "PUT",
            &format!("/v1/policies/{id}"),
            Some(&acme),
            Some("{}"),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    c.check("PUT", "/v1/policies/{id}", &r);
    let rule = json!({"id": "r2", "type": "rate", "limit": 5, "window": "1m"});
    let r = call(
        "POST",
        format!("/v1/policies/{id}/rules"),
        Some(acme.clone()),
        Some(rule),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    c.check("POST", "/v1/policies/{id}/rules", &r);
    let r = call(
        "DELETE",
        format!("/v1/policies/{id}/rules/r2"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    c.check("DELETE", "/v1/policies/{id}/rules/{rule_id}", &r);
    let r = call(
        "POST",
        format!("/v1/policies/{id}/activate"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    c.check("POST", "/v1/policies/{id}/activate", &r);
    let r = call(
        "POST",
        format!("/v1/policies/{id}/validate"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    c.check("POST", "/v1/policies/{id}/validate", &r);
    let r = call(
        "POST",
        format!("/v1/policies/{id}/validate"),
        Some(acme.clone()),
        Some(json!({"max_runs": 0})),
    )
    .await;
    c.check("POST", "/v1/policies/{id}/validate", &r);
    let r = call(
        "GET",
        format!("/v1/policies/{id}"),
        Some(acme.clone()),
        None,
    )
    .await;
    c.check("GET", "/v1/policies/{id}", &r);
    let r = call(
        "POST",
        format!("/v1/policies/{id}/activate"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    c.check("POST", "/v1/policies/{id}/activate", &r);
    let r = call(
        "PUT",
        format!("/v1/policies/{id}"),
        Some(acme.clone()),
        Some(json!({"name": "again"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    c.check("PUT", "/v1/policies/{id}", &r);
    let r = call(
        "GET",
        format!("/v1/policies/{id}/export"),
        Some(acme.clone()),
        None,
    )
    .await;
    c.check("GET", "/v1/policies/{id}/export", &r);
    let document = r.body.clone();
    let r = call(
        "POST",
        "/v1/policies/import".into(),
        Some(acme.clone()),
        Some(json!([document])),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    c.check("POST", "/v1/policies/import", &r);
    let imported = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = call(
        "POST",
        format!("/v1/policies/{id}/clone"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    c.check("POST", "/v1/policies/{id}/clone", &r);
    let r = call(
        "GET",
        format!("/v1/policies/{id}/versions"),
        Some(acme.clone()),
        None,
    )
    .await;
    c.check("GET", "/v1/policies/{id}/versions", &r);
    let r = call(
        "DELETE",
        format!("/v1/policies/{imported}"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    c.check("DELETE", "/v1/policies/{id}", &r);

    // Runs and checks: an allowed action, a blocked one, the end, a check after it.
    let r = call(
        "POST",
        "/v1/runs".into(),
        Some(acme.clone()),
        Some(json!({"agent_id": "support", "metadata": {"ticket": 7}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    c.check("POST", "/v1/runs", &r);
    let run = r.body["id"].as_str().unwrap().to_owned();
    for action in [
        json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@acme.com"}}),
        json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@gmail.com"}, "cost_usd": "0.02"}),
        json!({"kind": "model_call", "model": "m", "input_tokens": 3.0}),
    ] {
        let r = call(
            "POST",
            format!("/v1/runs/{run}/check"),
            Some(acme.clone()),
            Some(action),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        c.check("POST", "/v1/runs/{run_id}/check", &r);
    }
    let r = call("GET", format!("/v1/runs/{run}"), Some(acme.clone()), None).await;
    c.check("GET", "/v1/runs/{run_id}", &r);
    let r = call("GET", "/v1/runs?limit=1".into(), Some(acme.clone()), None).await;
    c.check("GET", "/v1/runs", &r);
    let r = call(
        "POST",
        format!("/v1/runs/{run}/end"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    c.check("POST", "/v1/runs/{run_id}/end", &r);
    let r = call(
        "POST",
        format!("/v1/runs/{run}/end"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    c.check("POST", "/v1/runs/{run_id}/end", &r);
    let r = call(
        "POST",
        format!("/v1/runs/{run}/check"),
        Some(acme.clone()),
        Some(json!({"kind": "output", "text": "hi"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    c.check("POST", "/v1/runs/{run_id}/check", &r);
    // A run a cost rule halts, then a check on it: answered from the run, `action_id: null`.
    let cap = json!({"name": "cap", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "billing"},
        "rules": [{"id": "cap", "type": "cost", "max_usd": "1.00", "period": "run"}]});
    let r = call("POST", "/v1/policies".into(), Some(acme.clone()), Some(cap)).await;
    let cap_id = r.body["id"].as_str().unwrap().to_owned();
    let r = call(
        "POST",
        format!("/v1/policies/{cap_id}/activate"),
        Some(acme.clone()),
        Some(json!({"force": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        "POST",
        "/v1/runs".into(),
        Some(acme.clone()),
        Some(json!({"agent_id": "billing"})),
    )
    .await;
    let halted = r.body["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let spend = json!({"kind": "model_call", "model": "m", "cost_usd": "2.00"});
        let r = call(
            "POST",
            format!("/v1/runs/{halted}/check"),
            Some(acme.clone()),
            Some(spend),
        )
        .await;
        assert_eq!(r.body["decision"], "halt", "{}", r.body);
        c.check("POST", "/v1/runs/{run_id}/check", &r);
    }
    let r = call(
        "GET",
        format!("/v1/runs/{halted}"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert!(r.body["halted_by"].is_array(), "{}", r.body);
    c.check("GET", "/v1/runs/{run_id}", &r);
    let history = json!({"runs": [{"agent_id": "support", "started_at": "2026-11-20T09:00:00Z",
        "actions": [{"at": "2026-11-20T09:00:03Z", "kind": "tool_call", "tool": "t", "decision": "allow"}]}]});
    let r = call(
        "POST",
        "/v1/runs/import".into(),
        Some(acme.clone()),
        Some(history),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    c.check("POST", "/v1/runs/import", &r);

    // The Monitor and the audit log.
    let r = call(
        "GET",
        "/v1/violations?limit=1".into(),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    c.check("GET", "/v1/violations", &r);
    let r = call(
        "GET",
        "/v1/violations?cursor=x".into(),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    c.check("GET", "/v1/violations", &r);
    let r = call(
        "GET",
        "/v1/violations/stats?bucket=1d".into(),
        Some(acme.clone()),
        None,
    )
    .await;
    c.check("GET", "/v1/violations/stats", &r);
    let r = call("GET", "/v1/audit".into(), admin_(), None).await;
    c.check("GET", "/v1/audit", &r);
    let r = call("GET", "/v1/audit/verify".into(), admin_(), None).await;
    c.check("GET", "/v1/audit/verify", &r);
    let r = call(
        "GET",
        "/v1/audit/verify?tenant_id=acme".into(),
        Some(acme.clone()),
        None,
    )
    .await;
    c.check("GET", "/v1/audit/verify", &r);

    let r = call(
        "POST",
        format!("/v1/policies/{id}/deprecate"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    c.check("POST", "/v1/policies/{id}/deprecate", &r);
    let r = call(
        "POST",
        format!("/v1/policies/{id}/deprecate"),
        Some(acme.clone()),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    c.check("POST", "/v1/policies/{id}/deprecate", &r);

    // Every JSON route has been checked (the others answer text or an event stream).
    let document = c.document.clone();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let json = operation["responses"]["200"]["content"]
                .get("application/json")
                .or_else(|| operation["responses"]["201"]["content"].get("application/json"));
            if json.is_some() && path != "/v1/openapi.json" {
                assert!(
                    c.seen.contains(&(method.clone(), path.clone())),
                    "{method} {path}: no answer of it was checked"
                );
            }
        }
    }
}
