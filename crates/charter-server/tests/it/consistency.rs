//! The runs and Monitor routes answer like the others: bad input is a 400 naming the field
//! (`query.<name>` for query parameters) and changes nothing; `null` for an optional field is
//! leaving it out; a tenant key learns nothing of another tenant.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{App, Response, error_code, error_path, policy_body};

const NDJSON: &[(&str, &str)] = &[("content-type", "application/x-ndjson")];

fn assert_invalid(r: &Response, path: &str) {
    assert_eq!(
        (r.status, error_code(r), error_path(r)),
        (StatusCode::BAD_REQUEST, "invalid", path),
        "{:?}",
        r.body
    );
}

fn imported(tenant: Option<&str>, agent: &str) -> Value {
    let mut run = json!({"agent_id": agent, "started_at": "2026-11-20T09:00:00Z",
                         "actions": [{"at": "2026-11-20T09:00:03Z", "kind": "tool_call", "tool": "kb.search"}]});
    if let Some(t) = tenant {
        run["tenant_id"] = json!(t);
    }
    run
}

async fn run_count(app: &App, tenant: &str) -> usize {
    let admin = app.admin.clone();
    let r = app
        .call(
            "GET",
            &format!("/v1/runs?tenant_id={tenant}&limit=500"),
            Some(&admin),
            None,
        )
        .await;
    r.body["items"].as_array().unwrap().len()
}

