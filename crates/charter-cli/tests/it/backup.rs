//! Backups of a live server, restored as a new server's database: `charter backup` on SQLite,
//! `pg_dump` and `pg_restore` on PostgreSQL. A restored copy verifies its audit chains and
//! keeps every counter (the spend recorded before the backup still counts against a cost cap).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::serve::{
    Server, drop_schema, postgres_schema, request, start, start_with, stop, succeeded,
    tenant_with_bot,
};

/// A cost cap of 1.00 a day for tenant `acme`, and 0.50 of it spent; returns the run that spent
/// it.
fn half_spent(addr: &str, key: &str) -> String {
    let call = |method: &str, path: &str, body: &str| succeeded(addr, key, method, path, body);
    tenant_with_bot(addr, key);
    let policy = call(
        "POST",
        "/v1/policies",
        r#"{"name": "cap", "scope": {"type": "tenant", "tenant_id": "acme"},
            "rules": [{"id": "cap", "type": "cost", "max_usd": "1.00", "period": "day", "per": "tenant"}]}"#,
    );
    let id = policy["id"].as_str().unwrap();
    call(
        "POST",
        &format!("/v1/policies/{id}/activate"),
        r#"{"force": true}"#,
    );
    let run = call(
        "POST",
        "/v1/runs",
        r#"{"agent_id": "bot", "tenant_id": "acme"}"#,
    );
    let run_id = run["id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let d = call(
            "POST",
            &format!("/v1/runs/{run_id}/check"),
            r#"{"kind": "model_call", "model": "m", "cost_usd": "0.10"}"#,
        );
        assert_eq!(d["decision"], "allow");
    }
    run_id
}

/// Free checks (the spend stays 0.50) on `run_id` until the returned flag is raised; the
/// thread answers how many were made, each answered 200.
fn free_checks(addr: &str, key: &str, run_id: &str) -> (Arc<AtomicBool>, JoinHandle<u32>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, key, run_id, stopping) = (
        addr.to_owned(),
        key.to_owned(),
        run_id.to_owned(),
        stop.clone(),
    );
    let load = std::thread::spawn(move || {
        let mut checks = 0;
        while !stopping.load(Ordering::Relaxed) {
            let (status, _) = request(
                &addr,
                "POST",
                &format!("/v1/runs/{run_id}/check"),
                &key,
                r#"{"kind": "tool_call", "tool": "search.web", "args": {}}"#,
            );
            assert_eq!(status, 200);
            checks += 1;
        }
        checks
    });
    std::thread::sleep(Duration::from_millis(200));
    (stop, load)
}

/// Stops the load of [`free_checks`], which must have made checks.
fn stop_checks((stop, load): (Arc<AtomicBool>, JoinHandle<u32>)) {
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 0, "checks ran during the backup");
}

/// The restored server has the copy's keys, verifies its audit chains, and still counts the
/// 0.50 spent: 0.60 more passes the 1.00 cap, so a new run halts (with the spend lost, it
/// would be allowed).
fn restored_with_its_spend(server: &Server, key: &str) {
    assert!(server.key.is_none(), "the copy has its keys");
    let (status, verified) = request(&server.addr, "GET", "/v1/audit/verify", key, "");
    assert_eq!(status, 200, "{verified}");
    assert!(verified.contains("\"ok\":true"), "{verified}");
    let run = succeeded(
        &server.addr,
        key,
        "POST",
        "/v1/runs",
        r#"{"agent_id": "bot", "tenant_id": "acme"}"#,
    );
    let over = format!("/v1/runs/{}/check", run["id"].as_str().unwrap());
    let (_, refused) = request(
        &server.addr,
        "POST",
        &over,
        key,
        r#"{"kind": "model_call", "model": "m", "cost_usd": "0.60"}"#,
    );
    assert!(refused.contains("\"decision\":\"halt\""), "{refused}");
}

/// `charter backup` copies a live server's database while checks keep arriving; the copy,
/// started as a new server's data, verifies and keeps its counters. A backup never overwrites
/// a file.
#[test]
fn a_backup_under_load_restores_to_a_store_that_verifies_and_keeps_its_counters() {
    let dir = std::env::temp_dir().join(format!("charter-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (live, restored) = (dir.join("live"), dir.join("restored"));
    let server = start(&live);
    let key = server.key.clone().unwrap();
    let run_id = half_spent(&server.addr, &key);

    let load = free_checks(&server.addr, &key, &run_id);
    let out = dir.join("charter-backup.db");
    let backup = || {
        Command::new(env!("CARGO_BIN_EXE_charter"))
            .arg("backup")
            .arg("--data-dir")
            .arg(&live)
            .arg(&out)
            .output()
            .unwrap()
    };
    let taken = backup();
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    assert!(String::from_utf8_lossy(&taken.stdout).starts_with("backed up "));
    stop_checks(load);

    // Never over a file: refused, the file untouched.
    let again = backup();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    stop(server);

    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&out, restored.join("charter.db")).unwrap();
    let server = start(&restored);
    restored_with_its_spend(&server, &key);
    stop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `psql` on the local server's database `database`; panics unless it succeeds.
fn psql(database: &str, sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-qc",
            sql,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {out:?}");
}

/// On PostgreSQL, `pg_dump` of a live server's schema while checks keep arriving, restored with
/// `pg_restore` into another database, serves as the documented restore says: it verifies and
/// keeps its counters.
#[test]
fn a_pg_dump_under_load_restores_to_a_store_that_verifies_and_keeps_its_counters() {
    let Some(schema) = postgres_schema("pgdump") else {
        return;
    };
    let url = |database: &str| {
        format!("postgres://postgres@127.0.0.1:5432/{database}?options=-c%20search_path%3D{schema}")
    };
    let live = url("test");
    let server = start_with(
        &["serve", "--listen", "127.0.0.1:0", "--database", &live],
        &[],
    );
    let key = server.key.clone().unwrap();
    let run_id = half_spent(&server.addr, &key);

    let load = free_checks(&server.addr, &key, &run_id);
    let dump = std::env::temp_dir().join(format!("charter-{schema}.dump"));
    let dumped = Command::new("pg_dump")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "--format=custom",
        ])
        .args(["--schema", &schema, "--file"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{dumped:?}");
    stop_checks(load);
    stop(server);

    let database = format!("{schema}_restored");
    psql("test", &format!("CREATE DATABASE {database}"));
    let restored = Command::new("pg_restore")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            &database,
            "--exit-on-error",
        ])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(restored.status.success(), "{restored:?}");
    let server = start_with(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &url(&database),
        ],
        &[],
    );
    restored_with_its_spend(&server, &key);
    stop(server);
    let _ = std::fs::remove_file(&dump);
    psql("test", &format!("DROP DATABASE {database}"));
    drop_schema(&schema);
}
