//! What a pruning pass costs: 30 days of recorded history written straight into the tables
//! (10,000,000 actions on PostgreSQL, `RETENTION_ACTIONS` to change; 1,000,000 on a SQLite
//! file, `RETENTION_SQLITE_ACTIONS`), in ended runs of 10 actions spread over 100 agents of one
//! tenant; then one pass keeping 15 days (`Store::prune`), which removes half. Meanwhile one
//! client checks a running run of another agent, one check after another through the group
//! commit: its checks per second during the pass against the same client's for the seconds
//! before it, in the same process. Run: `cargo bench -p charter-store --bench retention`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark binary: it prints figures and fails loudly; its counts are small"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use charter_core::engine::{CompiledSet, RunContext};
use charter_core::{Action, AgentId, TenantId};
use charter_store::{ActionWriter, Actor, Change, PendingCheck, Principal, Retention, Store, Sync};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// 2026-11-01T00:00:00Z: the history's start; the pass runs 30 days later.
const START_MS: i64 = 1_793_491_200_000;
const DAYS: i64 = 30;
const ACTIONS_PER_RUN: i64 = 10;
const AGENTS: i64 = 100;

fn platform(at: Timestamp) -> Change {
    Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "bench".into(),
            name: "bench".into(),
        },
        at,
    }
}

/// The history: run `r` of agent `a{r % 100}` starts at an even spacing over the 30 days, its
/// 10 actions a second apart, and ends with its last.
fn history_sql(postgres: bool, actions: i64) -> [String; 2] {
    let runs = actions / ACTIONS_PER_RUN;
    let gap = DAYS * 86_400_000 / runs;
    let series = |n: i64| {
        if postgres {
            format!("generate_series(0::bigint, {}) AS n(i)", n - 1)
        } else {
            format!(
                "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) \
                 SELECT i FROM s) AS n",
                n - 1
            )
        }
    };
    let text = |prefix: &str, of: &str, width: u8| {
        if postgres {
            format!("'{prefix}' || lpad(({of})::text, {width}, '0')")
        } else {
            format!("printf('{prefix}%0{width}d', {of})")
        }
    };
    let run_agent = text("a", &format!("i % {AGENTS}"), 2);
    let action_agent = text("a", &format!("(i / {ACTIONS_PER_RUN}) % {AGENTS}"), 2);
    [
        format!(
            "INSERT INTO runs (id, tenant_id, agent_id, started_at, ended_at, status, metadata, \
             policy_set_hash, policy_set, imported) \
             SELECT {}, 'acme', {run_agent}, {START_MS} + i * {gap}, \
             {START_MS} + i * {gap} + {}, 'completed', '{{}}', 'h', \
             '{{\"hash\":\"h\",\"policies\":[]}}', 1 FROM {}",
            text("run_h", "i", 8),
            (ACTIONS_PER_RUN - 1) * 1000,
            series(runs)
        ),
        format!(
            "INSERT INTO actions (id, run_id, tenant_id, agent_id, at, kind, input, decision, \
             policy_set_hash) \
             SELECT {}, {}, 'acme', {action_agent}, \
             {START_MS} + (i / {ACTIONS_PER_RUN}) * {gap} + (i % {ACTIONS_PER_RUN}) * 1000, \
             'tool_call', '{{\"kind\":\"tool_call\",\"tool\":\"web.search\",\"args\":{{\"q\":\"refunds ' || i || '\"}}}}', \
             'allow', 'h' FROM {}",
            text("evt_h", "i", 9),
            text("run_h", &format!("i / {ACTIONS_PER_RUN}"), 8),
            series(actions)
        ),
    ]
}

/// Checks through `writer`, one after another, until `stop`; returns how many.
async fn load(
    writer: ActionWriter,
    run: charter_store::Run,
    set: Arc<CompiledSet>,
    stop: Arc<AtomicBool>,
) -> (u64, Duration) {
    let action = Action::parse(&json!({"kind": "tool_call", "tool": "web.search"})).unwrap();
    let (mut n, mut slowest) = (0, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let at = Timestamp::now();
        let ctx = RunContext {
            tenant_id: &run.tenant_id,
            agent_id: &run.agent_id,
            run_id: &run.id,
            run_started_at: run.started_at,
            now: at,
        };
        let started = Instant::now();
        writer
            .check(PendingCheck {
                id: format!("evt_{}", charter_store::new_id_suffix()),
                run_id: run.id.clone(),
                tenant_id: run.tenant_id.clone(),
                agent_id: run.agent_id.clone(),
                at,
                evaluation: set.evaluate(&action, &ctx),
                action: action.clone(),
                policy_set_hash: run.policy_set.hash.clone(),
                set: Arc::clone(&set),
            })
            .await
            .unwrap();
        slowest = slowest.max(started.elapsed());
        n += 1;
    }
    (n, slowest)
}

