//! The policy author's story through the `charter` command line against the real server:
//! create, add a rule, activate (refused without validation, then forced), clone, supersede,
//! deprecate, export, import, delete a draft, read and verify the audit log, keys, import
//! recorded runs; then a restart keeps everything. Exit codes: 0 ok, 1 refused, 2 usage.

use std::process::Command;

use serde_json::Value;

use crate::serve::{start, stop};

/// The `charter` command line against one server.
pub(crate) struct Cli {
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) dir: std::path::PathBuf,
}

/// What one command printed, and its exit code.
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

impl Cli {
    pub(crate) fn run(&self, args: &[&str]) -> Out {
        let output = Command::new(env!("CARGO_BIN_EXE_charter"))
            .args(args)
            .env("CHARTER_URL", &self.url)
            .env("CHARTER_KEY", &self.key)
            .output()
            .unwrap();
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(
            out.code, 0,
            "charter {args:?}: {}{}",
            out.stdout, out.stderr
        );
        out
    }

    pub(crate) fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }
}

#[test]
fn the_authoring_story_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("charter-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = start(&dir.join("data"));
    let cli = Cli {
        url: format!("http://{}", server.addr),
        key: server.key.clone().unwrap(),
        dir: dir.clone(),
    };

    cli.ok(&["tenants", "create", "acme", "Acme Inc"]);
    cli.ok(&[
        "agents",
        "create",
        "acme",
        "support",
        "Support bot",
        "--owner",
        "ops@acme.com",
    ]);
    let listed = cli.ok(&["agents", "list", "acme"]);
    assert!(
        listed.stdout.contains("Support bot") && listed.stdout.contains("ops@acme.com"),
        "{}",
        listed.stdout
    );

    // Recorded history: NDJSON streamed from a file (blank lines skipped), or one JSON
    // document; all or nothing, a refused run named by its line.
    let run = |agent: &str| {
        format!(
            r#"{{"agent_id": "{agent}", "tenant_id": "acme", "started_at": "2026-11-20T09:00:00Z", "actions": [{{"at": "2026-11-20T09:00:03Z", "kind": "tool_call", "tool": "kb.search"}}]}}"#
        )
    };
    let history = cli.file(
        "history.ndjson",
        &format!("{}\n\n{}\n", run("support"), run("support")),
    );
    let imported = cli.ok(&["runs", "import", &history]);
    assert_eq!(imported.stdout, "imported 2 runs, 2 actions\n");
    let bad = cli.file(
        "bad.ndjson",
        &format!("{}\n\n{}\n", run("support"), run("ghost")),
    );
    let refused = cli.run(&["runs", "import", &bad]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("line 3.agent_id"),
        "{}",
        refused.stderr
    );
    let document = cli.file(
        "history.json",
        &format!(r#"{{"runs": [{}]}}"#, run("support")),
    );
    let imported = cli.ok(&["runs", "import", &document, "--json"]).json();
    assert_eq!(imported, serde_json::json!({"runs": 1, "actions": 1}));
    assert_eq!(cli.run(&["runs", "import", "/nonexistent.ndjson"]).code, 2);

    let policy = cli.file(
        "policy.json",
        r#"{"name": "Block external email", "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"}}"#,
    );
    // Client flags may follow the group or the command.
    let created = cli.ok(&["policy", "--json", "create", &policy]).json();
    let id = created["id"].as_str().unwrap().to_owned();
    let rule = cli.file(
        "rule.json",
        r#"{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"], "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}"#,
    );
    let with_rule = cli.ok(&["policy", "add-rule", &id, &rule, "--json"]).json();
    assert_eq!(with_rule["revision"], 2);

    // Refused by the server: exit 1 with its error on standard error.
    let refused = cli.run(&["policy", "activate", &id]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("validation_required"),
        "{}",
        refused.stderr
    );
    cli.ok(&["policy", "activate", &id, "--force"]);
    let frozen = cli.run(&["policy", "edit", &id, "--name", "changed"]);
    assert_eq!(frozen.code, 1);
    assert!(frozen.stderr.contains("409 conflict"), "{}", frozen.stderr);

    let v2 = cli.ok(&["policy", "clone", &id, "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.ok(&["policy", "activate", &v2, "--force", "--supersede"]);
    let versions = cli.ok(&["policy", "versions", &id, "--json"]).json();
    let statuses: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["deprecated", "active"]);
    let table = cli.ok(&["policy", "versions", &id]);
    assert!(table.stdout.starts_with("VERSION"), "{}", table.stdout);
    cli.ok(&["policy", "deprecate", &v2]);

    // Export → file → import round-trips into a new draft.
    let exported = cli.ok(&["policy", "export", &v2]);
    let document = cli.file("exported.json", &exported.stdout);
    let imported = cli.ok(&["policy", "import", &document, "--json"]).json();
    let draft = imported["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(imported["items"][0]["status"], "draft");
    assert_eq!(
        imported["items"][0]["rules"],
        serde_json::from_str::<Value>(&exported.stdout).unwrap()["rules"]
    );
    cli.ok(&["policy", "delete", &draft]);
    assert_eq!(cli.run(&["policy", "show", &draft]).code, 1);

    let audit = cli
        .ok(&["audit", "list", "--tenant", "acme", "--json"])
        .json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "agent.created",
        "policy.created",
        "policy.updated",
        "policy.activated",
        "policy.cloned",
        "policy.deprecated",
        "policy.exported",
        "policy.imported",
        "policy.deleted",
    ] {
        assert!(actions.contains(&expected), "{expected}: {actions:?}");
    }
    assert!(cli.ok(&["audit", "verify"]).stdout.starts_with("ok:"));

    let key = cli
        .ok(&[
            "keys", "create", "viewer", "--tenant", "acme", "--scopes", "read", "--json",
        ])
        .json();
    let key_id = key["id"].as_str().unwrap().to_owned();
    assert!(cli.ok(&["keys", "list"]).stdout.contains("viewer"));
    cli.ok(&["keys", "revoke", &key_id]);

    // Ids are path segments, never paths.
    assert_eq!(cli.run(&["policy", "show", "x/../../keys"]).code, 1);
    // Validate replays recorded history (none here) and stores the report.
    let validate = cli.ok(&["policy", "validate", &id]);
    assert!(
        validate.stdout.starts_with("runs scanned 0"),
        "{}",
        validate.stdout
    );
    // Paging through the audit log.
    let page = cli.ok(&["audit", "list", "--tenant", "acme", "--limit", "2"]);
    let cursor = page
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("more: --cursor "))
        .unwrap()
        .to_owned();
    let next = cli.ok(&[
        "audit", "list", "--tenant", "acme", "--limit", "2", "--cursor", &cursor,
    ]);
    assert_ne!(page.stdout, next.stdout);
    assert!(cli.ok(&["tenants"]).stdout.contains("acme"));

    // Usage errors: exit 2.
    assert_eq!(cli.run(&["policy"]).code, 2);
    assert_eq!(cli.run(&["policy", "create", "/nonexistent.json"]).code, 2);

    // A restart keeps everything.
    stop(server);
    let server = start(&dir.join("data"));
    let cli = Cli {
        url: format!("http://{}", server.addr),
        ..cli
    };
    let all = cli.ok(&["policy", "list", "--json"]).json();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert!(cli.ok(&["audit", "verify"]).stdout.starts_with("ok:"));
    stop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
