//! Validate over 1,000,000 recorded actions (10,000 runs of 100 actions, a week of a busy
//! agent) on SQLite, through the HTTP handler in process: the time of one validation and the
//! process's peak memory before and after it. Run: `cargo bench -p charter-server --bench validate`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    reason = "a benchmark binary: it prints figures and fails loudly; its counts are small"
)]

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use charter_core::{Action, AgentId, Outcome, TenantId};
use charter_store::{
    Actor, Change, ImportedAction, ImportedRun, KeyScope, Principal, RunStatus, SqliteStore, Store,
    Sync,
};
use http_body_util::BodyExt as _;
use jiff::Timestamp;
use serde_json::json;
use tower::ServiceExt as _;

const RUNS: usize = 10_000;
const PER_RUN: usize = 100;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = std::env::temp_dir().join(format!("charter-validate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("bench.db"), Sync::Normal)
        .await
        .unwrap();
    let now = Timestamp::now();
    let admin = Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "bench".into(),
            name: "bench".into(),
        },
        at: now,
    };
    let acme = TenantId::new("acme").unwrap();
    store.create_tenant(&admin, &acme, "acme").await.unwrap();
    store
        .create_agent(
            &admin,
            &acme,
            &AgentId::new("support").unwrap(),
            "support",
            None,
        )
        .await
        .unwrap();
    let key = charter_store::new_key_secret();
    store
        .create_key(
            &admin,
            "bench",
            None,
            &[KeyScope::Read, KeyScope::Write],
            &key,
        )
        .await
        .unwrap();

    let tools = [
        "gmail.send_email",
        "kb.search",
        "crm.lookup",
        "outlook.send_email",
    ];
    let people = [
        "ann@acme.com",
        "bob@gmail.com",
        "joe@acme.com",
        "eve@evil.io",
    ];
    let start = Instant::now();
    let week_ms = 7 * 86_400_000i64;
    for chunk in 0..(RUNS / 500) {
        let runs: Vec<ImportedRun> = (0..500)
            .map(|r| {
                let n = chunk * 500 + r;
                let begin = now.as_millisecond() - week_ms + (n as i64) * (week_ms / RUNS as i64);
                ImportedRun {
                    tenant_id: "acme".into(),
                    agent_id: "support".into(),
                    started_at: Timestamp::from_millisecond(begin).unwrap(),
                    ended_at: None,
                    status: RunStatus::Completed,
                    metadata: json!({}),
                    actions: (0..PER_RUN)
                        .map(|i| ImportedAction {
                            at: Timestamp::from_millisecond(begin + (i as i64 + 1) * 100).unwrap(),
                            action: Action::parse(
                                &json!({"kind": "tool_call", "tool": tools[(n + i) % 4],
                                "args": {"to": people[(n * 7 + i) % 4]}, "cost_usd": "0.01"}),
                            )
                            .unwrap(),
                            decision: Some(Outcome::Allow),
                        })
                        .collect(),
                }
            })
            .collect();
        store
            .import_runs(&Principal::Platform, &runs)
            .await
            .unwrap();
    }
    let imported = start.elapsed();
    let definition = charter_core::PolicyDefinition::parse(&json!({"name": "guard",
        "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
        "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
                  {"id": "rate", "type": "rate", "limit": 50, "window": "1m", "per": "agent"},
                  {"id": "cap", "type": "cost", "max_usd": "0.50", "period": "run"}]}))
    .unwrap();
    let policy = store
        .create_policy(&admin, definition, false)
        .await
        .unwrap();
    let router = charter_server::router(charter_server::AppState::new(store.clone()));
    let before = peak_rss_mib();
    let started = Instant::now();
    let response = router
        .oneshot(
            Request::builder()
                .method("POST")
                .uri(format!("/v1/policies/{}/validate", policy.policy.id))
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from(r#"{"lookback": "8d"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let took = started.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, 200, "{report}");
    println!(
        "imported {} actions in {:.1} s",
        RUNS * PER_RUN,
        imported.as_secs_f64()
    );
    println!(
        "validate: {} actions of {} runs in {:.2} s ({:.0} actions/s); blocked {}, halted {}",
        report["actions_scanned"],
        report["runs_scanned"],
        took.as_secs_f64(),
        report["actions_scanned"].as_f64().unwrap_or(0.0) / took.as_secs_f64(),
        report["actions_blocked"],
        report["actions_halted"]
    );
    println!(
        "peak RSS: {before:.0} MiB before validate, {:.0} MiB after",
        peak_rss_mib()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
