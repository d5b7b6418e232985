//! The OpenAPI document: generated from the code, committed as docs/openapi.json, covering
//! every route of the router, served at `GET /v1/openapi.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use serde_json::Value;

use crate::app::App;

/// The routes of api-v1.md's sections "Tenants, agents, keys", "Policies", "Runs and checks",
/// "Monitor", "Audit" and "Operations" that the router serves.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants"),
    ("post", "/v1/tenants/{tenant_id}/agents"),
    ("get", "/v1/tenants/{tenant_id}/agents"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys"),
    ("delete", "/v1/keys/{key_id}"),
    ("post", "/v1/policies"),
    ("get", "/v1/policies"),
    ("get", "/v1/policies/{id}"),
    ("put", "/v1/policies/{id}"),
    ("post", "/v1/policies/{id}/rules"),
    ("delete", "/v1/policies/{id}/rules/{rule_id}"),
    ("delete", "/v1/policies/{id}"),
    ("post", "/v1/policies/{id}/activate"),
    ("post", "/v1/policies/{id}/deprecate"),
    ("post", "/v1/policies/{id}/clone"),
    ("get", "/v1/policies/{id}/versions"),
    ("get", "/v1/policies/{id}/export"),
    ("post", "/v1/policies/import"),
    ("post", "/v1/policies/{id}/validate"),
    ("post", "/v1/runs"),
    ("get", "/v1/runs"),
    ("get", "/v1/runs/{run_id}"),
    ("post", "/v1/runs/{run_id}/check"),
    ("post", "/v1/runs/{run_id}/end"),
    ("post", "/v1/runs/import"),
    ("get", "/v1/violations"),
    ("get", "/v1/violations/stats"),
    ("get", "/v1/violations/stream"),
    ("get", "/v1/audit"),
    ("get", "/v1/audit/verify"),
];

/// Routes of those sections that the router does not serve yet, so the document must not list
/// them. When one is routed, this test fails: move it to [`ROUTES`] and document it.
const NOT_ROUTED_YET: &[(&str, &str)] = &[];

/// Routes that need no key.
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/metrics", "/v1/openapi.json"];

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

/// Object keys sorted at every level, so the text does not depend on whether another crate in
/// the build turned on `serde_json`'s `preserve_order`.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn generated() -> Value {
    serde_json::to_value(charter_server::openapi()).unwrap()
}

/// Fails when docs/openapi.json drifts from the code. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test -p charter-server --test it openapi`.
#[test]
fn committed_document_matches_the_code() {
    let text = serde_json::to_string_pretty(&sorted(generated())).unwrap() + "\n";
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json is out of date: run UPDATE_OPENAPI=1 cargo test -p charter-server --test it openapi"
    );
}

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert((method.clone(), path.clone()));
        }
    }
    found
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let document = generated();
    let found = documented(&document);
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");

    for (method, path) in ROUTES {
        let operation = &document["paths"][path][method];
        let secured = operation.get("security").is_some();
        assert_eq!(
            secured,
            !PUBLIC.contains(path),
            "{method} {path}: bearer security exactly on routes that need a key"
        );
        if secured {
            for status in ["401", "403"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
        }
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path} has no tag"
        );
    }
}

/// Every documented route answers (without a key: 401, or 200 for the public ones), and the
/// routes not served yet answer 404/405: the list above is the router's.
#[tokio::test]
async fn the_documented_routes_are_the_routers() {
    let app = App::new().await;
    let concrete = |path: &str| {
        path.replace("{tenant_id}", "acme")
            .replace("{key_id}", "key_x")
            .replace("{rule_id}", "r1")
            .replace("{run_id}", "run_x")
            .replace("{id}", "pol_x")
    };
    for (method, path) in ROUTES {
        let r = app
            .call(&method.to_uppercase(), &concrete(path), None, None)
            .await;
        let expected = if PUBLIC.contains(path) {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(r.status, expected, "{method} {path}");
    }
    for (method, path) in NOT_ROUTED_YET {
        let r = app
            .call(&method.to_uppercase(), &concrete(path), None, None)
            .await;
        assert!(
            matches!(
                r.status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "{method} {path} is routed now: document it and move it to ROUTES"
        );
    }
}

/// Every `$ref` points at a component of the document.
#[test]
fn every_reference_resolves() {
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let document = generated();
    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            document["components"]["schemas"].get(name).is_some(),
            "dangling $ref {r}"
        );
    }
}

#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let app = App::new().await;
    let r = app.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        r.body["openapi"]
    );
    assert_eq!(r.body["info"]["title"], "Charter API");
    assert_eq!(r.body["info"]["version"], "v1");
    assert_eq!(sorted(r.body), sorted(generated()));
}

/// Operation ids are unique (generated clients name their methods after them).
#[test]
fn operation_ids_are_unique() {
    let document = generated();
    let mut seen = BTreeSet::new();
    for (method, path) in ROUTES {
        let id = document["paths"][path][method]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        assert!(seen.insert(id.clone()), "operationId {id} is used twice");
    }
}

/// Rules, scopes and policy documents are exactly the core's JSON Schema
/// (`charter_core::document::json_schema()`), with `$ref`s pointing at components.
#[test]
fn policy_schemas_are_the_cores() {
    fn rewrite(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => {
                            let r = r.replace("#/$defs/", "#/components/schemas/");
                            (k, Value::String(r))
                        }
                        (_, v) => (k, rewrite(v)),
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(rewrite).collect()),
            other => other,
        }
    }
    let document = generated();
    let schemas = &document["components"]["schemas"];
    let Value::Object(mut core) = rewrite(charter_core::document::json_schema()) else {
        panic!("the core's schema is not an object");
    };
    core.remove("$schema");
    let Some(Value::Object(defs)) = core.remove("$defs") else {
        panic!("the core's schema has no $defs");
    };
    for (name, schema) in defs {
        assert_eq!(sorted(schemas[&name].clone()), sorted(schema), "{name}");
    }
    assert_eq!(
        sorted(schemas["PolicyDocument"].clone()),
        sorted(Value::Object(core))
    );
}
