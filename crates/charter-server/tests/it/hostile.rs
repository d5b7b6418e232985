//! Hostile ids and query values on every route of the OpenAPI document, on SQLite and on
//! PostgreSQL: NUL bytes, bad percent-encoding, over-long and non-ASCII text. A path id that
//! cannot name anything answers exactly as any other missing id (the same 404, the same
//! message); a query value is a 400 naming its parameter, or, for a free-text filter given
//! well-formed text, a 200 that matches nothing. Never a 5xx.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{App, Response, error_code, error_path, policy_body};

/// Path segments and query values as sent, still percent-encoded.
fn hostile() -> Vec<String> {
    let mut values: Vec<String> = [
        "%00",
        "a%00b",
        "%ZZ",
        "%C3%A9t%C3%A9",
        "%FF",
        "%0A",
        "a%2Fb",
        "%",
        "%E2%80%AE",
        "%2",
    ]
    .map(str::to_owned)
    .to_vec();
    values.push("a".repeat(300));
    values
}

/// A well-formed id that names nothing.
const MISSING: &str = "nonexistent";

/// The query parameters that filter by free text: well-formed text matches what holds it,
/// here nothing. Every other parameter names an id or takes a fixed vocabulary or format.
const FREE_TEXT: &[&str] = &["q", "action"];

/// Strict percent-decoding as the server reads a segment or a value; `None` when it is not
/// well-formed UTF-8.
fn decoded(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A body each write accepts, so that only the path decides the answer.
fn body_for(operation: &str) -> Value {
    match operation {
        "create_agent" => json!({"id": "fresh", "name": "Fresh"}),
        "update_policy" => json!({"name": "Renamed"}),
        "add_rule" => json!({"id": "r9", "type": "tool", "effect": "deny", "tools": ["x.*"]}),
        "activate_policy" => json!({"force": true}),
        "check_action" => json!({"kind": "tool_call", "tool": "kb.search"}),
        _ => json!({}),
    }
}

async fn send(app: &App, method: &str, path: &str, body: Option<&Value>) -> Response {
    let key = app.admin.clone();
    let body = body.map(Value::to_string);
    let request = app.raw(method, path, Some(&key), body.as_deref(), &[]);
    // The violation stream would stream forever if a filter were taken.
    tokio::time::timeout(Duration::from_secs(20), request)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} did not answer"))
}

async fn sweep(app: App) {
    let r = app.raw("GET", "/v1/openapi.json", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let document = r.body;
    // A draft with rule r1, so a hostile rule id is tried on a policy that exists.
    let admin = app.admin.clone();
    for (path, body) in [
        ("/v1/tenants", json!({"id": "acme", "name": "Acme"})),
        (
            "/v1/tenants/acme/agents",
            json!({"id": "support", "name": "Support"}),
        ),
    ] {
        let r = app.call("POST", path, Some(&admin), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r = app
        .call(
            "POST",
            "/v1/policies",
            Some(&admin),
            Some(policy_body("Guard")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let policy = r.body["id"].as_str().unwrap().to_owned();

    let mut tried = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let params: Vec<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let operation_id = operation["operationId"].as_str().unwrap();
            let body = if method == "GET" || method == "DELETE" {
                None
            } else {
                Some(body_for(operation_id))
            };
            for param in &params {
                // The other parameters name what exists: the policy, its rule r1.
                let fill = |value: &str| {
                    params.iter().fold(template.clone(), |path, p| {
                        let with = if p == param {
                            value
                        } else if *p == "rule_id" {
                            "r1"
                        } else {
                            policy.as_str()
                        };
                        path.replace(&format!("{{{p}}}"), with)
                    })
                };
                let missing = send(&app, &method, &fill(MISSING), body.as_ref()).await;
                assert_eq!(
                    (missing.status, error_code(&missing)),
                    (StatusCode::NOT_FOUND, "not_found"),
                    "{method} {template} with {param} = {MISSING}: {:?}",
                    missing.body
                );
                let message = missing.body["error"]["message"].as_str().unwrap();
                for value in hostile() {
                    let path = fill(&value);
                    let r = send(&app, &method, &path, body.as_ref()).await;
                    // The same answer as for a missing id, naming what was sent: the id as
                    // decoded, or as sent when it cannot be decoded.
                    let shown = decoded(&value).unwrap_or_else(|| value.clone());
                    assert_eq!(
                        (r.status, r.body["error"].clone()),
                        (
                            StatusCode::NOT_FOUND,
                            json!({
                                "code": "not_found",
                                "message": message.replace(MISSING, &shown),
                                "details": {},
                            })
                        ),
                        "{method} {path}"
                    );
                    tried += 1;
                }
            }

            let query: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for name in query {
                for value in hostile() {
                    let path = format!("{template}?{name}={value}");
                    let r = send(&app, &method, &path, body.as_ref()).await;
                    let text = decoded(&value).filter(|t| !t.chars().any(char::is_control));
                    if FREE_TEXT.contains(&name) && text.is_some() {
                        assert_eq!(r.status, StatusCode::OK, "{method} {path}: {:?}", r.body);
                        let items = r.body["items"].as_array().unwrap();
                        assert!(items.is_empty(), "{method} {path}: {items:?}");
                    } else {
                        assert_eq!(
                            (r.status, error_code(&r), error_path(&r)),
                            (
                                StatusCode::BAD_REQUEST,
                                "invalid",
                                format!("query.{name}").as_str()
                            ),
                            "{method} {path}: {:?}",
                            r.body
                        );
                    }
                    tried += 1;
                }
            }
        }
    }
    // Text a body carries straight into a column (a policy's description; names refuse every
    // control character) is refused with NUL, which PostgreSQL text cannot hold.
    let nul = json!({"description": "a\u{0}b"});
    let mut created = policy_body("Described");
    created["description"] = nul["description"].clone();
    for (method, path, body) in [
        ("POST", "/v1/policies".to_owned(), created),
        ("PUT", format!("/v1/policies/{policy}"), nul),
    ] {
        let r = app.call(method, &path, Some(&admin), Some(body)).await;
        assert_eq!(
            (r.status, error_path(&r)),
            (StatusCode::BAD_REQUEST, "description"),
            "{method} {path}: {:?}",
            r.body
        );
    }
    // Every route with an id and every list's parameters were tried.
    assert!(tried > 400, "only {tried} requests");
    // Nothing changed: the draft is as it was.
    let r = app
        .call("GET", &format!("/v1/policies/{policy}"), Some(&admin), None)
        .await;
    assert_eq!(
        (r.body["revision"].clone(), r.body["status"].clone()),
        (json!(1), json!("draft"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_and_values_on_sqlite() {
    sweep(App::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_and_values_on_postgres() {
    if let Some((app, schema)) = App::postgres().await {
        sweep(app).await;
        schema.drop().await;
    }
}
