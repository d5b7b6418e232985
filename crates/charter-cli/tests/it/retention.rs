//! `charter serve --retain-actions 2s`: an ended run disappears in the background (its page
//! answers 404) while checks of a running run keep being answered; a retention that is no
//! duration is a usage error.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve::{request, start_with, stop, succeeded, tenant_with_bot};

#[test]
fn an_ended_run_is_pruned_while_checks_go_on() {
    let dir = std::env::temp_dir().join(format!("charter-retention-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.to_string_lossy().into_owned();
    let server = start_with(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", &data],
        &[("CHARTER_RETAIN_ACTIONS", "2s")],
    );
    let key = server.key.clone().unwrap();
    let addr = server.addr.clone();
    let call = |method: &str, path: &str, body: &str| succeeded(&addr, &key, method, path, body);
    tenant_with_bot(&addr, &key);
    let start = r#"{"agent_id": "bot", "tenant_id": "acme"}"#;
    let search = r#"{"kind": "tool_call", "tool": "web.search", "args": {"q": "x"}}"#;
    let old = call("POST", "/v1/runs", start)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let running = call("POST", "/v1/runs", start)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for run in [&old, &running] {
        let d = call("POST", &format!("/v1/runs/{run}/check"), search);
        assert_eq!(d["decision"], "allow");
    }
    call(
        "POST",
        &format!("/v1/runs/{old}/end"),
        r#"{"status": "completed"}"#,
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut checks = 0;
    loop {
        let d = call("POST", &format!("/v1/runs/{running}/check"), search);
        assert_eq!(d["decision"], "allow");
        checks += 1;
        let (status, _) = request(&addr, "GET", &format!("/v1/runs/{old}"), &key, "");
        if status == 404 {
            break;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "the ended run was never pruned");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(checks > 1);
    let kept = call("GET", &format!("/v1/runs/{running}"), "");
    assert_eq!(kept["status"], "running");
    let (_, metrics) = request(&addr, "GET", "/metrics", "", "");
    assert!(
        metrics.contains("charter_pruned_total{what=\"runs\"} 1"),
        "{metrics}"
    );
    stop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_retention_must_be_a_duration_or_forever() {
    for bad in ["0d", "90", "101y", "367d"] {
        let usage = Command::new(env!("CARGO_BIN_EXE_charter"))
            .args(["serve", "--retain-audit", bad])
            .output()
            .unwrap();
        assert_eq!(usage.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&usage.stderr);
        assert!(
            stderr.contains("--retain-audit") && stderr.contains("forever"),
            "{bad}: {stderr}"
        );
    }
}
