//! The workspace's pages on the demo data and on a big workspace, in one run: each page's
//! server time (request in, whole body read) through the router in process with a signed-in
//! session, p50 and p95 of both, and their ratios big / demo. Issue 18's target: every page
//! within 2× of itself on the demo data, p95 within 100 ms. Exits non-zero when one is not.
//!
//! - `demo`: what `charter demo` seeds (`charter_server::demo::seed`).
//! - `big`: the same, then 10,000 policy versions (drafts, active, deprecated; platform,
//!   tenant and agent scopes; one lineage of 100 versions) created through the store, with
//!   their audit entries, 1,000,000 recorded actions in 50,000 runs of 40 agents imported
//!   through the store (`Store::import_runs`, a tenth of them blocked and 1% halted, one run of
//!   1,000 actions), and a violation event for each of their blocks and halts (in SQL, from
//!   the imported rows: about 110,000 for the Monitor).
//!
//! Run: `cargo bench -p charter-server --bench workspace`. Both databases are kept under the
//! target directory (`CARGO_TARGET_TMPDIR`), keyed by `DATA_VERSION`: the next run skips the
//! generation. `BENCH_ITERS` (default 200) sets the timed requests per page and dataset, after
//! `BENCH_WARMUP` (default 3); `BENCH_PAGES=monitor,runs` times only the pages whose names
//! contain one of those words.

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

use std::path::{Path, PathBuf};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use charter_core::policy::PolicyDefinition;
use charter_core::{Action, AgentId, Outcome};
use charter_store::{
    Activation, Actor, Change, ImportedAction, ImportedRun, KeyScope, Principal, RunStatus, Store,
    Sync,
};
use http_body_util::BodyExt as _;
use jiff::Timestamp;
use serde_json::json;
use tower::ServiceExt as _;

/// The allocator of the `charter` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bumped whenever the generated data changes: the kept databases are then made again.
const DATA_VERSION: u32 = 2;
/// Policy versions in the big workspace (the demo's included).
const POLICIES: usize = 10_000;
/// Versions of the one long lineage.
const LONG_LINEAGE: usize = 100;
/// Recorded actions in the big workspace, beside the demo's.
const ACTIONS: usize = 1_000_000;
/// Actions per run (but the long run's).
const PER_RUN: usize = 20;
/// Actions of the one long run.
const LONG_RUN: usize = 1_000;
/// Agents per tenant, beside the demo's.
const AGENTS: usize = 20;
/// How far back the big history goes.
const HISTORY_MS: i64 = 30 * 86_400_000;

/// The targets of issue 18.
const MAX_RATIO: f64 = 2.0;
const MAX_P95_MS: f64 = 100.0;

fn admin() -> Change {
    Change {
        principal: Principal::Platform,
        actor: Actor {
            key_id: "bench".into(),
            name: "workspace bench".into(),
        },
        at: Timestamp::now(),
    }
}

/// A deterministic stream of pseudo-random numbers (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const TENANTS: [&str; 2] = ["acme", "globex"];
const WORDS: [&str; 8] = [
    "email", "refund", "export", "pii", "shell", "billing", "search", "upload",
];

/// The database `name` of this data version, made by `generate` unless a finished one is kept.
async fn dataset(dir: &Path, name: &str, big: bool) -> (Store, PathBuf) {
    let path = dir.join(format!("{name}.db"));
    let done = dir.join(format!("{name}.done"));
    if done.exists() {
        let took = std::fs::read_to_string(&done).unwrap_or_default();
        println!(
            "{name}: kept database {} (generated in {} s)",
            path.display(),
            took.trim()
        );
    } else {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}.db{suffix}")));
        }
        let started = Instant::now();
        let store = Store::open_sqlite(&path, Sync::Normal).await.unwrap();
        charter_server::demo::seed(&store, &admin()).await.unwrap();
        println!(
            "{name}: demo data seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if big {
            generate(&store).await;
        }
        println!(
            "{name}: generated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        store.close().await;
        std::fs::write(&done, format!("{}\n", started.elapsed().as_secs_f64())).unwrap();
    }
    let store = Store::open_sqlite(&path, Sync::Normal).await.unwrap();
    (store, path)
}

