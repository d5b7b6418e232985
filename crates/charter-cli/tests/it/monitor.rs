//! The operator's side through the command line against the real server: a policy read as
//! sentences, violations tailed live while checks are refused (`--follow`, as JSON lines and
//! as a table), then listed with filters and pages and counted; runs listed and shown with
//! their actions and why each refused one was refused.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::Cli;
use crate::serve::{request, start, stop};

/// How long a line of a followed stream may take: far above a check's milliseconds, so only
/// a broken stream waits this long.
const PATIENCE: Duration = Duration::from_secs(30);

/// `charter violations --follow ...` running, its output read line by line on threads.
pub(crate) struct Follower {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Follower {
    pub(crate) fn start(cli: &Cli, args: &[&str]) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_charter"))
            .args(["violations", "--follow"])
            .args(args)
            .env("CHARTER_URL", &cli.url)
            .env("CHARTER_KEY", &cli.key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (send, receive) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    if send.send(line).is_err() {
                        return;
                    }
                }
            });
            receive
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        let follower = Follower {
            child,
            stdout,
            stderr,
        };
        // The server answers once it streams its own events and listens for the other nodes'
        // (`LiveFeed::subscribe`); the command says so once it has the answer.
        let ready = follower.stderr.recv_timeout(PATIENCE).unwrap();
        assert!(ready.contains("following new violations"), "{ready}");
        follower
    }

    pub(crate) fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("no line from the stream: {e}"))
    }

    /// The next line the command writes to its standard error (what it says of the stream).
    pub(crate) fn next_said(&self) -> String {
        self.stderr
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("nothing said of the stream: {e}"))
    }
}

impl Drop for Follower {
    /// Followed until interrupted: the test ends it, and a failing test must too.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_monitor_and_runs_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("charter-monitor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = start(&dir.join("data"));
    let cli = Cli {
        url: format!("http://{}", server.addr),
        key: server.key.clone().unwrap(),
        dir: dir.clone(),
    };
    let (addr, key) = (server.addr.clone(), cli.key.clone());
    let call = |method: &str, path: &str, body: &Value| {
        let (status, text) = request(&addr, method, path, &key, &body.to_string());
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        serde_json::from_str::<Value>(&text).unwrap()
    };

