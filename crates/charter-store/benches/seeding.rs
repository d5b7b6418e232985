//! What seeding a counter from recorded history costs: a month of a busy tenant's actions
//! (1,000,000 by default, `SEEDING_ACTIONS` to change), then a monthly cost cap and an hourly
//! rate limit per tenant activated; the first check of a run pinning them seeds both counters,
//! the later checks find them seeded. Prints the first check's time, the later checks' median
//! and the ratio, and the slowest check of another tenant made meanwhile (one after another,
//! through the same writer), on SQLite (a file) and PostgreSQL (when reachable): once with the
//! seed made before the check joins the group commit (`Store::seed_counters`, as the server
//! does), once with the group commit left to make it (every check behind it waits).
//! Run: `cargo bench -p charter-store --bench seeding`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    reason = "a benchmark binary: it prints figures and fails loudly; its counts are small"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use charter_core::engine::{CompiledSet, Outcome, RunContext};
use charter_core::policy::PolicyDefinition;
use charter_core::{Action, AgentId, TenantId};
use charter_store::{
    ActionWriter, Activation, Actor, Change, CheckOutcome, PendingCheck, Principal, Store, Sync,
};
use jiff::Timestamp;
use serde_json::json;

/// 2026-11-01T00:00:00Z and 2026-11-30T23:00:00Z: the month of history, and the first check.
const MONTH_START_MS: i64 = 1_793_491_200_000;
const CHECK_AT_MS: i64 = 1_796_079_600_000;

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

/// Writes `FROM` a series of `i` from 0 to n - 1.
type Series = fn(i64) -> String;
/// Writes an id of `i` with a prefix and a width.
type Id = fn(&str, u8) -> String;

/// The history, written straight into the tables (an import through the API would take
/// minutes): runs of 100 actions each, spread evenly over the month, a third of them model
/// calls with a cost, a third searches, a third lookups, all allowed.
fn history_sql(postgres: bool, actions: i64) -> [String; 2] {
    let runs = actions / 100;
    let gap = (CHECK_AT_MS - MONTH_START_MS) / actions;
    let (series, id): (Series, Id) = if postgres {
        (
            |n| format!("generate_series(0::bigint, {}) AS n(i)", n - 1),
            |prefix, width| format!("'{prefix}' || lpad(i::text, {width}, '0')"),
        )
    } else {
        (
            |n| {
                format!(
                    "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s \
                     WHERE i < {}) SELECT i FROM s) AS n",
                    n - 1
                )
            },
            |prefix, width| format!("printf('{prefix}%0{width}d', i)"),
        )
    };
    let run_of = if postgres {
        "'run_h' || lpad((i / 100)::text, 6, '0')".to_owned()
    } else {
        "printf('run_h%06d', i / 100)".to_owned()
    };
    let input = "CASE i % 3 \
           WHEN 0 THEN '{\"kind\":\"model_call\",\"model\":\"m\",\"input_tokens\":900,\"output_tokens\":300,\"cost_usd\":\"0.0' || (i % 10) || '\"}' \
           WHEN 1 THEN '{\"kind\":\"tool_call\",\"tool\":\"web.search\",\"args\":{\"q\":\"refund policy for order ' || i || '\"}}' \
           ELSE '{\"kind\":\"tool_call\",\"tool\":\"crm.lookup\",\"args\":{\"customer\":' || i || '}}' END";
    [
        format!(
            "INSERT INTO runs (id, tenant_id, agent_id, started_at, ended_at, status, metadata, \
             policy_set_hash, policy_set, imported) \
             SELECT {}, 'acme', 'support', {MONTH_START_MS} + i * 100 * {gap}, \
             {MONTH_START_MS} + (i * 100 + 99) * {gap}, 'completed', '{{}}', 'h', \
             '{{\"hash\":\"h\",\"policies\":[]}}', 1 FROM {}",
            id("run_h", 6),
            series(runs)
        ),
        format!(
            "INSERT INTO actions (id, run_id, tenant_id, agent_id, at, kind, input, decision, \
             policy_set_hash) \
             SELECT {}, {run_of}, 'acme', 'support', {MONTH_START_MS} + i * {gap}, \
             CASE i % 3 WHEN 0 THEN 'model_call' ELSE 'tool_call' END, {input}, 'allow', 'h' \
             FROM {}",
            id("evt_h", 9),
            series(actions)
        ),
    ]
}

