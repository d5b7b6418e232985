//! Runs and checks over HTTP: pinning, blocks with their violations recorded for the Monitor,
//! halts, ended runs.

use axum::http::StatusCode;
use charter_store::{Principal, ViolationFilter};
use serde_json::json;

use crate::app::{App, error_code, policy_body};

#[tokio::test]
async fn checks_decide_record_and_respect_pinning() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let mut body = policy_body("Guard");
    body["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "cap", "type": "cost", "max_usd": "1.00", "period": "run"}));
    let id = app.call("POST", "/v1/policies", key, Some(body)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A run started before activation keeps its (empty) set.
    let before = app
        .call(
            "POST",
            "/v1/runs",
            key,
            Some(json!({"agent_id": "support"})),
        )
        .await;
    assert_eq!(before.status, StatusCode::CREATED, "{:?}", before.body);
    let before = before.body["id"].as_str().unwrap().to_owned();
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
            Some(json!({"agent_id": "support", "metadata": {"ticket": 1}})),
        )
        .await;
    assert_eq!(run.body["policy_set"]["policies"][0]["id"], json!(id));
    let run = run.body["id"].as_str().unwrap().to_owned();
    let external =
        json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@gmail.com"}});
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{before}/check"),
            key,
            Some(external.clone()),
        )
        .await;
    assert_eq!(
        r.body["decision"], "allow",
        "the earlier run keeps its set: {:?}",
        r.body
    );
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            Some(external),
        )
        .await;
    assert_eq!(
        (r.status, r.body["decision"].clone()),
        (StatusCode::OK, json!("block")),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["violations"][0]["rule_id"], "r1");
    assert_eq!(r.body["violations"][0]["matching_input"], "bob@gmail.com");
    assert!(r.body["action_id"].as_str().unwrap().starts_with("evt_"));
    // The block is in the Monitor's store, with rule, agent, run and input.
    let events = app
        .store
        .violations(
            &Principal::Platform,
            &ViolationFilter {
                policy_id: Some(id.clone()),
                ..ViolationFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(
        (
            events.items[0].run_id.as_str(),
            events.items[0].agent_id.as_str()
        ),
        (run.as_str(), "support")
    );
    // Spending past the cap halts the run; later checks are halted and record nothing.
    let spend = json!({"kind": "model_call", "model": "m", "cost_usd": "2.00"});
    let r = app
        .call("POST", &format!("/v1/runs/{run}/check"), key, Some(spend))
        .await;
    assert_eq!(r.body["decision"], "halt");
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            Some(json!({"kind": "model_call", "model": "m"})),
        )
        .await;
    assert_eq!(
        (r.body["decision"].clone(), r.body["action_id"].clone()),
        (json!("halt"), json!(null))
    );
    assert_eq!(r.body["violations"][0]["rule_id"], "cap");
    let shown = app.call("GET", &format!("/v1/runs/{run}"), key, None).await;
    assert_eq!(shown.body["status"], "halted");
    assert_eq!(shown.body["actions"].as_array().unwrap().len(), 2);
    // Ending: a halted run stays halted; a check on an ended run is a 409 that changes nothing.
    let ended = app
        .call(
            "POST",
            &format!("/v1/runs/{before}/end"),
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(ended.body["status"], "completed");
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{before}/check"),
            key,
            Some(json!({"kind": "model_call", "model": "m"})),
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::CONFLICT, "conflict")
    );
    assert_eq!(
        app.call(
            "POST",
            &format!("/v1/runs/{before}/end"),
            key,
            Some(json!({}))
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    let listed = app.call("GET", "/v1/runs?status=halted", key, None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // Bad actions name their field; a key without `execute` is refused.
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            Some(json!({"kind": "tool_call", "tool": "x", "cost_usd": "-1"})),
        )
        .await;
    assert_eq!(r.body["error"]["details"]["path"], "cost_usd");
    // NUL cannot be stored by PostgreSQL: refused at the edge, not at the commit.
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            Some(json!({"kind": "tool_call", "tool": "x", "args": {"to": ["ok", "a\u{0}b"]}})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["path"].clone()),
        (StatusCode::BAD_REQUEST, json!("args.to[1]"))
    );
    let viewer = app
        .call(
            "POST",
            "/v1/keys",
            key,
            Some(json!({"name": "v", "scopes": ["read"]})),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.call(
            "POST",
            "/v1/runs",
            Some(&viewer),
            Some(json!({"agent_id": "support"}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_monitor_lists_and_counts_blocks() {
    let (app, acme, globex) = App::seeded().await;
    let key = Some(acme.as_str());
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
    for to in ["a@gmail.com", "b@gmail.com", "ann@acme.com", "c@evil.io"] {
        app.call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            Some(json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": to}})),
        )
        .await;
    }
    let r = app
        .call(
            "GET",
            &format!("/v1/violations?policy_id={id}&limit=2"),
            key,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let first = &r.body["items"][0];
    for field in [
        "id",
        "at",
        "decision",
        "policy_id",
        "policy_name",
        "policy_version",
        "lineage_id",
        "rule_id",
        "rule_type",
        "tenant_id",
        "agent_id",
        "run_id",
        "action_id",
        "matching_input",
        "message",
    ] {
        assert!(first.get(field).is_some(), "{field} missing from {first}");
    }
    assert_eq!(first["action"]["kind"], "tool_call");
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "GET",
            &format!("/v1/violations?policy_id={id}&limit=2&cursor={cursor}"),
            key,
            None,
        )
        .await;
    assert_eq!(
        (
            r.body["items"].as_array().unwrap().len(),
            r.body["next_cursor"].clone()
        ),
        (1, json!(null))
    );
    let r = app
        .call("GET", "/v1/violations/stats?bucket=1h", key, None)
        .await;
    assert_eq!(r.body["buckets"][0]["count"], 3, "{:?}", r.body);
    // Another tenant sees none of it; bad filters are refused by name.
    let r = app
        .call(
            "GET",
            &format!("/v1/violations?run_id={run}"),
            Some(&globex),
            None,
        )
        .await;
    assert!(r.body["items"].as_array().unwrap().is_empty());
    let r = app
        .call("GET", "/v1/violations?rule_type=nope", key, None)
        .await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["path"].clone()),
        (StatusCode::BAD_REQUEST, json!("query.rule_type"))
    );
    // Decisions filter too: these are all blocks.
    let r = app
        .call("GET", "/v1/violations?decision=halt", key, None)
        .await;
    assert!(r.body["items"].as_array().unwrap().is_empty());
    let r = app
        .call("GET", "/v1/violations?decision=block", key, None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    let r = app
        .call("GET", "/v1/violations?decision=allow", key, None)
        .await;
    assert_eq!(r.body["error"]["details"]["path"], "query.decision");
    let r = app
        .call("GET", "/v1/violations/stats?bucket=0m", key, None)
        .await;
    assert_eq!(r.body["error"]["details"]["path"], "query.bucket");
}

#[tokio::test]
async fn validate_replays_history_and_unlocks_activation() {
    use charter_core::engine::Outcome;
    use charter_store::{ImportedAction, ImportedRun, RunStatus};
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    // Recorded history from before Charter: 3 runs of support, 2 external emails (one already
    // refused by the source system), and one run of billing that the agent policy ignores.
    let at = |s: i64| jiff::Timestamp::from_second(1_795_000_000 - 86_400 + s).unwrap();
    let email = |to: &str| {
        charter_core::Action::parse(
            &json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": to}}),
        )
        .unwrap()
    };
    let run = |agent: &str, start: i64, actions: Vec<(i64, &str, Option<Outcome>)>| ImportedRun {
        tenant_id: "acme".into(),
        agent_id: agent.into(),
        started_at: at(start),
        ended_at: None,
        status: RunStatus::Completed,
        metadata: json!({}),
        actions: actions
            .into_iter()
            .map(|(s, to, d)| ImportedAction {
                at: at(s),
                action: email(to),
                decision: d,
            })
            .collect(),
    };
    let history = [
        run(
            "support",
            0,
            vec![(1, "ann@acme.com", None), (2, "bob@gmail.com", None)],
        ),
        run(
            "support",
            10,
            vec![(11, "eve@evil.io", Some(Outcome::Block))],
        ),
        run(
            "support",
            20,
            vec![(21, "joe@acme.com", Some(Outcome::Allow))],
        ),
        run("billing", 30, vec![(31, "x@gmail.com", None)]),
    ];
    let principal = Principal::Tenant(charter_core::TenantId::new("acme").unwrap());
    app.store
        .import_runs(&principal, &mut history.iter())
        .await
        .unwrap();
    let id = app
        .call("POST", "/v1/policies", key, Some(policy_body("Guard")))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/validate"),
            key,
            Some(json!({"lookback": "2d"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let report = &r.body;
    assert_eq!(
        (
            report["runs_scanned"].clone(),
            report["actions_scanned"].clone()
        ),
        (json!(3), json!(4))
    );
    assert_eq!(
        (
            report["actions_blocked"].clone(),
            report["runs_blocked"].clone()
        ),
        (json!(2), json!(2))
    );
    assert_eq!(
        (
            report["actions_new"].clone(),
            report["actions_already_blocked"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(report["by_rule"][0], json!({"rule_id": "r1", "blocked": 2}));
    assert_eq!(report["samples"][0]["matching_input"], "bob@gmail.com");
    assert_eq!(report["revision"], 1);
    // The validation of the current revision unlocks activation without force...
    let shown = app
        .call("GET", &format!("/v1/policies/{id}"), key, None)
        .await;
    assert_eq!(shown.body["last_validation"]["revision"], 1);
    // ...until the draft changes.
    app.call(
        "PUT",
        &format!("/v1/policies/{id}"),
        key,
        Some(json!({"description": "edited"})),
    )
    .await;
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(error_code(&r), "validation_required");
    app.call(
        "POST",
        &format!("/v1/policies/{id}/validate"),
        key,
        Some(json!({})),
    )
    .await;
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (StatusCode::OK, json!("active")),
        "{:?}",
        r.body
    );
    // Bad ranges name their field.
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/validate"),
            key,
            Some(json!({"lookback": "2d", "since": "2026-11-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.body["error"]["details"]["path"], "lookback");
}

#[tokio::test]
async fn recorded_runs_are_imported_whole_or_not_at_all() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let run = |to: &str| {
        json!({"agent_id": "support", "started_at": "2026-11-20T09:00:00Z", "status": "completed",
        "actions": [{"at": "2026-11-20T09:00:03Z", "kind": "tool_call", "tool": "gmail.send_email", "args": {"to": to}, "cost_usd": "0.02", "decision": "allow"}]})
    };
    let r = app
        .call(
            "POST",
            "/v1/runs/import",
            key,
            Some(json!({"runs": [run("a@acme.com"), run("b@gmail.com")]})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::CREATED, json!({"runs": 2, "actions": 2}))
    );
    let ndjson = format!(
        "{}\n{}\n",
        run("c@acme.com"),
        json!({"agent_id": "support", "started_at": "2026-11-20T09:00:00Z", "actions": [{"kind": "tool_call", "tool": "x"}]})
    );
    let r = app
        .raw(
            "POST",
            "/v1/runs/import",
            key,
            Some(&ndjson),
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["path"].clone()),
        (StatusCode::BAD_REQUEST, json!("line 2.actions[0].at")),
        "{:?}",
        r.body
    );
    let r = app
        .raw(
            "POST",
            "/v1/runs/import",
            key,
            Some(&format!("{}\n", run("d@acme.com"))),
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(r.body, json!({"runs": 1, "actions": 1}));
    let listed = app.call("GET", "/v1/runs", key, None).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        3,
        "the bad NDJSON import added nothing"
    );
    let r = app
        .call(
            "POST",
            "/v1/runs/import",
            key,
            Some(json!({"runs": [{"agent_id": "ghost", "started_at": "2026-11-20T09:00:00Z"}]})),
        )
        .await;
    assert_eq!(r.body["error"]["details"]["path"], "runs[0].agent_id");
}

/// Bytes free on the disk of the tests' staging directory.
fn free_bytes() -> u64 {
    let stats = rustix::fs::statvfs(std::env::temp_dir().join("charter-server-tests")).unwrap();
    stats.f_bavail * stats.f_frsize
}

#[tokio::test]
async fn an_ndjson_import_that_would_crowd_the_disk_is_refused_and_changes_nothing() {
    let line = |i: usize| {
        json!({"agent_id": "support", "started_at": "2026-11-20T09:00:00Z",
               "ended_at": "2026-11-20T09:05:00Z", "status": "completed",
               "metadata": {"filler": "x".repeat(4000), "i": i},
               "actions": [{"at": "2026-11-20T09:00:03Z", "kind": "tool_call", "tool": "kb.search",
                            "args": {"query": "refunds"}}]})
        .to_string()
    };
    // 16 MiB of runs, each line well within the body limit.
    let body: String = (0..4000).map(|i| line(i) + "\n").collect();
    let ndjson = &[("content-type", "application/x-ndjson")];

    // A reserve beyond the disk: refused before anything is staged.
    let (app, acme, _) = App::seeded_with(|state| state.staging_reserve = u64::MAX / 2).await;
    let r = app
        .raw("POST", "/v1/runs/import", Some(&acme), Some(&body), ndjson)
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("too_large")),
        "{:?}",
        r.body
    );
    assert_eq!(
        r.body["error"]["details"]["reserve_bytes"],
        json!(u64::MAX / 2)
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not fit on the server's disk"),
        "{:?}",
        r.body
    );

    // A reserve 4 MiB under what is free now: the first megabytes are staged, then the
    // import is refused (what it staged counts twice: on the disk, and as room for the
    // database to write it), and nothing of it is imported.
    let (app, acme, _) =
        App::seeded_with(|state| state.staging_reserve = free_bytes() - (4 << 20)).await;
    let r = app
        .raw("POST", "/v1/runs/import", Some(&acme), Some(&body), ndjson)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let staged = r.body["error"]["message"].as_str().unwrap();
    assert!(
        !staged.contains(" 0 MiB staged"),
        "refused before staging: {staged}"
    );
    let listed = app.call("GET", "/v1/runs", Some(&acme), None).await;
    assert_eq!(
        listed.body["items"],
        json!([]),
        "a refused import added runs"
    );

    // The same body on the default reserve goes in whole.
    let (app, acme, _) = App::seeded().await;
    let r = app
        .raw("POST", "/v1/runs/import", Some(&acme), Some(&body), ndjson)
        .await;
    assert_eq!(r.body, json!({"runs": 4000, "actions": 4000}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_never_pass_a_cap_or_a_rate_limit() {
    let (app, acme, _) = App::seeded().await;
    let key = acme.clone();
    let body = json!({"name": "Limits", "scope": {"type": "tenant", "tenant_id": "acme"}, "rules": [
        {"id": "cap", "type": "cost", "max_usd": "10.00", "period": "day", "per": "tenant"},
        {"id": "rate", "type": "rate", "limit": 5, "window": "1m", "per": "agent", "match": {"tools": ["kb.search"]}}]});
    let id = app
        .call("POST", "/v1/policies", Some(&key), Some(body))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        "POST",
        &format!("/v1/policies/{id}/activate"),
        Some(&key),
        Some(json!({"force": true})),
    )
    .await;
    let app = std::sync::Arc::new(app);
    // 64 clients, each in its own run, spending 1.00 against a 10.00 tenant cap.
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (app, key) = (app.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let run = app
                .call(
                    "POST",
                    "/v1/runs",
                    Some(&key),
                    Some(json!({"agent_id": "billing"})),
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
                    Some(&key),
                    Some(json!({"kind": "model_call", "model": "m", "cost_usd": "1.00"})),
                )
                .await;
            r.body["decision"].as_str().unwrap().to_owned()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() == "allow" {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
    // 32 concurrent searches by one agent against 5 per minute.
    let run = app
        .call(
            "POST",
            "/v1/runs",
            Some(&key),
            Some(json!({"agent_id": "support"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (app, key, run) = (app.clone(), key.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let r = app
                .call(
                    "POST",
                    &format!("/v1/runs/{run}/check"),
                    Some(&key),
                    Some(json!({"kind": "tool_call", "tool": "kb.search"})),
                )
                .await;
            r.body["decision"].as_str().unwrap().to_owned()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() == "allow" {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    let metrics = app.raw("GET", "/metrics", None, None, &[]).await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("charter_decisions_total{decision=\"allow\"} 15"),
        "{text}"
    );
    assert!(
        text.contains("charter_actions_committed_total 96"),
        "{text}"
    );
}

#[tokio::test]
async fn the_stream_tails_new_violations_with_the_same_filters() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let (app, acme, globex) = App::seeded().await;
    let key = Some(acme.as_str());
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
    let open = |k: &str, q: &str| {
        Request::builder()
            .uri(format!("/v1/violations/stream{q}"))
            .header("authorization", format!("Bearer {k}"))
            .body(Body::empty())
            .unwrap()
    };
    let response = app
        .router
        .clone()
        .oneshot(open(&acme, &format!("?policy_id={id}")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut acme_stream = response.into_body();
    let mut globex_stream = app
        .router
        .clone()
        .oneshot(open(&globex, ""))
        .await
        .unwrap()
        .into_body();
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
    let r = app.call("POST", &format!("/v1/runs/{run}/check"), key, Some(json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@gmail.com"}}))).await;
    assert_eq!(r.body["decision"], "block");
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), acme_stream.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: violation\n"), "{text}");
    assert!(text.contains("\nid: vio_"), "{text}");
    let data: serde_json::Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(
        (
            data["rule_id"].clone(),
            data["run_id"].clone(),
            data["matching_input"].clone()
        ),
        (json!("r1"), json!(run), json!("bob@gmail.com"))
    );
    // The same event, by id, in the Monitor's list.
    let listed = app
        .call("GET", &format!("/v1/violations?run_id={run}"), key, None)
        .await;
    let id_line = text.lines().find_map(|l| l.strip_prefix("id: ")).unwrap();
    assert_eq!(listed.body["items"][0]["id"], json!(id_line));
    // Another tenant's stream stays silent.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), globex_stream.frame())
            .await
            .is_err()
    );
}

/// Starts a run of `agent` and checks `action` in it.
async fn check_once(
    app: &App,
    key: &str,
    agent: &str,
    action: serde_json::Value,
) -> serde_json::Value {
    let run = app
        .call(
            "POST",
            "/v1/runs",
            Some(key),
            Some(json!({"agent_id": agent})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        "POST",
        &format!("/v1/runs/{run}/check"),
        Some(key),
        Some(action),
    )
    .await
    .body
}

#[tokio::test]
async fn precedence_windows_and_masking_through_the_api() {
    let (app, acme, _) = App::seeded().await;
    let admin = app.admin.clone();
    let activate = |key: String, body: serde_json::Value| {
        let app = &app;
        async move {
            let r = app
                .call("POST", "/v1/policies", Some(&key), Some(body))
                .await;
            let id = r.body["id"].as_str().unwrap().to_owned();
            let r = app
                .call(
                    "POST",
                    &format!("/v1/policies/{id}/activate"),
                    Some(&key),
                    Some(json!({"force": true})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    };
    // Platform denies shell; an agent allow-list cannot lift it; both are reported.
    activate(
        admin.clone(),
        json!({"name": "no shell", "scope": {"type": "platform"},
        "rules": [{"id": "no-shell", "type": "tool", "effect": "deny", "tools": ["shell.**"]}]}),
    )
    .await;
    activate(acme.clone(), json!({"name": "support tools", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
        "rules": [{"id": "allow-list", "type": "tool", "effect": "allow", "tools": ["shell.exec", "kb.search"]}]})).await;
    let d = check_once(
        &app,
        &acme,
        "support",
        json!({"kind": "tool_call", "tool": "shell.exec"}),
    )
    .await;
    assert_eq!(d["decision"], "block");
    let rules: Vec<&str> = d["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["no-shell"],
        "the allow-list only fails to deny; the platform deny stands"
    );
    // The lowest cap wins: tenant 5.00, agent 2.00.
    activate(
        acme.clone(),
        json!({"name": "tenant cap", "scope": {"type": "tenant", "tenant_id": "acme"},
        "rules": [{"id": "tenant-cap", "type": "cost", "max_usd": "5.00", "period": "run"}]}),
    )
    .await;
    activate(acme.clone(), json!({"name": "agent cap", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "billing"},
        "rules": [{"id": "agent-cap", "type": "cost", "max_usd": "2.00", "period": "run"}]})).await;
    let d = check_once(
        &app,
        &acme,
        "billing",
        json!({"kind": "model_call", "model": "m", "cost_usd": "3.00"}),
    )
    .await;
    assert_eq!(
        (d["decision"].clone(), d["violations"][0]["rule_id"].clone()),
        (json!("halt"), json!("agent-cap"))
    );
    // A time window in the tenant's zone: the test clock reads Wednesday 2026-11-18 11:06:40 UTC,
    // 06:06 in New York, before a 09:00-17:00 window.
    activate(acme.clone(), json!({"name": "office hours", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "billing"},
        "rules": [{"id": "hours", "type": "time", "timezone": "America/New_York",
                   "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}]}]})).await;
    let d = check_once(
        &app,
        &acme,
        "billing",
        json!({"kind": "model_call", "model": "m"}),
    )
    .await;
    assert_eq!(d["decision"], "block");
    assert_eq!(
        d["violations"][0]["matching_input"],
        "Wed 06:06 America/New_York"
    );
    // Output PII: the matching input is masked, here and in the Monitor.
    activate(
        acme.clone(),
        json!({"name": "no cards", "scope": {"type": "tenant", "tenant_id": "acme"},
        "rules": [{"id": "pii", "type": "output", "pii": ["credit_card"]}]}),
    )
    .await;
    let d = check_once(
        &app,
        &acme,
        "support",
        json!({"kind": "output", "text": "your card 4111 1111 1111 1111 is fine"}),
    )
    .await;
    assert_eq!(d["violations"][0]["matching_input"], "4111 **** **** 1111");
    let listed = app
        .call("GET", "/v1/violations?rule_type=output", Some(&acme), None)
        .await;
    assert_eq!(
        listed.body["items"][0]["matching_input"],
        "4111 **** **** 1111"
    );
    assert!(!listed.body.to_string().contains("4111 1111 1111 1111"));
}
