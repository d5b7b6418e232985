//! kill -9 under load: clients check as fast as they are answered, the server is killed with
//! SIGKILL at a random moment, then started again on the same data; every check it answered
//! 200 is an action of its run with the decision it was answered. SQLite with `--sync normal`
//! and `--sync full`, and PostgreSQL when it runs here. `CHARTER_CRASH_ROUNDS` (default 1) kills
//! and restarts that many times per backend: `scripts/crash-test --rounds 20` is the long run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::serve::{
    Server, bot_runs, drop_schema, postgres_schema, request, start_with, stop, stored_decisions,
    succeeded, tenant_with_bot, try_request,
};

/// Clients per round.
const CLIENTS: usize = 8;

fn rounds() -> u32 {
    std::env::var("CHARTER_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// A moment from 0 to 1,000 ms, different at every call.
fn random_moment() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_millis(u64::from(nanos % 1_000))
}

/// What one round found.
struct Round {
    acknowledged: usize,
    blocked: usize,
}

/// Half the clients ask for a tool the policy blocks, so both decisions are recorded.
fn action(client: usize) -> &'static str {
    if client.is_multiple_of(2) {
        r#"{"kind": "tool_call", "tool": "search.web", "args": {"q": "x"}}"#
    } else {
        r#"{"kind": "tool_call", "tool": "shell.exec", "args": {"cmd": "rm"}}"#
    }
}

/// One round on a started `server`: load, SIGKILL at a random moment, restart with `args`;
/// every acknowledged check is stored with its decision. Returns the restarted server.
fn round(server: Server, args: &[&str], key: &str) -> (Server, Round) {
    let addr = server.addr.clone();
    let runs = bot_runs(&addr, key, CLIENTS);
    // Answers so far, allowed and blocked: the kill comes once both were answered.
    let seen: Arc<[AtomicUsize; 2]> = Arc::default();
    let clients: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(client, run)| {
            let (addr, key, run, seen) = (addr.clone(), key.to_owned(), run.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut answered = HashMap::new();
                // Until the server is gone: a refused connection or no answer.
                while let Some((status, body)) = try_request(
                    &addr,
                    "POST",
                    &format!("/v1/runs/{run}/check"),
                    &key,
                    action(client),
                ) {
                    assert_eq!(status, 200, "{body}");
                    let decision: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let said = decision["decision"].as_str().unwrap().to_owned();
                    seen[usize::from(said == "block")].fetch_add(1, Ordering::SeqCst);
                    answered.insert(decision["action_id"].as_str().unwrap().to_owned(), said);
                }
                answered
            })
        })
        .collect();
    let waiting = std::time::Instant::now();
    while seen.iter().any(|n| n.load(Ordering::SeqCst) < 10) {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "no load within 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(random_moment());
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let answered: Vec<HashMap<String, String>> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();

    let server = start_with(args, &[]);
    let mut found = Round {
        acknowledged: 0,
        blocked: 0,
    };
    for (run, answers) in runs.iter().zip(&answered) {
        let stored = stored_decisions(&server.addr, key, run);
        for (id, decision) in answers {
            assert_eq!(
                stored.get(id),
                Some(decision),
                "acknowledged {id} ({decision}) of {run} is not stored as answered"
            );
            found.acknowledged += 1;
            found.blocked += usize::from(decision == "block");
        }
    }
    (server, found)
}

/// Runs [`rounds`] rounds against a server started with `args` (a fresh store).
fn crashes(backend: &str, args: &[&str]) {
    let server = start_with(args, &[]);
    let key = server.key.clone().unwrap();
    tenant_with_bot(&server.addr, &key);
    let policy = succeeded(
        &server.addr,
        &key,
        "POST",
        "/v1/policies",
        r#"{"name": "no shell", "scope": {"type": "tenant", "tenant_id": "acme"},
            "rules": [{"id": "no-shell", "type": "tool", "effect": "deny", "tools": ["shell.*"]}]}"#,
    );
    let id = policy["id"].as_str().unwrap();
    succeeded(
        &server.addr,
        &key,
        "POST",
        &format!("/v1/policies/{id}/activate"),
        r#"{"force": true}"#,
    );
    let (mut server, mut totals) = (server, Vec::new());
    for _ in 0..rounds() {
        let (restarted, found) = round(server, args, &key);
        assert!(
            found.acknowledged > 0,
            "no check was answered before the kill"
        );
        assert!(found.blocked > 0, "no block was answered before the kill");
        totals.push(found.acknowledged);
        server = restarted;
    }
    let (status, verified) = request(&server.addr, "GET", "/v1/audit/verify", &key, "");
    assert!(
        status == 200 && verified.contains("\"ok\":true"),
        "{verified}"
    );
    eprintln!(
        "kill -9 on {backend}: {} rounds, acknowledged checks per round {totals:?} ({} in all), none lost",
        totals.len(),
        totals.iter().sum::<usize>()
    );
    stop(server);
}

#[test]
fn kill_9_under_load_loses_nothing_acknowledged() {
    for sync in ["normal", "full"] {
        let dir = std::env::temp_dir().join(format!("charter-crash-{sync}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.to_string_lossy().into_owned();
        crashes(
            &format!("SQLite --sync {sync}"),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                &data,
                "--sync",
                sync,
            ],
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Some(schema) = postgres_schema("crash") {
        let url =
            format!("postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{schema}");
        crashes(
            "PostgreSQL",
            &["serve", "--listen", "127.0.0.1:0", "--database", &url],
        );
        drop_schema(&schema);
    }
}
