//! `GET /metrics`: bounded labels, the exposition formats and their content types, the process
//! and build metrics, violations per policy and rule type.

use axum::http::StatusCode;
use serde_json::json;

use crate::app::{App, policy_body};

async fn scrape(app: &App, accept: Option<&str>) -> (String, String) {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let r = app.raw("GET", "/metrics", None, None, &headers).await;
    assert_eq!(r.status, StatusCode::OK);
    let content_type = r.header("content-type").to_owned();
    (r.body.as_str().unwrap().to_owned(), content_type)
}

#[tokio::test]
async fn made_up_methods_and_paths_add_no_series() {
    let (app, acme, _) = App::seeded().await;
    for method in ["FOO", "BAR", "PROPFIND"] {
        let r = app
            .raw(method, "/v1/policies", Some(&acme), None, &[])
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    for path in ["/nowhere", "/v1/nowhere/else", "/v1/policies/pol_a/b/c"] {
        let r = app.raw("GET", path, Some(&acme), None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let (text, _) = scrape(&app, None).await;
    assert!(
        text.contains(
            r#"charter_http_requests_total{method="other",route="/v1/policies",status="405"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"charter_http_requests_total{method="GET",route="unmatched",status="404"} 3"#
        ),
        "{text}"
    );
    for made_up in ["FOO", "BAR", "PROPFIND", "nowhere", "pol_a"] {
        assert!(!text.contains(made_up), "{made_up} became a label: {text}");
    }
}

#[tokio::test]
async fn both_formats_with_their_content_types() {
    let app = App::new().await;
    let (text, content_type) = scrape(&app, None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        text.contains("# TYPE charter_decisions_total counter\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let (text, content_type) = scrape(&app, Some("*/*")).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "{text}");

    // What Prometheus sends.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (text, content_type) = scrape(&app, Some(accept)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE charter_decisions counter\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE charter_build info\n"), "{text}");
    assert!(
        text.contains(r#"charter_decisions_total{decision="allow"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn process_and_build_metrics_are_shown() {
    let app = App::new().await;
    let (text, _) = scrape(&app, None).await;
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!("charter_build_info{{version=\"{version}\"}} 1\n")),
        "{text}"
    );
    // The names every Prometheus client gives them; only Linux has /proc.
    if cfg!(target_os = "linux") {
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing: {text}"));
            let value: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
            assert!(value > 0.0 || name == "process_cpu_seconds_total", "{line}");
        }
    }
    // What scripts/bench-checks reads.
    for name in [
        "charter_action_commits_total 0\n",
        "charter_actions_committed_total 0\n",
        "charter_check_duration_seconds_bucket{le=\"0.005\"} 0\n",
        "charter_check_duration_seconds_bucket{le=\"0.025\"} 0\n",
        "charter_check_duration_seconds_bucket{le=\"+Inf\"} 0\n",
    ] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
}

#[tokio::test]
async fn blocks_are_counted_per_policy_and_rule_type() {
    let (app, acme, _) = App::seeded().await;
    let key = Some(acme.as_str());
    let mut body = policy_body("Guard");
    body["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "cap", "type": "cost", "max_usd": "1.00", "period": "run"}));
    let r = app.call("POST", "/v1/policies", key, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "POST",
            &format!("/v1/policies/{id}/activate"),
            key,
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
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
    let external =
        json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "bob@gmail.com"}});
    for _ in 0..2 {
        let r = app
            .call(
                "POST",
                &format!("/v1/runs/{run}/check"),
                key,
                Some(external.clone()),
            )
            .await;
        assert_eq!(r.body["decision"], "block", "{:?}", r.body);
    }
    let r = app
        .call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            Some(json!({"kind": "model_call", "model": "m", "cost_usd": "2.00"})),
        )
        .await;
    assert_eq!(r.body["decision"], "halt", "{:?}", r.body);
    let (text, _) = scrape(&app, None).await;
    for line in [
        format!(
            r#"charter_violations_total{{policy_id="{id}",rule_type="tool",decision="block"}} 2"#
        ),
        format!(
            r#"charter_violations_total{{policy_id="{id}",rule_type="cost",decision="halt"}} 1"#
        ),
        r#"charter_decisions_total{decision="block"} 2"#.to_owned(),
        r#"charter_decisions_total{decision="halt"} 1"#.to_owned(),
    ] {
        assert!(text.contains(&line), "{line} missing: {text}");
    }
}
