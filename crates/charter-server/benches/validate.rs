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

/// The allocator of the `charter` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The baseline: the same rows read in the same keyset pages straight from SQLite (rusqlite,
/// as the store reads them), each column decoded, with no parsing and no replay. Returns the
/// rows read and the seconds it took.
fn plain_select(path: &std::path::Path, since_ms: i64) -> (u64, f64) {
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let started = Instant::now();
    let mut after = (since_ms, String::new(), String::new());
    let mut rows_read = 0u64;
    loop {
        let mut statement = connection
            .prepare_cached(
                "SELECT a.id, a.run_id, a.tenant_id, a.agent_id, a.at, a.input, a.decision, r.started_at \
                 FROM actions a JOIN runs r ON r.id = a.run_id \
                 WHERE a.tenant_id = ?1 AND a.agent_id = ?2 AND (a.at, a.run_id, a.id) > (?3, ?4, ?5) \
                 ORDER BY a.at, a.run_id, a.id LIMIT 2000",
            )
            .unwrap();
        let mut rows = statement
            .query(rusqlite::params![
                "acme", "support", after.0, after.1, after.2
            ])
            .unwrap();
        let mut last = None;
        while let Some(row) = rows.next().unwrap() {
            let decoded = (
                row.get::<_, String>(0).unwrap(),
                row.get::<_, String>(1).unwrap(),
                row.get::<_, String>(2).unwrap(),
                row.get::<_, String>(3).unwrap(),
                row.get::<_, i64>(4).unwrap(),
                row.get::<_, Option<String>>(5).unwrap(),
                row.get::<_, Option<String>>(6).unwrap(),
                row.get::<_, i64>(7).unwrap(),
            );
            rows_read += 1;
            last = Some((decoded.4, decoded.1.clone(), decoded.0.clone()));
            std::hint::black_box(decoded);
        }
        match last {
            Some(key) => after = key,
            None => break,
        }
    }
    (rows_read, started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `CHARTER_BENCH_DB=path` keeps the database there and reuses it on the next run (the
    // import takes most of the time).
    let kept = std::env::var_os("CHARTER_BENCH_DB").map(std::path::PathBuf::from);
    let dir = std::env::temp_dir().join(format!("charter-validate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = kept.clone().unwrap_or_else(|| dir.join("bench.db"));
    let reuse = path.exists();
    let store = SqliteStore::open(&path, Sync::Normal).await.unwrap();
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
    if !reuse {
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
    }
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
        if reuse {
            break;
        }
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
            .import_runs(&Principal::Platform, &mut runs.into_iter())
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
    let since = now.as_millisecond() - 8 * 86_400_000;
    let (rows, plain) = plain_select(&path, since);
    println!(
        "baseline, a plain SELECT of the same rows in the same pages: {rows} rows in {plain:.2} s; \
         validate / baseline = {:.2}",
        took.as_secs_f64() / plain
    );
    let _ = std::fs::remove_dir_all(&dir);
}
