//! The limits the server sets at its edge (docs/operations.md, "Limits"): each taken at
//! exactly its value and refused one past it, with the error that names it, and nothing
//! changed by a refused request. charter-core's own limits are tested there
//! (`crates/charter-core/tests/it/limits.rs`); here, that they reach the API as 400s.

use std::time::Duration;

use axum::http::StatusCode;
use charter_core::parse::{MAX_DEPTH, MAX_TEXT_DEPTH};
use serde_json::{Value, json};

use crate::app::{App, Response, error_code, error_path};

const NDJSON: &[(&str, &str)] = &[("content-type", "application/x-ndjson")];

/// `levels` arrays, each holding the next, around `"x"`.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("x"), |value, _| Value::Array(vec![value]))
}

/// `levels` arrays as text, without building a value.
fn nested_text(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// A 400 `invalid` at `path` whose message names `limit`.
#[track_caller]
fn refused_at(r: &Response, path: &str, limit: usize) {
    assert_eq!(
        (r.status, error_code(r), error_path(r)),
        (StatusCode::BAD_REQUEST, "invalid", path),
        "{:?}",
        r.body
    );
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&limit.to_string()), "{message}");
}

async fn start_run(app: &App, key: &str) -> String {
    let r = app
        .call(
            "POST",
            "/v1/runs",
            Some(key),
            Some(json!({"agent_id": "support"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn actions_of(app: &App, key: &str, run: &str) -> usize {
    let r = app
        .call("GET", &format!("/v1/runs/{run}"), Some(key), None)
        .await;
    r.body["actions"].as_array().unwrap().len()
}

async fn count(app: &App, key: &str, path: &str) -> usize {
    let r = app.call("GET", path, Some(key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().unwrap().len()
}

/// A check body of exactly `len` bytes: a tool call whose one argument pads it.
fn check_of_length(len: usize) -> String {
    let empty = json!({"kind": "tool_call", "tool": "kb.search", "args": {"q": ""}}).to_string();
    json!({"kind": "tool_call", "tool": "kb.search", "args": {"q": "x".repeat(len - empty.len())}})
        .to_string()
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_passes_and_one_byte_more_is_413_changing_nothing() {
    let (app, acme, _) = App::seeded().await;
    let run = start_run(&app, &acme).await;
    let check = format!("/v1/runs/{run}/check");
    let limit = charter_server::DEFAULT_BODY_LIMIT;
    let at_limit = check_of_length(limit);
    assert_eq!(at_limit.len(), limit);
    let r = app
        .raw("POST", &check, Some(&acme), Some(&at_limit), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .raw(
            "POST",
            &check,
            Some(&acme),
            Some(&check_of_length(limit + 1)),
            &[],
        )
        .await;
    assert_eq!(
        (
            r.status,
            error_code(&r),
            r.body["error"]["details"]["limit"].clone()
        ),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large", json!(limit)),
        "{:?}",
        r.body
    );
    assert_eq!(
        actions_of(&app, &acme, &run).await,
        1,
        "the refused check recorded nothing"
    );
}

#[tokio::test]
async fn the_body_limit_is_the_operators_and_bounds_each_line_of_an_ndjson_import() {
    const LIMIT: usize = 4096;
    let (app, acme, _) = App::seeded_with(|state| state.body_limit = LIMIT).await;
    let run = start_run(&app, &acme).await;
    let check = format!("/v1/runs/{run}/check");
    let r = app
        .raw(
            "POST",
            &check,
            Some(&acme),
            Some(&check_of_length(LIMIT)),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .raw(
            "POST",
            &check,
            Some(&acme),
            Some(&check_of_length(LIMIT + 1)),
            &[],
        )
        .await;
    assert_eq!(
        r.body["error"]["details"]["limit"],
        json!(LIMIT),
        "{:?}",
        r.body
    );

    // A line of exactly the limit is imported; one byte more refuses the whole import.
    let line = |len: usize| {
        let run = |pad: &str| {
            json!({"agent_id": "support", "started_at": "2026-11-20T09:00:00Z",
                   "metadata": {"pad": pad}})
            .to_string()
        };
        run(&"x".repeat(len - run("").len()))
    };
    let before = count(&app, &acme, "/v1/runs").await;
    let body = format!("{}\n", line(LIMIT));
    let r = app
        .raw("POST", "/v1/runs/import", Some(&acme), Some(&body), NDJSON)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let body = format!("{}\n{}\n", line(100), line(LIMIT + 1));
    let r = app
        .raw("POST", "/v1/runs/import", Some(&acme), Some(&body), NDJSON)
        .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        "{:?}",
        r.body
    );
    assert_eq!(count(&app, &acme, "/v1/runs").await, before + 1);
}

#[tokio::test]
async fn nesting_is_bounded_in_args_metadata_schemas_and_conditions() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let run = start_run(&app, &acme).await;
    let check = format!("/v1/runs/{run}/check");
    let call = |levels: usize| {
        // `args` is the first level, its value's arrays the rest.
        json!({"kind": "tool_call", "tool": "kb.search", "args": {"a": nested(levels - 1)}})
    };
    let r = app.call("POST", &check, key, Some(call(MAX_DEPTH))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .call("POST", &check, key, Some(call(MAX_DEPTH + 1)))
        .await;
    refused_at(&r, "args", MAX_DEPTH);
    assert_eq!(actions_of(&app, &acme, &run).await, 1);

    let runs = count(&app, &acme, "/v1/runs").await;
    let start =
        |levels: usize| json!({"agent_id": "support", "metadata": {"a": nested(levels - 1)}});
    let r = app
        .call("POST", "/v1/runs", key, Some(start(MAX_DEPTH)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .call("POST", "/v1/runs", key, Some(start(MAX_DEPTH + 1)))
        .await;
    refused_at(&r, "metadata", MAX_DEPTH);
    let import = json!({"runs": [{"agent_id": "support", "started_at": "2026-11-20T09:00:00Z",
                                  "metadata": {"a": nested(MAX_DEPTH)}}]});
    let r = app.call("POST", "/v1/runs/import", key, Some(import)).await;
    refused_at(&r, "runs[0].metadata", MAX_DEPTH);
    assert_eq!(count(&app, &acme, "/v1/runs").await, runs + 1);

    let policies = count(&app, &acme, "/v1/policies").await;
    let policy = |rule: Value| json!({"name": "Deep", "scope": {"type": "tenant", "tenant_id": "acme"}, "rules": [rule]});
    let schema = |levels: usize| {
        (1..levels).fold(
            json!({}),
            |inner, _| json!({"type": "array", "items": inner}),
        )
    };
    let output =
        |levels: usize| json!({"id": "r1", "type": "output", "json_schema": schema(levels)});
    let r = app
        .call("POST", "/v1/policies", key, Some(policy(output(MAX_DEPTH))))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .call(
            "POST",
            "/v1/policies",
            key,
            Some(policy(output(MAX_DEPTH + 1))),
        )
        .await;
    refused_at(&r, "rules[0].json_schema", MAX_DEPTH);
    let condition = json!({"id": "r1", "type": "tool", "effect": "deny", "tools": ["x"],
                           "when": [{"arg": "a", "op": "eq", "value": nested(MAX_DEPTH + 1)}]});
    let r = app
        .call("POST", "/v1/policies", key, Some(policy(condition)))
        .await;
    refused_at(&r, "rules[0].when[0].value", MAX_DEPTH);
    assert_eq!(count(&app, &acme, "/v1/policies").await, policies + 1);
}

#[tokio::test]
async fn text_nested_100_000_deep_is_a_400_naming_the_limit_never_a_crash() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let deep = nested_text(100_000);
    let run = start_run(&app, &acme).await;
    let policies = count(&app, &acme, "/v1/policies").await;
    let runs = count(&app, &acme, "/v1/runs").await;
    let sends = [
        (
            format!("/v1/runs/{run}/check"),
            format!(r#"{{"kind":"tool_call","tool":"kb.search","args":{{"a":{deep}}}}}"#),
            &[][..],
            "",
        ),
        (
            "/v1/policies".to_owned(),
            format!(
                r#"{{"name":"Deep","scope":{{"type":"tenant","tenant_id":"acme"}},"rules":[{{"id":"r1","type":"output","json_schema":{{"items":{deep}}}}}]}}"#
            ),
            &[][..],
            "",
        ),
        (
            "/v1/runs/import".to_owned(),
            format!(
                r#"{{"agent_id":"support","started_at":"2026-11-20T09:00:00Z","metadata":{{"a":{deep}}}}}"#
            ),
            NDJSON,
            "line 1",
        ),
    ];
    for (path, body, headers, at) in sends {
        let r = app.raw("POST", &path, key, Some(&body), headers).await;
        refused_at(&r, at, MAX_TEXT_DEPTH);
    }
    assert_eq!(actions_of(&app, &acme, &run).await, 0);
    assert_eq!(count(&app, &acme, "/v1/policies").await, policies);
    assert_eq!(count(&app, &acme, "/v1/runs").await, runs);
}

#[tokio::test]
async fn query_values_and_page_sizes_are_bounded() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let max = 1024;
    let q = |len: usize| format!("/v1/policies?q={}", "n".repeat(len));
    let r = app.call("GET", &q(max), key, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    refused_at(
        &app.call("GET", &q(max + 1), key, None).await,
        "query.q",
        max,
    );
    let action = format!("/v1/audit?action={}", "a".repeat(max + 1));
    refused_at(
        &app.call("GET", &action, key, None).await,
        "query.action",
        max,
    );
    for list in ["/v1/runs", "/v1/violations", "/v1/audit"] {
        let r = app
            .call("GET", &format!("{list}?limit=500"), key, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{list}: {:?}", r.body);
        let r = app
            .call("GET", &format!("{list}?limit=501"), key, None)
            .await;
        refused_at(&r, "query.limit", 500);
    }
}

/// Opens a violation stream of the API with `key`: its status and, when open, its body.
async fn open_stream(app: &App, key: &str) -> (StatusCode, axum::body::Body) {
    use tower::ServiceExt as _;
    let request = axum::http::Request::builder()
        .uri("/v1/violations/stream")
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    (response.status(), response.into_body())
}

#[tokio::test]
async fn a_key_holds_at_most_its_streams_and_gets_one_back_when_a_stream_ends() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let (app, acme, globex) =
        App::seeded_with(|state| state.streams = charter_server::Streams::new(2)).await;
    let (first, held) = open_stream(&app, &acme).await;
    let (second, _held) = open_stream(&app, &acme).await;
    assert_eq!((first, second), (StatusCode::OK, StatusCode::OK));
    let (status, body) = open_stream(&app, &acme).await;
    let bytes = body.collect().await.unwrap().to_bytes();
    let error: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["error"]["code"], "too_many_requests");
    assert_eq!(error["error"]["details"]["limit"], 2);
    assert!(
        error["error"]["message"].as_str().unwrap().contains('2'),
        "{error}"
    );
    // The workspace's live Monitor draws on the same key's streams.
    let session = app.signed_in(&acme).await;
    let workspace = axum::http::Request::builder()
        .uri("/monitor/stream")
        .header("cookie", session.as_str())
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(workspace).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another key's streams are its own; a stream that ends gives its key one back.
    assert_eq!(open_stream(&app, &globex).await.0, StatusCode::OK);
    drop(held);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(open_stream(&app, &acme).await.0, StatusCode::OK);
}