async fn check(
    writer: &ActionWriter,
    seeder: Option<&Store>,
    run: &charter_store::Run,
    set: &Arc<CompiledSet>,
    at: Timestamp,
) -> Duration {
    let action =
        Action::parse(&json!({"kind": "model_call", "model": "m", "cost_usd": "0.01"})).unwrap();
    let ctx = RunContext {
        tenant_id: &run.tenant_id,
        agent_id: &run.agent_id,
        run_id: &run.id,
        run_started_at: run.started_at,
        now: at,
    };
    let started = Instant::now();
    let check = PendingCheck {
        id: format!("evt_{}", charter_store::new_id_suffix()),
        run_id: run.id.clone(),
        tenant_id: run.tenant_id.clone(),
        agent_id: run.agent_id.clone(),
        at,
        evaluation: set.evaluate(&action, &ctx),
        action,
        policy_set_hash: run.policy_set.hash.clone(),
        set: Arc::clone(set),
    };
    if let Some(store) = seeder {
        store.seed_counters(&check).await.unwrap();
    }
    let outcome = writer.check(check).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(outcome, CheckOutcome::Decided { ref decision, .. } if decision.outcome == Outcome::Allow),
        "{outcome:?}"
    );
    elapsed
}

async fn measure(name: &str, store: Store, before: bool, history: [String; 2], actions: i64) {
    let start = Timestamp::from_millisecond(MONTH_START_MS).unwrap();
    for tenant in ["acme", "globex"] {
        let tenant = TenantId::new(tenant).unwrap();
        store
            .create_tenant(&platform(start), &tenant, tenant.as_str())
            .await
            .unwrap();
        store
            .create_agent(
                &platform(start),
                &tenant,
                &AgentId::new("support").unwrap(),
                "support",
                None,
            )
            .await
            .unwrap();
    }
    let written = Instant::now();
    for sql in history {
        store.execute_raw(&sql).await.unwrap();
    }
    let written = written.elapsed();
    let at = Timestamp::from_millisecond(CHECK_AT_MS).unwrap();
    let body = json!({"name": "caps", "scope": {"type": "tenant", "tenant_id": "acme"}, "rules": [
        {"id": "month", "type": "cost", "max_usd": "1000000.00", "period": "month", "per": "tenant"},
        {"id": "hour", "type": "rate", "limit": 100_000_000, "window": "1h", "per": "tenant"}]});
    let draft = store
        .create_policy(
            &platform(at),
            PolicyDefinition::parse(&body).unwrap(),
            false,
        )
        .await
        .unwrap();
    let force = Activation {
        force: true,
        supersede: false,
    };
    store
        .activate(&platform(at), draft.policy.id.as_str(), force, None)
        .await
        .unwrap();
    let writer = ActionWriter::spawn(store.clone(), 64);
    let (run, policies) = store
        .start_run(&Principal::Platform, "acme", "support", &json!({}), at)
        .await
        .unwrap();
    let set = Arc::new(CompiledSet::compile(&policies).unwrap());
    // Another tenant's checks, one after another, while the first check seeds.
    let (other, unbounded) = store
        .start_run(&Principal::Platform, "globex", "support", &json!({}), at)
        .await
        .unwrap();
    let unbounded = Arc::new(CompiledSet::compile(&unbounded).unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let meanwhile = tokio::spawn({
        let (writer, done) = (writer.clone(), Arc::clone(&done));
        async move {
            let mut slowest = Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let took = check(&writer, None, &other, &unbounded, at).await;
                slowest = slowest.max(took);
            }
            slowest
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seeder = before.then_some(&store);
    let first = check(&writer, seeder, &run, &set, at).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let slowest = meanwhile.await.unwrap();
    let mut later = Vec::new();
    for i in 1..=200 {
        let at = Timestamp::from_millisecond(CHECK_AT_MS + i * 10).unwrap();
        later.push(check(&writer, seeder, &run, &set, at).await);
    }
    later.sort_unstable();
    let median = later[later.len() / 2];
    println!(
        "| {name} | {} | {actions} | {:.1} s | {:.1} ms | {:.2} ms | {:.0}× | {:.1} ms |",
        if before {
            "before"
        } else {
            "in the group commit"
        },
        written.as_secs_f64(),
        first.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        first.as_secs_f64() / median.as_secs_f64(),
        slowest.as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let actions: i64 = std::env::var("SEEDING_ACTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "A month of one tenant's history, then a monthly cost cap and an hourly rate limit per tenant activated: the first check seeds both counters.\n"
    );
    println!(
        "| backend | seeded | recorded actions | history written in | first check (seeds) | later checks, median | first / later | another tenant's slowest check meanwhile |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for before in [true, false] {
        let dir =
            std::env::temp_dir().join(format!("charter-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = Store::open_sqlite(&dir.join("bench.db"), Sync::Normal)
            .await
            .unwrap();
        let history = history_sql(false, actions);
        measure("SQLite (a file)", sqlite.clone(), before, history, actions).await;
        sqlite.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    let url = std::env::var("CHARTER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let Ok(admin) = sqlx::PgPool::connect(&url).await else {
        println!("\nPostgreSQL unreachable at {url}: skipped.");
        return;
    };
    for before in [true, false] {
        let schema = format!("charter_bench_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let pg = Store::connect_postgres_with(options.options([("search_path", schema.as_str())]))
            .await
            .unwrap();
        let history = history_sql(true, actions);
        measure("PostgreSQL 15", pg.clone(), before, history, actions).await;
        pg.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
            .unwrap();
    }
}