/// The big workspace on top of the demo's.
async fn generate(store: &Store) {
    let admin = admin();
    let started = Instant::now();
    for tenant in TENANTS {
        let id = charter_core::TenantId::new(tenant).unwrap();
        for a in 0..AGENTS {
            let agent = format!("agent-{a:02}");
            store
                .create_agent(&admin, &id, &AgentId::new(&agent).unwrap(), &agent, None)
                .await
                .unwrap();
        }
    }
    let existing = store
        .list_policies(
            &Principal::Platform,
            &charter_store::PolicyFilter::default(),
        )
        .await
        .unwrap()
        .len();
    // One lineage of many versions: each activated, superseding the one before.
    let force = Activation {
        force: true,
        supersede: false,
    };
    let supersede = Activation {
        force: true,
        supersede: true,
    };
    let first = store
        .create_policy(&admin, definition(0, "agent", "acme", "agent-00"), false)
        .await
        .unwrap();
    store
        .activate(&admin, first.policy.id.as_str(), force, None)
        .await
        .unwrap();
    let mut last = first.policy.id.to_string();
    for _ in 1..LONG_LINEAGE {
        let next = store.clone_policy(&admin, &last, None, None).await.unwrap();
        store
            .activate(&admin, next.policy.id.as_str(), supersede, None)
            .await
            .unwrap();
        last = next.policy.id.to_string();
    }
    // The rest as drafts imported in batches, then two thirds activated and half of those
    // deprecated.
    let rest = POLICIES - existing - LONG_LINEAGE;
    let mut made = Vec::with_capacity(rest);
    for chunk in (0..rest).collect::<Vec<_>>().chunks(1_000) {
        let definitions = chunk
            .iter()
            .map(|&i| {
                let r = mix(i as u64);
                let tenant = TENANTS[(r % 2) as usize];
                let agent = format!("agent-{:02}", (r >> 8) % AGENTS as u64);
                let scope = match (r >> 16) % 100 {
                    0 => "platform",
                    1..=30 => "tenant",
                    _ => "agent",
                };
                definition(i + 1, scope, tenant, &agent)
            })
            .collect();
        let stored = store.import_policies(&admin, definitions).await.unwrap();
        made.extend(stored.into_iter().map(|s| s.policy.id.to_string()));
    }
    for (i, id) in made.iter().enumerate() {
        match i % 6 {
            0 | 1 => {}
            2..=4 => {
                store.activate(&admin, id, force, None).await.unwrap();
            }
            _ => {
                store.activate(&admin, id, force, None).await.unwrap();
                store.deprecate(&admin, id).await.unwrap();
            }
        }
    }
    println!(
        "big: {POLICIES} policy versions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let now = Timestamp::now().as_millisecond();
    let runs = ACTIONS / PER_RUN;
    let base = now - HISTORY_MS;
    let (mut imported_runs, mut imported_actions) = (0, 0);
    let all: Vec<usize> = (0..=runs).collect();
    for chunk in all.chunks(2_500) {
        let batch: Vec<ImportedRun> = chunk.iter().map(|&n| history_run(n, runs, base)).collect();
        let (r, a) = store
            .import_runs(&Principal::Platform, &mut batch.into_iter())
            .await
            .unwrap();
        imported_runs += r;
        imported_actions += a;
    }
    let (runs, actions) = (imported_runs, imported_actions);
    println!(
        "big: imported {runs} runs, {actions} actions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let events = violations(store).await;
    println!(
        "big: {events} violation events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    store.execute_raw("ANALYZE").await.unwrap();
}

/// Policy `i`'s definition.
fn definition(i: usize, scope: &str, tenant: &str, agent: &str) -> PolicyDefinition {
    let scope = match scope {
        "platform" => json!({"type": "platform"}),
        "tenant" => json!({"type": "tenant", "tenant_id": tenant}),
        _ => json!({"type": "agent", "tenant_id": tenant, "agent_id": agent}),
    };
    let word = WORDS[i % WORDS.len()];
    PolicyDefinition::parse(&json!({
        "name": format!("{word} guard {i}"),
        "description": format!("Generated policy {i}: keeps {word} in bounds."),
        "scope": scope,
        "rules": [
            {"id": "deny", "type": "tool", "effect": "deny", "tools": [format!("{word}.*")],
             "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
            {"id": "rate", "type": "rate", "limit": 100 + i % 50, "window": "1h", "per": "agent"},
        ],
    }))
    .unwrap()
}

/// Run `n` of `runs` (`runs` itself: the long one), evenly spread from `base` on.
fn history_run(n: usize, runs: usize, base: i64) -> ImportedRun {
    let long = n == runs;
    let r = mix(n as u64 ^ 0xabcd);
    let tenant = TENANTS[n % 2];
    let agent = format!("agent-{:02}", (n / 2) % AGENTS);
    // The long run sits in the middle of the history, so most of its agent's actions are
    // after its start.
    let begin = if long {
        base + HISTORY_MS / 2
    } else {
        base + (n as i64) * (HISTORY_MS / runs as i64)
    };
    let count = if long { LONG_RUN } else { PER_RUN };
    let mut at = begin;
    let actions = (0..count)
        .map(|i| {
            let r = mix(r ^ ((i as u64) << 20));
            at += 500 + (r % 1_500) as i64;
            let (action, decision) = match r % 100 {
                0..=9 => (
                    json!({"kind": "tool_call", "tool": "gmail.send_email",
                           "args": {"to": format!("user{}@gmail.com", r % 1000),
                                    "subject": "Your order"}}),
                    Outcome::Block,
                ),
                10 => (
                    json!({"kind": "tool_call", "tool": "shell.exec", "args": {"cmd": "ls"}}),
                    Outcome::Halt,
                ),
                11..=40 => (
                    json!({"kind": "tool_call", "tool": "kb.search",
                           "args": {"query": "refund policy for annual plans"},
                           "cost_usd": "0.002"}),
                    Outcome::Allow,
                ),
                41..=60 => (
                    json!({"kind": "output", "channel": "chat",
                           "text": "Thanks, your refund is on its way."}),
                    Outcome::Allow,
                ),
                61..=70 => (
                    json!({"kind": "data_access", "resource": format!("crm/customers/{}", r % 5000),
                           "operation": "read"}),
                    Outcome::Allow,
                ),
                _ => (
                    json!({"kind": "model_call", "model": "openai/gpt-4o", "input_tokens": 900,
                           "output_tokens": 200, "cost_usd": "0.01"}),
                    Outcome::Allow,
                ),
            };
            ImportedAction {
                at: Timestamp::from_millisecond(at).unwrap(),
                action: Action::parse(&action).unwrap(),
                decision: Some(decision),
            }
        })
        .collect();
    ImportedRun {
        tenant_id: tenant.to_owned(),
        agent_id: agent,
        started_at: Timestamp::from_millisecond(begin).unwrap(),
        ended_at: None,
        status: RunStatus::Completed,
        metadata: json!({"source": "workspace bench"}),
        actions,
    }
}

/// A violation event for each block and halt of the imported history (the Monitor's rows), as
/// the group commit writes them, attributed to 20 active policies. Returns how many.
async fn violations(store: &Store) -> u64 {
    store
        .execute_raw(
            "CREATE TABLE bench_policies AS \
             SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, name, version, lineage_id \
             FROM (SELECT id, name, version, lineage_id FROM policies \
                   WHERE status = 'active' AND name LIKE '% guard %' ORDER BY id LIMIT 20)",
        )
        .await
        .unwrap();
    let inserted = store
        .execute_raw(
            "INSERT INTO violations (id, at, decision, policy_id, policy_name, policy_version, \
             lineage_id, rule_id, rule_type, tenant_id, agent_id, run_id, action_id, \
             action_kind, action_summary, matching_input, message) \
             SELECT 'vio_' || substr(a.id, 5), a.at, a.decision, p.id, p.name, p.version, \
             p.lineage_id, 'deny', 'tool', a.tenant_id, a.agent_id, a.run_id, a.id, a.kind, \
             CASE a.decision WHEN 'halt' THEN 'shell.exec' ELSE 'gmail.send_email' END, \
             '{\"to\":\"someone@gmail.com\"}', 'email outside acme.com' \
             FROM actions a JOIN bench_policies p ON p.n = a.rowid % 20 \
             WHERE a.decision IN ('block', 'halt') \
             AND a.run_id IN (SELECT id FROM runs WHERE metadata LIKE '%workspace bench%')",
        )
        .await
        .unwrap();
    store
        .execute_raw("DROP TABLE bench_policies")
        .await
        .unwrap();
    // The group commit adds to the Monitor's counts per slot as it records events; rows
    // written here in SQL are counted the way migrations 0011 and 0014 count the events they
    // find.
    for count in [
        "DELETE FROM violation_counts",
        "DELETE FROM violation_policy_counts",
        "DELETE FROM violation_counts_3h",
        "DELETE FROM violation_policy_counts_3h",
        "INSERT INTO violation_counts (tenant_id, slot, n) \
         SELECT tenant_id, (at / 900000) * 900000, COUNT(*) FROM violations GROUP BY 1, 2",
        "INSERT INTO violation_policy_counts (policy_id, tenant_id, slot, n) \
         SELECT policy_id, tenant_id, (at / 900000) * 900000, COUNT(*) FROM violations \
         GROUP BY 1, 2, 3",
        "INSERT INTO violation_counts_3h (tenant_id, slot, n) \
         SELECT tenant_id, (at / 10800000) * 10800000, COUNT(*) FROM violations GROUP BY 1, 2",
        "INSERT INTO violation_policy_counts_3h (policy_id, tenant_id, slot, n) \
         SELECT policy_id, tenant_id, (at / 10800000) * 10800000, COUNT(*) FROM violations \
         GROUP BY 1, 2, 3",
    ] {
        store.execute_raw(count).await.unwrap();
    }
    inserted
}

/// A workspace served in process, signed in with a platform key.
struct Site {
    name: &'static str,
    router: Router,
    cookie: String,
    path: PathBuf,
}

/// The value a `Set-Cookie` header of `response` sets for `name`.
fn set_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|line| line.split(';').next())
        .map(str::to_owned)
}

impl Site {
    async fn new(name: &'static str, store: Store, path: PathBuf) -> Site {
        let key = charter_store::new_key_secret();
        store
            .create_key(
                &admin(),
                "bench admin",
                None,
                &[KeyScope::Read, KeyScope::Write, KeyScope::Execute],
                &key,
            )
            .await
            .unwrap();
        let router = charter_server::app(charter_server::AppState::new(store));
        let mut site = Site {
            name,
            router,
            cookie: String::new(),
            path,
        };
        // Signs in as a browser does: the form's token cookie and field, then the key.
        let form = site.request("GET", "/sign-in", &[], String::new()).await;
        let pre = set_cookie(&form.1, "charter_sign_in").unwrap();
        let body = String::from_utf8(form.2).unwrap();
        let at = body.find("name=\"csrf\" value=\"").unwrap() + 19;
        let csrf = &body[at..at + 64];
        let signed = site
            .request(
                "POST",
                "/sign-in",
                &[
                    ("cookie", pre.as_str()),
                    ("sec-fetch-site", "same-origin"),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                format!("key={key}&csrf={csrf}"),
            )
            .await;
        assert_eq!(signed.0, StatusCode::SEE_OTHER);
        site.cookie = set_cookie(&signed.1, "charter_session").unwrap();
        site
    }

    async fn request(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }

    /// `GET uri` with the session: its server time in ms and the body's length.
    async fn time(&self, uri: &str) -> (f64, usize) {
        let started = Instant::now();
        let response = self
            .router
            .clone()
            .oneshot(
                Request::builder()
                    .uri(uri)
                    .header("cookie", &self.cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let took = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}: GET {uri}: {}",
            self.name,
            String::from_utf8_lossy(&bytes)
        );
        (took, bytes.len())
    }

    /// One text value of the database (read-only, straight from SQLite).
    fn one(&self, sql: &str) -> String {
        let connection = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        connection
            .query_row(sql, [], |row| row.get::<_, String>(0))
            .map_err(|e| format!("{}: {sql}: {e}", self.name))
            .unwrap()
    }

    /// The pages to time, each (name, URI), with this dataset's ids.
    fn pages(&self) -> Vec<(&'static str, String)> {
        let policy = self.one(
            "SELECT id FROM policies WHERE name = 'Block external email' ORDER BY version DESC",
        );
        let draft = self.one("SELECT id FROM policies WHERE name = 'Throttle refunds'");
        // The lineage with the most versions, at its latest version.
        let lineage = self.one(
            "SELECT lineage_id FROM policies GROUP BY lineage_id ORDER BY count(*) DESC, \
             lineage_id LIMIT 1",
        );
        let long = self.one(&format!(
            "SELECT id FROM policies WHERE lineage_id = '{lineage}' ORDER BY version DESC"
        ));
        let blocking = self.one(
            "SELECT policy_id FROM violations GROUP BY policy_id ORDER BY count(*) DESC LIMIT 1",
        );
        let run =
            self.one("SELECT run_id FROM actions GROUP BY run_id ORDER BY count(*) DESC LIMIT 1");
        vec![
            ("policies: all", "/policies".to_owned()),
            ("policies: draft", "/policies?status=draft".to_owned()),
            ("policies: active", "/policies?status=active".to_owned()),
            (
                "policies: deprecated",
                "/policies?status=deprecated".to_owned(),
            ),
            ("policies: search q=refund", "/policies?q=refund".to_owned()),
            (
                "policies: scope=tenant",
                "/policies?scope=tenant".to_owned(),
            ),
            ("policy page", format!("/policies/{policy}")),
            ("policy page: longest lineage", format!("/policies/{long}")),
            ("validate page (GET)", format!("/policies/{draft}/validate")),
            ("monitor", "/monitor".to_owned()),
            (
                "monitor: policy_id",
                format!("/monitor?policy_id={blocking}"),
            ),
            ("monitor: range=24h", "/monitor?range=24h".to_owned()),
            ("runs", "/runs".to_owned()),
            ("run page: most actions", format!("/runs/{run}")),
            ("audit", "/audit".to_owned()),
            ("audit: lineage", format!("/audit?lineage_id={lineage}")),
            ("agents", "/agents".to_owned()),
            ("keys", "/keys".to_owned()),
            ("docs", "/docs".to_owned()),
        ]
    }
}

/// The `q`-quantile of sorted `samples`.
fn quantile(samples: &[f64], q: f64) -> f64 {
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[at.min(samples.len() - 1)]
}

/// Sizes of the shipped static files: each raw and gzipped (`gzip -9`), and the totals.
fn assets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    println!("\n### Static assets (crates/charter-server/static, embedded)\n");
    println!("| file | bytes | gzip -9 bytes |");
    println!("|---|---:|---:|");
    let (mut raw, mut gz) = (0u64, 0u64);
    for file in files {
        let size = std::fs::metadata(&file).unwrap().len();
        let zipped = std::process::Command::new("gzip")
            .args(["-9", "-c"])
            .arg(&file)
            .output()
            .map_or(0, |o| o.stdout.len() as u64);
        raw += size;
        gz += zipped;
        println!(
            "| {} | {size} | {zipped} |",
            file.strip_prefix(&root).unwrap().display()
        );
    }
    println!("| **total** | **{raw}** | **{gz}** |");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let iterations = env("BENCH_ITERS", 200).max(2);
    let warmup = env("BENCH_WARMUP", 3);
    let only: Vec<String> = std::env::var("BENCH_PAGES")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("workspace-bench-v{DATA_VERSION}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (demo_store, demo_path) = dataset(&dir, "demo", false).await;
    let (big_store, big_path) = dataset(&dir, "big", true).await;
    let demo = Site::new("demo", demo_store, demo_path).await;
    let big = Site::new("big", big_store, big_path).await;
    for site in [&demo, &big] {
        println!(
            "{}: {} policy versions, {} lineages, {} runs, {} actions, {} violation events, \
             {} audit entries, {} agents",
            site.name,
            site.one("SELECT count(*) || '' FROM policies"),
            site.one("SELECT count(*) || '' FROM lineages"),
            site.one("SELECT count(*) || '' FROM runs"),
            site.one("SELECT count(*) || '' FROM actions"),
            site.one("SELECT count(*) || '' FROM violations"),
            site.one("SELECT count(*) || '' FROM audit_log"),
            site.one("SELECT count(*) || '' FROM agents"),
        );
    }
    let pages: Vec<_> = demo
        .pages()
        .into_iter()
        .zip(big.pages())
        .filter(|((name, _), _)| only.is_empty() || only.iter().any(|o| name.contains(o.as_str())))
        .map(|((name, demo_uri), (_, big_uri))| (name, demo_uri, big_uri))
        .collect();
    // Interleaved: each round times every page once on each dataset, so both see the same
    // machine.
    let mut samples = vec![(Vec::new(), Vec::new(), 0, 0); pages.len()];
    for round in 0..(warmup + iterations) {
        for (i, (_, demo_uri, big_uri)) in pages.iter().enumerate() {
            let (d, d_len) = demo.time(demo_uri).await;
            let (b, b_len) = big.time(big_uri).await;
            if round >= warmup {
                samples[i].0.push(d);
                samples[i].1.push(b);
                samples[i].2 = d_len;
                samples[i].3 = b_len;
            }
        }
    }
    println!(
        "\n{iterations} timed requests per page and dataset after {warmup} warm-up rounds, \
         interleaved; server time (request in, whole body read) in ms.\n"
    );
    println!(
        "| page | demo p50 | demo p95 | big p50 | big p95 | p50 big/demo | p95 big/demo | \
         body demo / big (KiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut failures = Vec::new();
    for ((name, _, _), (mut d, mut b, d_len, b_len)) in pages.iter().zip(samples) {
        d.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (d50, d95, b50, b95) = (
            quantile(&d, 0.5),
            quantile(&d, 0.95),
            quantile(&b, 0.5),
            quantile(&b, 0.95),
        );
        let (r50, r95) = (b50 / d50, b95 / d95);
        let mark = |r: f64| if r > MAX_RATIO { " **✗**" } else { "" };
        println!(
            "| {name} | {d50:.2} | {d95:.2} | {b50:.2} | {b95:.2} | {r50:.2}{} | {r95:.2}{} | \
             {:.1} / {:.1} |",
            mark(r50),
            mark(r95),
            d_len as f64 / 1024.0,
            b_len as f64 / 1024.0,
        );
        if r50 > MAX_RATIO {
            failures.push(format!("{name}: p50 big/demo {r50:.2} > {MAX_RATIO}"));
        }
        if r95 > MAX_RATIO {
            failures.push(format!("{name}: p95 big/demo {r95:.2} > {MAX_RATIO}"));
        }
        if b95 > MAX_P95_MS || d95 > MAX_P95_MS {
            failures.push(format!(
                "{name}: p95 {d95:.1} / {b95:.1} ms > {MAX_P95_MS} ms"
            ));
        }
    }
    assets();
    if failures.is_empty() {
        println!("\nMet: every page within {MAX_RATIO}× of the demo's, p95 ≤ {MAX_P95_MS} ms.");
    } else {
        println!("\nNot met:");
        for failure in &failures {
            println!("- {failure}");
        }
        std::process::exit(1);
    }
}
