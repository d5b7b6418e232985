//! Durable action appends per second: one commit per action vs the group-commit writer, on
//! SQLite (WAL, `synchronous=NORMAL`, a file) and PostgreSQL (`synchronous_commit=on`), with 64
//! concurrent writers. Run: `cargo bench -p charter-store --bench appends`.
//! PostgreSQL is `CHARTER_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! in a fresh schema dropped afterwards; it is skipped with a message when unreachable.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark binary: it prints figures and fails loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use charter_core::engine::Evaluation;
use charter_core::{Action, TenantId};
use charter_store::{ActionWriter, Actor, Change, PendingCheck, Principal, Store, Sync};
use jiff::Timestamp;
use serde_json::json;

const CLIENTS: usize = 64;
const ACTIONS: usize = 6_400;

/// An allowed check that no rule concerns (the run's status is still read and locked).
fn record(run: &str, i: usize) -> PendingCheck {
    PendingCheck {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        run_id: run.to_owned(),
        tenant_id: "acme".into(),
        agent_id: "support".into(),
        at: Timestamp::now(),
        action: Action::parse(
            &json!({"kind": "tool_call", "tool": "crm.lookup", "args": {"customer": i}}),
        )
        .unwrap(),
        evaluation: Evaluation::default(),
        policy_set_hash: "h".into(),
        set: std::sync::Arc::default(),
    }
}

async fn prepare(store: &Store) -> String {
    let change = Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "key_bench".into(),
            name: "bench".into(),
        },
        at: Timestamp::now(),
    };
    let acme = TenantId::new("acme").unwrap();
    store.create_tenant(&change, &acme, "acme").await.unwrap();
    store
        .create_agent(
            &change,
            &acme,
            &charter_core::AgentId::new("support").unwrap(),
            "support",
            None,
        )
        .await
        .unwrap();
    let (run, _) = store
        .start_run(
            &Principal::Platform,
            "acme",
            "support",
            &json!({}),
            Timestamp::now(),
        )
        .await
        .unwrap();
    run.id
}

/// Appends `ACTIONS` actions from `CLIENTS` tasks; returns the elapsed time.
async fn one_commit_each(store: &Store, run: &str) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let store = store.clone();
        let run = run.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..ACTIONS / CLIENTS {
                store
                    .commit_checks(charter_store::CheckBatch::new(vec![record(
                        &run,
                        c * 1000 + i,
                    )]))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

async fn group_commit(store: &Store, run: &str) -> (Duration, u64) {
    let writer = Arc::new(ActionWriter::spawn(store.clone(), 512));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let writer = Arc::clone(&writer);
        let run = run.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..ACTIONS / CLIENTS {
                writer.check(record(&run, c * 1000 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (start.elapsed(), writer.stats().batches)
}

async fn measure(name: &str, store: Store) {
    let run = prepare(&store).await;
    // Warm-up: connections, statement caches.
    one_commit_each(&store, &run).await;
    let single = one_commit_each(&store, &run).await;
    let (grouped, batches) = group_commit(&store, &run).await;
    let rate = |d: Duration| ACTIONS as f64 / d.as_secs_f64();
    println!(
        "| {name} | {:.0} | {:.0} | {:.1}× | {:.1} |",
        rate(single),
        rate(grouped),
        single.as_secs_f64() / grouped.as_secs_f64(),
        ACTIONS as f64 / batches.max(1) as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "{ACTIONS} durable appends from {CLIENTS} concurrent writers (each acknowledged after its commit).\n"
    );
    println!(
        "| backend | one commit per action (appends/s) | group commit (appends/s) | group / single | actions per commit |"
    );
    println!("|---|---:|---:|---:|---:|");
    let dir = std::env::temp_dir().join(format!("charter-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = Store::open_sqlite(&dir.join("bench.db"), Sync::Normal)
        .await
        .unwrap();
    measure("SQLite (WAL, synchronous=NORMAL)", sqlite.clone()).await;
    sqlite.close().await;
    let full = Store::open_sqlite(&dir.join("bench-full.db"), Sync::Full)
        .await
        .unwrap();
    measure("SQLite (WAL, synchronous=FULL)", full.clone()).await;
    full.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    let url = std::env::var("CHARTER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let Ok(admin) = sqlx::PgPool::connect(&url).await else {
        println!("\nPostgreSQL unreachable at {url}: skipped.");
        return;
    };
    let schema = format!("charter_bench_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let pg = Store::connect_postgres_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    measure("PostgreSQL 15 (synchronous_commit=on)", pg.clone()).await;
    pg.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}