async fn measure(name: &str, store: Store, postgres: bool, actions: i64) {
    let start = Timestamp::from_millisecond(START_MS).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    store
        .create_tenant(&platform(start), &tenant, "acme")
        .await
        .unwrap();
    store
        .create_agent(
            &platform(start),
            &tenant,
            &AgentId::new("live").unwrap(),
            "live",
            None,
        )
        .await
        .unwrap();
    let written = Instant::now();
    for sql in history_sql(postgres, actions) {
        store.execute_raw(&sql).await.unwrap();
    }
    if postgres {
        // The writes of the history are flushed before anything is timed.
        store.execute_raw("ANALYZE").await.unwrap();
        store.execute_raw("CHECKPOINT").await.unwrap();
    }
    let written = written.elapsed();
    let now = Timestamp::from_millisecond(START_MS + DAYS * 86_400_000).unwrap();
    let retention = Retention {
        actions: Some(SignedDuration::from_hours(15 * 24)),
        ..Retention::default()
    };

    let writer = ActionWriter::spawn(store.clone(), 64);
    let (run, policies) = store
        .start_run(
            &Principal::Platform,
            "acme",
            "live",
            &json!({}),
            Timestamp::now(),
        )
        .await
        .unwrap();
    let set = Arc::new(CompiledSet::compile(&policies).unwrap());
    let spawn_load = || {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(load(
            writer.clone(),
            run.clone(),
            Arc::clone(&set),
            Arc::clone(&stop),
        ));
        (stop, task)
    };
    let alone = Duration::from_secs(10);
    let (stop, task) = spawn_load();
    tokio::time::sleep(alone).await;
    stop.store(true, Ordering::Relaxed);
    let (before, slowest_before) = task.await.unwrap();

    let (stop, task) = spawn_load();
    let pass = Instant::now();
    let pruned = store.prune(&retention, now).await.unwrap().pruned;
    let pass = pass.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (during, slowest_during) = task.await.unwrap();
    let (rate_before, rate_during) = (
        before as f64 / alone.as_secs_f64(),
        during as f64 / pass.as_secs_f64(),
    );
    println!(
        "| {name} | {actions} | {:.0} s | {} runs, {} actions | {:.1} s | {:.0} | {:.0} | {:.2} | {:.0} ms | {:.0} ms |",
        written.as_secs_f64(),
        pruned.runs,
        pruned.actions,
        pass.as_secs_f64(),
        rate_before,
        rate_during,
        rate_during / rate_before,
        slowest_before.as_secs_f64() * 1e3,
        slowest_during.as_secs_f64() * 1e3,
    );
    let again = Instant::now();
    let nothing = store.prune(&retention, now).await.unwrap().pruned;
    println!(
        "(a second pass right after: {} runs in {:.0} ms)",
        nothing.runs,
        again.elapsed().as_secs_f64() * 1e3
    );
}

fn count(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "30 days of history in ended runs of 10 actions over 100 agents; one pass keeping 15 days removes half, while one client checks a running run one check after another.\n"
    );
    println!(
        "| backend | recorded actions | history written in | removed | pass | checks/s before | checks/s during | during / before | slowest check before | slowest check during |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let sqlite_actions = count("RETENTION_SQLITE_ACTIONS", 1_000_000);
    if sqlite_actions > 0 {
        let dir =
            std::env::temp_dir().join(format!("charter-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = Store::open_sqlite(&dir.join("bench.db"), Sync::Normal)
            .await
            .unwrap();
        measure("SQLite (a file)", sqlite.clone(), false, sqlite_actions).await;
        sqlite.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

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
    measure(
        "PostgreSQL 15",
        pg.clone(),
        true,
        count("RETENTION_ACTIONS", 10_000_000),
    )
    .await;
    pg.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}