/// A block of `support` in acme, recorded for the Monitor.
async fn one_block(app: &App, acme: &str) {
    let key = Some(acme);
    let id = app
        .call("POST", "/v1/policies", key, Some(policy_body("Guard")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        "POST",
        &format!("/v1/policies/{id}/activate"),
        key,
        Some(json!({"force": true})),
    )
    .await;
    let run = app
        .call(
            "POST",
            "/v1/runs",
            key,
            Some(json!({"agent_id": "support"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            Some(json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@gmail.com"}})),
        )
        .await;
    assert_eq!(r.body["decision"], "block", "{:?}", r.body);
}

#[tokio::test]
async fn a_tenant_the_key_cannot_name_is_refused_at_tenant_id() {
    let (app, acme, _) = App::seeded().await;
    let admin = app.admin.clone();
    // Another tenant's id and one that exists nowhere get the same answer, as keys do.
    for (key, tenant) in [(&acme, "globex"), (&acme, "nowhere"), (&admin, "nowhere")] {
        let r = app
            .call(
                "POST",
                "/v1/runs",
                Some(key),
                Some(json!({"agent_id": "support", "tenant_id": tenant})),
            )
            .await;
        assert_invalid(&r, "tenant_id");
        assert_eq!(
            r.body["error"]["message"],
            json!(format!("no tenant `{tenant}`"))
        );
        let keys = app
            .call(
                "POST",
                "/v1/keys",
                Some(key),
                Some(json!({"name": "k", "tenant_id": tenant, "scopes": ["read"]})),
            )
            .await;
        assert_eq!(keys.body["error"], r.body["error"], "the wording of keys");
        let r = app
            .call(
                "POST",
                "/v1/runs/import",
                Some(key),
                Some(json!({"runs": [imported(Some("acme"), "support"), imported(Some(tenant), "support")]})),
            )
            .await;
        assert_invalid(&r, "runs[1].tenant_id");
        assert_eq!(
            r.body["error"]["message"],
            json!(format!("no tenant `{tenant}`"))
        );
        let ndjson = format!(
            "{}\n\n{}\n",
            imported(Some("acme"), "support"),
            imported(Some(tenant), "support")
        );
        let r = app
            .raw("POST", "/v1/runs/import", Some(key), Some(&ndjson), NDJSON)
            .await;
        assert_invalid(&r, "line 3.tenant_id");
    }
    // A platform key's unknown agent in a real tenant is still named `agent_id`.
    let r = app
        .call(
            "POST",
            "/v1/runs",
            Some(&admin),
            Some(json!({"agent_id": "ghost", "tenant_id": "globex"})),
        )
        .await;
    assert_invalid(&r, "agent_id");
    assert_eq!(
        (
            run_count(&app, "acme").await,
            run_count(&app, "globex").await
        ),
        (0, 0)
    );
}

#[tokio::test]
async fn every_list_takes_a_limit_of_1_to_500() {
    let (app, acme, _) = App::seeded().await;
    for list in ["/v1/runs", "/v1/violations", "/v1/audit"] {
        for limit in ["0", "501", "-1", "many", "4294967296"] {
            let r = app
                .call("GET", &format!("{list}?limit={limit}"), Some(&acme), None)
                .await;
            assert_invalid(&r, "query.limit");
            assert_eq!(r.body["error"]["message"], "a limit is 1 to 500", "{list}");
        }
        for limit in ["1", "500"] {
            let r = app
                .call("GET", &format!("{list}?limit={limit}"), Some(&acme), None)
                .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{list}?limit={limit}: {:?}",
                r.body
            );
        }
    }
}

#[tokio::test]
async fn query_errors_name_the_parameter() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    for path in [
        "/v1/runs?cursor=bogus",
        "/v1/violations?cursor=bogus",
        "/v1/audit?cursor=bogus",
    ] {
        let r = app.call("GET", path, key, None).await;
        assert_invalid(&r, "query.cursor");
    }
    for (path, name) in [
        ("/v1/runs?since=yesterday", "query.since"),
        (
            "/v1/violations?since=2026-11-20T09:00:00Z&until=soon",
            "query.until",
        ),
        (
            "/v1/violations/stats?since=2026-13-01T00:00:00Z",
            "query.since",
        ),
        ("/v1/audit?since=later", "query.since"),
    ] {
        let r = app.call("GET", path, key, None).await;
        assert_invalid(&r, name);
    }
    for (query, path) in [
        ("cursor=x", "query.cursor"),
        ("limit=5", "query.limit"),
        ("bucket=1h", "query.bucket"),
    ] {
        let r = app
            .call("GET", &format!("/v1/violations/stream?{query}"), key, None)
            .await;
        assert_invalid(&r, path);
        if path != "query.bucket" {
            let r = app
                .call("GET", &format!("/v1/violations/stats?{query}"), key, None)
                .await;
            assert_invalid(&r, path);
        }
    }
    // More buckets than one answer holds.
    let inserted = app
        .store
        .execute_raw(
            "INSERT INTO violations (id, at, decision, policy_id, policy_name, policy_version, \
             lineage_id, rule_id, rule_type, tenant_id, agent_id, run_id, action_id, action_kind, \
             action_summary, matching_input, message) \
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
             SELECT printf('vio_%05d', i), 1795000000000 + i * 1000, 'block', 'pol_x', 'x', 1, \
             'lin_x', 'r1', 'tool', 'acme', 'support', 'run_x', 'evt_x', 'tool_call', 'x', NULL, \
             'm' FROM n",
        )
        .await
        .unwrap();
    assert_eq!(inserted, 10_001);
    let r = app
        .call("GET", "/v1/violations/stats?bucket=1s", key, None)
        .await;
    assert_invalid(&r, "query.bucket");
    let r = app
        .call("GET", "/v1/violations/stats?bucket=1d", key, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn a_run_takes_no_query_parameters() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let run = app
        .call(
            "POST",
            "/v1/runs",
            key,
            Some(json!({"agent_id": "support"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call("GET", &format!("/v1/runs/{run}?verbose=1"), key, None)
        .await;
    assert_invalid(&r, "query.verbose");
    let r = app.call("GET", &format!("/v1/runs/{run}"), key, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn ndjson_imports_name_the_line_of_a_run_the_store_refuses() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let ok = imported(None, "support");
    let mut disorder = imported(None, "support");
    disorder["actions"] = json!([
        {"at": "2026-11-20T09:00:09Z", "kind": "tool_call", "tool": "a"},
        {"at": "2026-11-20T09:00:03Z", "kind": "tool_call", "tool": "b"}
    ]);
    for (body, path) in [
        (
            format!("\n{ok}\n\n{}\n", imported(None, "ghost")),
            "line 4.agent_id",
        ),
        (format!("{ok}\n \n{disorder}"), "line 3.actions[1].at"),
        (
            format!("{ok}\n{ok}\n\n\n{}\n", imported(Some("globex"), "support")),
            "line 5.tenant_id",
        ),
    ] {
        let r = app
            .raw("POST", "/v1/runs/import", key, Some(&body), NDJSON)
            .await;
        assert_invalid(&r, path);
    }
    // A JSON body keeps naming runs by index.
    let r = app
        .call(
            "POST",
            "/v1/runs/import",
            key,
            Some(json!({"runs": [ok, imported(None, "ghost")]})),
        )
        .await;
    assert_invalid(&r, "runs[1].agent_id");
    assert_eq!(run_count(&app, "acme").await, 0, "nothing was imported");
}

#[tokio::test]
async fn a_long_ndjson_import_is_streamed_and_still_all_or_nothing() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    // About 4 MiB (four times the body limit, several staged pieces), in frames that cut
    // lines anywhere.
    let runs = 10_000;
    let line = |i: usize, agent: &str| {
        let mut run = imported(None, agent);
        run["metadata"] = json!({"legacy_id": i, "note": "x".repeat(300)});
        format!("{run}\n")
    };
    // ASCII only: a frame boundary never cuts a character.
    let frames = |body: String| -> Vec<String> {
        body.as_bytes()
            .chunks(7_919)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    };
    // A blank line every 1,000 runs: lines and runs are counted apart.
    let body = |ghost: Option<usize>| -> (String, usize) {
        let (mut body, mut lines, mut ghost_line) = (String::new(), 0, 0);
        for i in 0..runs {
            if i % 1_000 == 999 {
                body.push('\n');
                lines += 1;
            }
            lines += 1;
            if ghost == Some(i) {
                ghost_line = lines;
                body += &line(i, "ghost");
            } else {
                body += &line(i, "support");
            }
        }
        (body, ghost_line)
    };
    let (good, _) = body(None);
    assert!(good.len() > 4 << 20, "{}", good.len());
    let r = app
        .streamed("POST", "/v1/runs/import", key, frames(good), NDJSON)
        .await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::CREATED, json!({"runs": runs, "actions": runs}))
    );
    // A run the store refuses in the middle of a later piece read back: named by its line;
    // nothing of the import is kept.
    let (bad, ghost_line) = body(Some(7_777));
    assert_eq!(ghost_line, 7_777 + 7 + 1);
    let r = app
        .streamed("POST", "/v1/runs/import", key, frames(bad), NDJSON)
        .await;
    assert_invalid(&r, &format!("line {ghost_line}.agent_id"));
    let mut total = 0;
    let mut cursor = None;
    loop {
        let page = app
            .store
            .runs(
                &charter_store::Principal::Platform,
                &charter_store::RunFilter::default(),
                cursor.as_deref(),
                500,
            )
            .await
            .unwrap();
        total += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(total, runs, "the refused import added nothing");
    // Nor kept anything unseen: the pieces it had written were deleted.
    for (sql, rows) in [
        ("UPDATE runs SET id = id WHERE import_id IS NOT NULL", 0),
        ("UPDATE actions SET id = id", runs),
    ] {
        assert_eq!(
            app.store.execute_raw(sql).await.unwrap(),
            rows as u64,
            "{sql}"
        );
    }
    // One line over the body limit is too large, whole or cut into frames, ended or not.
    let mut huge = imported(None, "support");
    huge["metadata"] = json!({"note": "x".repeat(1 << 20)});
    for body in [format!("{}{huge}\n", line(0, "support")), huge.to_string()] {
        for chunks in [vec![body.clone()], frames(body.clone())] {
            let r = app
                .streamed("POST", "/v1/runs/import", key, chunks, NDJSON)
                .await;
            assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
            assert_eq!(error_code(&r), "too_large");
        }
    }
}

#[tokio::test]
async fn imported_metadata_is_an_object() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    for metadata in [json!("note"), json!([1]), json!(3)] {
        let mut run = imported(None, "support");
        run["metadata"] = metadata.clone();
        let r = app
            .call(
                "POST",
                "/v1/runs",
                key,
                Some(json!({"agent_id": "support", "metadata": metadata})),
            )
            .await;
        assert_invalid(&r, "metadata");
        let message = r.body["error"]["message"].clone();
        let r = app
            .call(
                "POST",
                "/v1/runs/import",
                key,
                Some(json!({"runs": [imported(None, "support"), run.clone()]})),
            )
            .await;
        assert_invalid(&r, "runs[1].metadata");
        assert_eq!(r.body["error"]["message"], message);
        let r = app
            .raw(
                "POST",
                "/v1/runs/import",
                key,
                Some(&format!("{run}\n")),
                NDJSON,
            )
            .await;
        assert_invalid(&r, "line 1.metadata");
    }
    assert_eq!(run_count(&app, "acme").await, 0, "nothing was imported");
    let mut run = imported(None, "support");
    run["metadata"] = json!({"source": "zendesk"});
    let r = app
        .call("POST", "/v1/runs/import", key, Some(json!({"runs": [run]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn null_for_an_optional_field_is_leaving_it_out() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let actions = json!([
        {"at": "2026-11-20T09:00:01Z", "kind": "tool_call", "tool": "kb.search", "args": null, "cost_usd": null, "decision": null},
        {"at": "2026-11-20T09:00:02Z", "kind": "data_access", "resource": "crm/x", "operation": "read", "labels": null},
        {"at": "2026-11-20T09:00:03Z", "kind": "model_call", "model": "m", "input_tokens": null, "output_tokens": null},
        {"at": "2026-11-20T09:00:04Z", "kind": "output", "text": "hi", "channel": null}
    ]);
    let run = json!({"agent_id": "support", "tenant_id": null, "started_at": "2026-11-20T09:00:00Z",
                     "ended_at": null, "status": null, "metadata": null, "actions": actions});
    let empty =
        json!({"agent_id": "support", "started_at": "2026-11-20T09:00:00Z", "actions": null});
    let r = app
        .call(
            "POST",
            "/v1/runs/import",
            key,
            Some(json!({"runs": [run, empty]})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::CREATED, json!({"runs": 2, "actions": 4}))
    );
    // The recorded actions are those without the null fields.
    let listed = app.call("GET", "/v1/runs", key, None).await;
    let with_actions = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let mut recorded = Vec::new();
    for id in &with_actions {
        let r = app.call("GET", &format!("/v1/runs/{id}"), key, None).await;
        recorded.extend(r.body["actions"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(recorded.len(), 4);
    assert_eq!(
        (
            recorded[0]["action"].clone(),
            recorded[0]["decision"].clone()
        ),
        (
            json!({"kind": "tool_call", "tool": "kb.search", "args": {}}),
            Value::Null
        )
    );
    // A live check too.
    let live = app
        .call(
            "POST",
            "/v1/runs",
            key,
            Some(json!({"agent_id": "support", "tenant_id": null, "metadata": null})),
        )
        .await;
    assert_eq!(live.status, StatusCode::CREATED, "{:?}", live.body);
    let live = live.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{live}/check"),
            key,
            Some(
                json!({"kind": "model_call", "model": "m", "input_tokens": null, "cost_usd": null}),
            ),
        )
        .await;
    assert_eq!(
        (r.status, r.body["decision"].clone()),
        (StatusCode::OK, json!("allow")),
        "{:?}",
        r.body
    );
    // Required fields stay required.
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{live}/check"),
            key,
            Some(json!({"kind": "tool_call", "tool": null})),
        )
        .await;
    assert_invalid(&r, "tool");
    let mut bad = json!({"agent_id": "support", "started_at": "2026-11-20T09:00:00Z",
                         "actions": [{"at": null, "kind": "tool_call", "tool": "x"}]});
    let r = app
        .call(
            "POST",
            "/v1/runs/import",
            key,
            Some(json!({"runs": [bad.clone()]})),
        )
        .await;
    assert_invalid(&r, "runs[0].actions[0].at");
    bad["actions"] = json!([{"at": "2026-11-20T09:00:01Z", "kind": "tool_call", "tool": "x", "decision": "maybe"}]);
    let r = app
        .call("POST", "/v1/runs/import", key, Some(json!({"runs": [bad]})))
        .await;
    assert_invalid(&r, "runs[0].actions[0].decision");
}

#[tokio::test]
async fn another_tenants_id_filters_the_monitor_to_nothing() {
    let (app, acme, globex) = App::seeded().await;
    let key = Some(acme.as_str());
    one_block(&app, &acme).await;
    // The caller's own tenant, named or not, shows its block.
    for query in ["", "?tenant_id=acme"] {
        let r = app
            .call("GET", &format!("/v1/violations{query}"), key, None)
            .await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{query}");
        let r = app
            .call("GET", &format!("/v1/violations/stats{query}"), key, None)
            .await;
        assert_eq!(r.body["buckets"][0]["count"], 1, "{query}");
        let r = app
            .call("GET", &format!("/v1/runs{query}"), key, None)
            .await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{query}");
    }
    // Another tenant's id, or one that exists nowhere: nothing, alike, never the caller's own.
    for (path, field) in [
        ("/v1/violations", "items"),
        ("/v1/violations/stats", "buckets"),
        ("/v1/runs", "items"),
    ] {
        let mut answers = Vec::new();
        for tenant in ["globex", "nowhere"] {
            let r = app
                .call("GET", &format!("{path}?tenant_id={tenant}"), key, None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
            assert_eq!(r.body[field], json!([]), "{path}?tenant_id={tenant}");
            answers.push(r.body);
        }
        assert_eq!(answers[0], answers[1], "{path}");
        // And globex's key naming acme sees nothing of acme.
        let r = app
            .call(
                "GET",
                &format!("{path}?tenant_id=acme"),
                Some(&globex),
                None,
            )
            .await;
        assert_eq!(r.body[field], json!([]), "{path}");
    }
    // A platform key's filter is unchanged.
    let admin = app.admin.clone();
    let r = app
        .call("GET", "/v1/violations?tenant_id=acme", Some(&admin), None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app
        .call("GET", "/v1/violations?tenant_id=globex", Some(&admin), None)
        .await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn write_routes_refuse_query_parameters_and_change_nothing() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let id = app
        .call("POST", "/v1/policies", key, Some(policy_body("Guard")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A parameter that looks meaningful must not be silently ignored.
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate?force=true"),
            key,
            Some(json!({})),
        )
        .await;
    assert_invalid(&r, "query.force");
    let r = app
        .call("GET", &format!("/v1/policies/{id}"), key, None)
        .await;
    assert_eq!(r.body["status"], "draft");
    for (method, path, body) in [
        (
            "POST",
            "/v1/policies?dry_run=1".to_owned(),
            Some(policy_body("Other")),
        ),
        (
            "PUT",
            format!("/v1/policies/{id}?x"),
            Some(json!({"name": "Renamed"})),
        ),
        ("DELETE", format!("/v1/policies/{id}?really=yes"), None),
        (
            "POST",
            "/v1/runs?%ff=1".to_owned(),
            Some(json!({"agent_id": "support"})),
        ),
    ] {
        let r = app.call(method, &path, key, body).await;
        let name = path
            .split_once('?')
            .unwrap()
            .1
            .split(['=', '&'])
            .next()
            .unwrap();
        let expected = if name.starts_with('%') {
            "query".to_owned()
        } else {
            format!("query.{name}")
        };
        assert_invalid(&r, &expected);
    }
    let r = app.call("GET", "/v1/policies", key, None).await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["name"], "Guard");
    assert_eq!(run_count(&app, "acme").await, 0);
    // Reads still take their parameters, and an unknown path is still a 404.
    let r = app.call("GET", "/v1/runs?limit=5", key, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call("POST", "/v1/nowhere?x=1", key, Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