    cli.ok(&["tenants", "create", "acme", "Acme"]);
    cli.ok(&["agents", "create", "acme", "support", "Support"]);
    cli.ok(&["agents", "create", "acme", "sales", "Sales"]);
    let policy = cli.file(
        "policy.json",
        r#"{"name": "Block external email", "scope": {"type": "tenant", "tenant_id": "acme"},
            "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                       "description": "Mail stays inside.",
                       "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]},
                      {"id": "spend", "type": "cost", "max_usd": "50", "period": "day", "per": "tenant"}]}"#,
    );
    let id = cli.ok(&["policy", "create", &policy, "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.ok(&["policy", "activate", &id, "--force"]);

    // `policy show`: a header and the rules as sentences; `--json` is the server's JSON.
    let shown = cli.ok(&["policy", "show", &id]).stdout;
    for expected in [
        "name:        Block external email\n",
        &format!("id:          {id}\n"),
        "version:     1\n",
        "scope:       tenant acme\n",
        "revision:    1\n",
        "validated:   never\n",
        "  r1 (tool): block `*.send_email` when `args.to` does not end with `@acme.com`\n      Mail stays inside.\n",
        "  spend (cost): halt past $50.00 per day (UTC) per tenant\n",
    ] {
        assert!(shown.contains(expected), "{expected:?} in\n{shown}");
    }
    assert!(shown.contains("status:      active since "), "{shown}");
    assert_eq!(
        cli.ok(&["policy", "show", &id, "--json"]).json(),
        call("GET", &format!("/v1/policies/{id}"), &Value::Null)
    );

    // Two followers, subscribed before any check: one agent's events as JSON lines, and
    // every event as a table.
    let support_json = Follower::start(&cli, &["--agent", "support", "--json"]);
    let all_table = Follower::start(&cli, &[]);
    let header = all_table.next_line();
    assert!(
        header.starts_with("TIME") && header.contains("MESSAGE"),
        "{header}"
    );

    let start_run = |agent: &str| {
        call(
            "POST",
            "/v1/runs",
            &json!({"agent_id": agent, "tenant_id": "acme"}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let email = |run: &str, to: &str| {
        call(
            "POST",
            &format!("/v1/runs/{run}/check"),
            &json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": to}}),
        )["decision"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The other agent's block first: a filter that let it through would show it first.
    let sales = start_run("sales");
    assert_eq!(email(&sales, "lead@example.com"), "block");
    let support = start_run("support");
    assert_eq!(email(&support, "ann@acme.com"), "allow");
    for to in ["a@gmail.com", "b@gmail.com", "c@gmail.com"] {
        assert_eq!(email(&support, to), "block");
    }

    let mut followed = Vec::new();
    for _ in 0..3 {
        let event: Value = serde_json::from_str(&support_json.next_line()).unwrap();
        assert_eq!(
            (&event["agent_id"], &event["run_id"], &event["rule_id"]),
            (&json!("support"), &json!(support), &json!("r1")),
            "{event}"
        );
        followed.push(event["matching_input"].as_str().unwrap().to_owned());
    }
    assert_eq!(followed, ["a@gmail.com", "b@gmail.com", "c@gmail.com"]);
    let first = all_table.next_line();
    for cell in [
        "block",
        "Block external email@1",
        "r1/tool",
        "acme",
        "sales",
        sales.as_str(),
    ] {
        assert!(first.contains(cell), "{cell} in {first}");
    }
    for _ in 0..3 {
        assert!(all_table.next_line().contains(&support));
    }
    drop(support_json);
    drop(all_table);

    // The list: newest first, filtered, paged.
    let listed = cli
        .ok(&["violations", "--agent", "support", "--json"])
        .json();
    let inputs: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["matching_input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["c@gmail.com", "b@gmail.com", "a@gmail.com"]);
    assert_eq!(listed["next_cursor"], Value::Null);
    let page = cli
        .ok(&["violations", "--agent", "support", "--limit", "2"])
        .stdout;
    let lines: Vec<&str> = page.lines().collect();
    assert_eq!(lines.len(), 4, "{page}");
    assert!(
        lines[0].starts_with("TIME") && lines[1].contains("c@gmail.com"),
        "{page}"
    );
    let cursor = lines[3].strip_prefix("more: --cursor ").unwrap();
    let rest = cli
        .ok(&[
            "violations",
            "--agent",
            "support",
            "--limit",
            "2",
            "--cursor",
            cursor,
        ])
        .stdout;
    assert_eq!(rest.lines().count(), 2, "{rest}");
    assert!(
        rest.contains("a@gmail.com") && !rest.contains("more:"),
        "{rest}"
    );
    let all = cli
        .ok(&["violations", "--limit", "1", "--all", "--json"])
        .json();
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "{all}");
    assert_eq!(all["next_cursor"], Value::Null);
    let one_run = cli.ok(&["violations", "--run", &sales, "--json"]).json();
    assert_eq!(one_run["items"].as_array().unwrap().len(), 1);
    let by_type = cli
        .ok(&["violations", "--rule-type", "cost", "--json"])
        .json();
    assert_eq!(by_type["items"], json!([]));
    let recent = cli.ok(&["violations", "--since", "1h", "--json"]).json();
    assert_eq!(recent["items"].as_array().unwrap().len(), 4);
    let old = cli.ok(&["violations", "--until", "1h", "--json"]).json();
    assert_eq!(old["items"], json!([]));
    let stats = cli
        .ok(&[
            "violations",
            "--agent",
            "support",
            "stats",
            "--bucket",
            "1d",
            "--json",
        ])
        .json();
    let counted: u64 = stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 3, "{stats}");
    let table = cli.ok(&["violations", "stats", "--bucket", "1d"]).stdout;
    assert!(table.starts_with("START"), "{table}");
    let counted: u64 = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, 4, "{table}");

    // Runs: listed with filters, shown with their actions and why.
    let runs = cli
        .ok(&["runs", "list", "--agent", "support", "--json"])
        .json();
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    assert_eq!(runs["items"][0]["id"], json!(support));
    let table = cli.ok(&["runs", "list", "--status", "running"]).stdout;
    assert!(
        table.starts_with("ID") && table.contains(&support) && table.contains(&sales),
        "{table}"
    );
    assert_eq!(
        cli.ok(&["runs", "list", "--status", "completed"])
            .stdout
            .lines()
            .count(),
        1
    );
    let shown = cli.ok(&["runs", "show", &support]).stdout;
    assert!(shown.contains("status:    running"), "{shown}");
    assert!(shown.contains(&format!("{id}@1")), "{shown}");
    let actions: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.starts_with("AT"))
        .skip(1)
        .collect();
    assert_eq!(actions.len(), 4, "{shown}");
    assert!(
        actions[0].contains("allow") && actions[0].contains("gmail.send_email"),
        "{shown}"
    );
    assert!(
        actions[3].contains("block") && actions[3].contains("Block external email@1 r1 (tool): "),
        "{shown}"
    );
    let run = cli.ok(&["runs", "show", &support, "--json"]).json();
    assert_eq!(run["actions"].as_array().unwrap().len(), 4);

    // Usage errors exit 2, refusals 1.
    assert_eq!(cli.run(&["violations", "--follow", "--limit", "2"]).code, 2);
    assert_eq!(cli.run(&["violations", "--limit", "2", "stats"]).code, 2);
    assert_eq!(cli.run(&["violations", "--rule-type", "nope"]).code, 2);
    assert_eq!(cli.run(&["violations", "--since", "yesterday"]).code, 2);
    assert_eq!(cli.run(&["runs", "show", "run_nope"]).code, 1);
    let refused = cli.run(&["violations", "--cursor", "garbage"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    stop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two nodes on one PostgreSQL database: a stream followed on one node shows the blocks the
/// other node answers, in order, and its own once each (a node skips its own announcements).
#[test]
fn a_followed_stream_shows_the_blocks_of_every_node_on_postgres() {
    let Some(schema) = crate::serve::postgres_schema("nodes") else {
        return;
    };
    let url =
        format!("postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{schema}");
    let key = "a preset key for both nodes 0123456789";
    let node = || {
        crate::serve::start_with(
            &["serve", "--listen", "127.0.0.1:0", "--database", &url],
            &[("CHARTER_BOOTSTRAP_KEY", key)],
        )
    };
    let (a, b) = (node(), node());
    crate::serve::tenant_with_bot(&a.addr, key);
    let dir = std::env::temp_dir().join(format!("charter-nodes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cli = |server: &crate::serve::Server| Cli {
        url: format!("http://{}", server.addr),
        key: key.to_owned(),
        dir: dir.clone(),
    };
    let policy = cli(&a).file(
        "policy.json",
        r#"{"name": "No mail out", "scope": {"type": "tenant", "tenant_id": "acme"},
            "rules": [{"id": "mail", "type": "tool", "effect": "deny", "tools": ["*.send_email"]}]}"#,
    );
    let id = cli(&a).ok(&["policy", "create", &policy, "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli(&a).ok(&["policy", "activate", &id, "--force"]);

    let on_a = Follower::start(&cli(&a), &["--json"]);
    // A refused email from `server`'s run: the action's id.
    let block = |server: &crate::serve::Server, run: &str| -> String {
        let body =
            json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "x@y.example"}});
        let (status, text) = request(
            &server.addr,
            "POST",
            &format!("/v1/runs/{run}/check"),
            key,
            &body.to_string(),
        );
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["decision"], "block", "{text}");
        answer["action_id"].as_str().unwrap().to_owned()
    };
    let followed = || -> String {
        let event: Value = serde_json::from_str(&on_a.next_line()).unwrap();
        event["action_id"].as_str().unwrap().to_owned()
    };
    let run_b = crate::serve::bot_runs(&b.addr, key, 1).remove(0);
    let run_a = crate::serve::bot_runs(&a.addr, key, 1).remove(0);
    let on_b: Vec<String> = (0..3).map(|_| block(&b, &run_b)).collect();
    let heard: Vec<String> = (0..3).map(|_| followed()).collect();
    assert_eq!(heard, on_b, "the other node's blocks, in order");
    // Its own block once, then the other node's next: no echo of its own in between.
    let own = block(&a, &run_a);
    assert_eq!(followed(), own);
    let next = block(&b, &run_b);
    assert_eq!(followed(), next);

    drop(on_a);
    stop(a);
    stop(b);
    crate::serve::drop_schema(&schema);
    let _ = std::fs::remove_dir_all(&dir);
}
