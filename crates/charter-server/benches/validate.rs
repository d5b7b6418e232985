//! Validate over 1,000,000 recorded actions (10,000 runs of 100 actions) on SQLite, through the
//! HTTP handler in process: the time of one validation, a plain read of the same rows as its
//! baseline in the same run, and the process's memory around it. Two histories:
//!
//! - `easy`: a week of one busy agent, imported through the store directly; every action a
//!   tool call with one argument, a policy of a conditional deny, a rate and a cost rule.
//! - `realistic`: a week of 20 agents, imported as NDJSON through `POST /v1/runs/import`;
//!   tool calls with nested arguments of a few hundred bytes (emails with to/cc arrays,
//!   searches, CRM lookups), outputs with text (some holding an email address), data accesses;
//!   a tenant policy of an external-email deny, an output PII rule and a rate rule (20
//!   searches per hour per agent), which blocks about 30% of the actions.
//!
//! Run: `cargo bench -p charter-server --bench validate [-- easy|realistic]` (both by default).
//! `CHARTER_BENCH_DB=path` keeps the database there and reuses each history on the next run
//! (the imports take most of the time).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark binary: it prints figures and fails loudly; its counts are small"
)]

use std::path::Path;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use charter_core::{Action, AgentId, Outcome, TenantId};
use charter_store::{
    Actor, Change, ImportedAction, ImportedRun, KeyScope, Principal, RunStatus, Store, Sync,
};
use http_body_util::BodyExt as _;
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The allocator of the `charter` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNS: usize = 10_000;
const PER_RUN: usize = 100;
const WEEK_MS: i64 = 7 * 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A line of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The CPU time the process has used, user and system, in seconds (all its threads: on a
/// shared machine the wall time of a pipeline on several threads says less than its work).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let ticks: f64 = stat.rsplit_once(')').map_or(0.0, |(_, rest)| {
        rest.split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|t| t.parse::<f64>().ok())
            .sum()
    });
    ticks / 100.0
}

/// Resets the process's peak RSS to its current RSS (Linux ≥ 4.0), so the peak read after a
/// validation is the validation's own, not an import's. Returns whether it could.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The baseline: the same rows read in the same keyset pages straight from SQLite (rusqlite,
/// as the store reads them, with the store's query), each column decoded, with no parsing and
/// no replay. Returns the rows read and the seconds it took.
fn plain_select(path: &Path, tenant: &str, agent: Option<&str>, since_ms: i64) -> (u64, f64) {
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let agent_filter = if agent.is_some() {
        "AND a.agent_id = ?5 "
    } else {
        ""
    };
    let sql = format!(
        "SELECT a.id, a.run_id, a.tenant_id, a.agent_id, a.at, a.input, a.decision, r.started_at \
         FROM actions a JOIN runs r ON r.id = a.run_id \
         WHERE a.tenant_id = ?4 {agent_filter}AND (a.at, a.run_id, a.id) > (?1, ?2, ?3) \
         AND r.import_id IS NULL ORDER BY a.at, a.run_id, a.id LIMIT 2000"
    );
    let started = Instant::now();
    let mut after = (since_ms - 1, String::new(), String::new());
    let mut rows_read = 0u64;
    loop {
        let mut statement = connection.prepare_cached(&sql).unwrap();
        let mut rows = match agent {
            Some(agent) => {
                statement.query(rusqlite::params![after.0, after.1, after.2, tenant, agent])
            }
            None => statement.query(rusqlite::params![after.0, after.1, after.2, tenant]),
        }
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

/// The start of the oldest run of a tenant already in the database, if any.
fn oldest_run(path: &Path, tenant: &str) -> Option<i64> {
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    connection
        .query_row(
            "SELECT min(started_at) FROM runs WHERE tenant_id = ?1 AND import_id IS NULL",
            [tenant],
            |row| row.get::<_, Option<i64>>(0),
        )
        .ok()
        .flatten()
}

struct Bench {
    store: Store,
    path: std::path::PathBuf,
    router: Router,
    key: String,
    admin: Change,
}

impl Bench {
    async fn call(&self, method: &str, uri: &str, content_type: &str, body: Body) -> (u16, Value) {
        let response = self
            .router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("authorization", format!("Bearer {}", self.key))
                    .header("content-type", content_type)
                    .body(body)
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn tenant_with_agents(&self, tenant: &str, agents: &[String]) {
        let id = TenantId::new(tenant).unwrap();
        // A kept database may hold the tenant from an import that did not finish.
        let _ = self.store.create_tenant(&self.admin, &id, tenant).await;
        for agent in agents {
            let _ = self
                .store
                .create_agent(&self.admin, &id, &AgentId::new(agent).unwrap(), agent, None)
                .await;
        }
    }

    /// Validates `definition` over everything since `oldest_ms` through the API, then reads
    /// the same rows plainly, and prints the figures.
    async fn validate(&self, definition: Value, tenant: &str, agent: Option<&str>, oldest_ms: i64) {
        let definition = charter_core::PolicyDefinition::parse(&definition).unwrap();
        let policy = self
            .store
            .create_policy(&self.admin, definition, false)
            .await
            .unwrap();
        // A lookback in whole hours that covers the history, however old a kept one is.
        let now = Timestamp::now().as_millisecond();
        let hours = (now - oldest_ms) / HOUR_MS + 2;
        let body = json!({"lookback": format!("{hours}h"), "max_runs": RUNS}).to_string();
        let rss_before = status_mib("VmRSS:");
        let import_peak = status_mib("VmHWM:");
        let reset = reset_peak_rss();
        let cpu = cpu_seconds();
        let started = Instant::now();
        let (status, report) = self
            .call(
                "POST",
                &format!("/v1/policies/{}/validate", policy.policy.id),
                "application/json",
                Body::from(body),
            )
            .await;
        let took = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        let peak = status_mib("VmHWM:");
        assert_eq!(status, 200, "{report}");
        let scanned = report["actions_scanned"].as_f64().unwrap_or(0.0);
        println!(
            "validate: {} actions of {} runs in {took:.2} s ({:.0} actions/s, {:.2} s per \
             million); blocked {} ({:.1}%), halted {}, new {}, already blocked {}",
            report["actions_scanned"],
            report["runs_scanned"],
            scanned / took,
            took / scanned * 1e6,
            report["actions_blocked"],
            report["actions_blocked"].as_f64().unwrap_or(0.0) / scanned * 100.0,
            report["actions_halted"],
            report["actions_new"],
            report["actions_already_blocked"],
        );
        println!(
            "  CPU time of the validation {cpu:.2} s; by rule: {}",
            report["by_rule"]
        );
        if reset {
            println!(
                "  RSS: {rss_before:.0} MiB before validate (peak so far {import_peak:.0} MiB), \
                 peak during validate {peak:.0} MiB (+{:.0})",
                peak - rss_before
            );
        } else {
            println!("  peak RSS: {import_peak:.0} MiB before validate, {peak:.0} MiB after");
        }
        let cpu_plain = cpu_seconds();
        let (rows, plain) = plain_select(&self.path, tenant, agent, now - hours * HOUR_MS);
        let cpu_plain = cpu_seconds() - cpu_plain;
        println!(
            "  baseline, a plain read of the same rows in the same pages: {rows} rows in \
             {plain:.2} s (CPU {cpu_plain:.2} s); validate / baseline = {:.2} (CPU {:.2})",
            took / plain,
            cpu / cpu_plain
        );
    }
}

/// One busy agent's week of one-argument tool calls, imported through the store directly.
async fn easy(bench: &Bench) {
    println!("== easy: one agent, tool calls with one argument, imported through the store");
    let oldest = match oldest_run(&bench.path, "acme") {
        Some(oldest) => oldest,
        None => import_easy(bench).await,
    };
    bench
        .validate(
            json!({"name": "guard",
                "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
                "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                           "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
                          {"id": "rate", "type": "rate", "limit": 50, "window": "1m", "per": "agent"},
                          {"id": "cap", "type": "cost", "max_usd": "0.50", "period": "run"}]}),
            "acme",
            Some("support"),
            oldest,
        )
        .await;
}

/// Returns the start of the oldest run.
async fn import_easy(bench: &Bench) -> i64 {
    bench
        .tenant_with_agents("acme", &["support".to_owned()])
        .await;
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
    let base = Timestamp::now().as_millisecond() - WEEK_MS;
    for chunk in 0..(RUNS / 500) {
        let runs: Vec<ImportedRun> = (0..500)
            .map(|r| {
                let n = chunk * 500 + r;
                let begin = base + (n as i64) * (WEEK_MS / RUNS as i64);
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
        bench
            .store
            .import_runs(&Principal::Platform, &mut runs.into_iter())
            .await
            .unwrap();
    }
    println!(
        "imported {} actions through the store in {:.1} s",
        RUNS * PER_RUN,
        start.elapsed().as_secs_f64()
    );
    base
}

const AGENTS: usize = 20;

/// A deterministic stream of pseudo-random numbers (splitmix64), one per action.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const FIRST: [&str; 8] = ["ann", "bob", "dana", "eve", "joe", "kim", "lee", "max"];
const OUTSIDE: [&str; 4] = ["gmail.com", "example.org", "partner.io", "outlook.com"];
const QUERIES: [&str; 6] = [
    "how do I reset my password for the billing portal",
    "refund policy for annual plans cancelled within 30 days",
    "shipping delays to northern europe december",
    "change the invoice address on an existing order",
    "two factor authentication lost phone recovery steps",
    "difference between the team and business plans",
];

/// An address: inside the company, or at another domain.
fn address(r: u64, internal: bool) -> String {
    let name = FIRST[(r % 8) as usize];
    let number = (r >> 8) % 100;
    if internal {
        format!("{name}.{number}@acme.com")
    } else {
        format!("{name}.{number}@{}", OUTSIDE[((r >> 16) % 4) as usize])
    }
}

/// The JSON of one action (without `at`), and the decision recorded for it.
fn realistic_action(r: u64) -> (Value, &'static str) {
    let customer = (r >> 20) % 100_000;
    let pick = r % 100;
    let s = r >> 7;
    match pick {
        // CRM lookups by id, with the fields and relations to include.
        0..=29 => (
            json!({"kind": "tool_call", "tool": "crm.lookup", "args": {
                "customer_id": format!("cus_{customer:08}"),
                "fields": ["name", "email", "plan", "last_order", "lifetime_value"],
                "include": {"orders": {"limit": 20, "status": ["open", "shipped"]},
                            "notes": true, "tickets": {"limit": 5}}},
                "cost_usd": "0.0005"}),
            "allow",
        ),
        // Knowledge-base searches: the rate rule counts these.
        30..=44 => (
            json!({"kind": "tool_call", "tool": "kb.search", "args": {
                "query": QUERIES[(s % 6) as usize],
                "filters": {"lang": "en", "product": ["billing", "accounts"],
                            "updated_after": "2026-01-01"},
                "top_k": 10}, "cost_usd": "0.002"}),
            "allow",
        ),
        // Emails, half of them with a recipient outside the company among one to three.
        45..=64 => {
            let external = s.is_multiple_of(2);
            let count = 1 + (s >> 1) % 3;
            let to: Vec<String> = (0..count)
                .map(|k| address(mix(r ^ k), !(external && k == count - 1)))
                .collect();
            let cc: Vec<String> = (0..(s >> 3) % 3)
                .map(|k| address(mix(r ^ (k + 9)), true))
                .collect();
            let tool = if s.is_multiple_of(5) {
                "outlook.send_email"
            } else {
                "gmail.send_email"
            };
            (
                json!({"kind": "tool_call", "tool": tool, "args": {
                    "to": to, "cc": cc,
                    "subject": format!("Re: your order #{customer}"),
                    "body": "Thanks for getting in touch. I have looked into your order and \
                             updated the delivery address; you will get a confirmation with \
                             the new tracking number shortly. Best regards, the support team",
                    "attachments": [{"name": "invoice.pdf", "size": 48_213,
                                     "content_type": "application/pdf"}]}}),
                // Half of the external emails were blocked when they happened.
                if external && s.is_multiple_of(4) {
                    "block"
                } else {
                    "allow"
                },
            )
        }
        // Outputs to the customer, most of them quoting an email address.
        65..=79 => {
            let text = if s.is_multiple_of(3) {
                "Hi, I've looked into order #48213 and issued a refund of $23.50; it should \
                 appear within 5 business days. If anything else comes up, just reply to this \
                 message and we'll take it from there. Have a good day!"
                    .to_owned()
            } else {
                format!(
                    "Hi, I've looked into order #48213 and issued a refund of $23.50; it should \
                     appear within 5 business days. If anything else comes up, write to {} \
                     and we'll take it from there. Have a good day!",
                    address(s, s % 3 == 1)
                )
            };
            (
                json!({"kind": "output", "text": text, "channel": "chat"}),
                "allow",
            )
        }
        // Data accesses to customer records.
        80..=84 => (
            json!({"kind": "data_access",
                "resource": format!("crm/customers/{customer}/orders"),
                "operation": "read", "labels": ["pii", "region:eu"]}),
            "allow",
        ),
        // Ticket updates with a comment.
        _ => (
            json!({"kind": "tool_call", "tool": "tickets.update", "args": {
                "ticket_id": format!("T-{customer:06}"), "status": "pending",
                "comment": {"body": "Customer confirmed the new address; waiting for the \
                                     carrier to pick up the parcel.", "public": false},
                "tags": ["shipping", "address-change"]}}),
            "allow",
        ),
    }
}

/// One run of the realistic history as an NDJSON line: run `n` of `RUNS`, starting at `base`.
fn realistic_line(n: usize, base: i64) -> String {
    let begin = base + (n as i64) * (WEEK_MS / RUNS as i64);
    let at = |ms: i64| Timestamp::from_millisecond(ms).unwrap().to_string();
    let mut offset = 0;
    let actions: Vec<Value> = (0..PER_RUN)
        .map(|i| {
            let r = mix((n * PER_RUN + i) as u64);
            // One action every one to three seconds.
            offset += 1_000 + (r >> 40) as i64 % 2_000;
            let (mut action, decision) = realistic_action(r);
            action["at"] = json!(at(begin + offset));
            action["decision"] = json!(decision);
            action
        })
        .collect();
    let mut line = json!({
        "tenant_id": "globex",
        "agent_id": format!("agent-{:02}", n % AGENTS),
        "started_at": at(begin),
        "status": "completed",
        "metadata": {"channel": "chat", "customer_tier": "pro"},
        "actions": actions,
    })
    .to_string();
    line.push('\n');
    line
}

/// Returns the start of the oldest run.
async fn import_realistic(bench: &Bench) -> i64 {
    let agents: Vec<String> = (0..AGENTS).map(|a| format!("agent-{a:02}")).collect();
    bench.tenant_with_agents("globex", &agents).await;
    // An hour more than a week back, so the last runs have ended before the validation.
    let base = Timestamp::now().as_millisecond() - WEEK_MS - HOUR_MS;
    // Generated as it is sent: the body is never whole in memory.
    let lines = futures_util::stream::iter(
        (0..RUNS).map(move |n| Ok::<_, std::io::Error>(Bytes::from(realistic_line(n, base)))),
    );
    let started = Instant::now();
    let (status, body) = bench
        .call(
            "POST",
            "/v1/runs/import",
            "application/x-ndjson",
            Body::from_stream(lines),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    println!(
        "imported {} runs, {} actions through POST /v1/runs/import in {:.1} s",
        body["runs"],
        body["actions"],
        started.elapsed().as_secs_f64()
    );
    base
}

/// Twenty agents' week of realistic actions, imported through the API.
async fn realistic(bench: &Bench) {
    println!(
        "== realistic: 20 agents, nested arguments, outputs, data accesses, imported over HTTP"
    );
    let oldest = match oldest_run(&bench.path, "globex") {
        Some(oldest) => oldest,
        None => import_realistic(bench).await,
    };
    let bytes: usize = (0..100).map(|n| realistic_line(n, oldest).len()).sum();
    println!(
        "  about {} bytes of NDJSON per action",
        bytes / (100 * PER_RUN)
    );
    bench
        .validate(
            json!({"name": "support guard",
                "scope": {"type": "tenant", "tenant_id": "globex"},
                "rules": [{"id": "external-email", "type": "tool", "effect": "deny",
                           "tools": ["*.send_email"],
                           "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
                          {"id": "no-pii-out", "type": "output",
                           "pii": ["email", "phone", "credit_card", "ssn"]},
                          {"id": "search-rate", "type": "rate", "limit": 20, "window": "1h",
                           "per": "agent", "match": {"tools": ["*.search"]}}]}),
            "globex",
            None,
            oldest,
        )
        .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| chosen.is_empty() || chosen.iter().any(|c| c == name);
    let kept = std::env::var_os("CHARTER_BENCH_DB").map(std::path::PathBuf::from);
    let dir = std::env::temp_dir().join(format!("charter-validate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = kept.clone().unwrap_or_else(|| dir.join("bench.db"));
    let store = Store::open_sqlite(&path, Sync::Normal).await.unwrap();
    let admin = Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "bench".into(),
            name: "bench".into(),
        },
        at: Timestamp::now(),
    };
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
    let router = charter_server::router(charter_server::AppState::new(store.clone()));
    let bench = Bench {
        store,
        path,
        router,
        key,
        admin,
    };
    if wants("easy") {
        easy(&bench).await;
    }
    if wants("realistic") {
        realistic(&bench).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
