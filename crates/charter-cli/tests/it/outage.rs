//! A bad day for the database: PostgreSQL cut off mid-load (every connection dropped, new
//! ones refused) and back, and SQLite's disk full and then given room. Checks are refused with
//! 503 `unavailable`, never answered without being recorded, and the node recovers by itself.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::serve::{
    bot_runs, drop_schema, postgres_schema, request, start_with, stop, stored_decisions,
    tenant_with_bot, try_request,
};

/// A TCP proxy in front of a server that a test cuts (every connection through it dropped, new
/// ones refused: nothing listens on its port) and restores.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    listening: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    accepting: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            open: Arc::new(AtomicBool::new(true)),
            listening: Arc::new(AtomicBool::new(true)),
            done: Arc::default(),
            streams: Arc::default(),
            accepting: None,
        };
        let (open, listening, done, streams) = (
            proxy.open.clone(),
            proxy.listening.clone(),
            proxy.done.clone(),
            proxy.streams.clone(),
        );
        let accepting = std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !done.load(Ordering::SeqCst) {
                if !open.load(Ordering::SeqCst) {
                    listener = None;
                    listening.store(false, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let Some(bound) = &listener else {
                    listener = TcpListener::bind(("127.0.0.1", port)).ok();
                    listening.store(listener.is_some(), Ordering::SeqCst);
                    continue;
                };
                bound.set_nonblocking(true).unwrap();
                match bound.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        if let Ok(server) = TcpStream::connect(upstream) {
                            relay(&client, &server, &streams);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        proxy.accepting = Some(accepting);
        proxy
    }

    /// Drops every connection and stops listening.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        while self.listening.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Listens again.
    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
        while !self.listening.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Copies bytes both ways between `client` and `server` until either side closes; both are
/// kept in `streams` for a cut.
fn relay(client: &TcpStream, server: &TcpStream, streams: &Mutex<Vec<TcpStream>>) {
    let mut kept = streams.lock().unwrap();
    kept.push(client.try_clone().unwrap());
    kept.push(server.try_clone().unwrap());
    for (mut from, mut to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server.try_clone().unwrap(), client.try_clone().unwrap()),
    ] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}

/// What a client of the load was answered.
#[derive(Debug, Clone)]
struct Answer {
    at: Instant,
    status: Option<u16>,
    /// The action id of a 200, the error code of anything else.
    said: String,
}

/// Checks from one client per run, each as fast as answered, until `stop`.
fn load(
    addr: &str,
    key: &str,
    runs: &[String],
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Vec<Answer>>> {
    runs.iter()
        .map(|run| {
            let (addr, key, run, stop) =
                (addr.to_owned(), key.to_owned(), run.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let answer = try_request(
                        &addr,
                        "POST",
                        &format!("/v1/runs/{run}/check"),
                        &key,
                        r#"{"kind": "tool_call", "tool": "search.web", "args": {"q": "weather"}}"#,
                    );
                    let (status, said) = match &answer {
                        Some((200, body)) => {
                            let decision: serde_json::Value = serde_json::from_str(body).unwrap();
                            (
                                Some(200),
                                decision["action_id"].as_str().unwrap().to_owned(),
                            )
                        }
                        Some((status, body)) => {
                            let error: serde_json::Value =
                                serde_json::from_str(body).unwrap_or_default();
                            (Some(*status), error["error"]["code"].to_string())
                        }
                        None => (None, String::new()),
                    };
                    answers.push(Answer {
                        at: Instant::now(),
                        status,
                        said,
                    });
                }
                answers
            })
        })
        .collect()
}

/// Every action id acknowledged with a 200 is among the run's stored actions.
fn all_stored(addr: &str, key: &str, run: &str, answers: &[Answer]) {
    let stored = stored_decisions(addr, key, run);
    for answer in answers.iter().filter(|a| a.status == Some(200)) {
        assert!(
            stored.contains_key(&answer.said),
            "acknowledged {} of {run} is not stored",
            answer.said
        );
    }
}

/// PostgreSQL cut off under load from eight clients for longer than a request waits for a
/// connection, then back: every answer is a recorded decision or a 503 `unavailable` (never a
/// 500, never a decision that was not stored); `/readyz` says not ready meanwhile; checks
/// succeed again by themselves once the database is back. A stream followed through the cut
/// says afterwards that other nodes' events may have been missed.
#[test]
fn a_database_cut_mid_load_is_refused_with_503_and_the_node_recovers() {
    let Some(schema) = postgres_schema("outage") else {
        return;
    };
    let proxy = Proxy::start("127.0.0.1:5432");
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/test?options=-c%20search_path%3D{schema}",
        proxy.port
    );
    let server = start_with(
        &["serve", "--listen", "127.0.0.1:0", "--database", &url],
        &[],
    );
    let key = server.key.clone().unwrap();
    let addr = server.addr.clone();
    tenant_with_bot(&addr, &key);
    let runs = bot_runs(&addr, &key, 8);
    let cli = crate::cli::Cli {
        url: format!("http://{addr}"),
        key: key.clone(),
        dir: std::env::temp_dir(),
    };
    let follower = crate::monitor::Follower::start(&cli, &["--json"]);
    let stop_load = Arc::new(AtomicBool::new(false));
    let clients = load(&addr, &key, &runs, &stop_load);

    std::thread::sleep(Duration::from_secs(1));
    proxy.cut();
    let cut_at = Instant::now();
    // Longer than the 5 s a request waits for a connection: requests are refused, not held.
    std::thread::sleep(Duration::from_secs(7));
    let (ready, why) = request(&addr, "GET", "/readyz", &key, "");
    assert_eq!(ready, 503, "{why}");
    proxy.restore();
    let restored_at = Instant::now();
    // Recovered: a check from a new run is answered within seconds.
    let mut recovered = None;
    while restored_at.elapsed() < Duration::from_secs(30) {
        let (status, _) = request(
            &addr,
            "POST",
            "/v1/runs",
            &key,
            r#"{"agent_id": "bot", "tenant_id": "acme"}"#,
        );
        if status == 201 {
            recovered = Some(restored_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let recovered = recovered.expect("the node did not recover within 30 s of the database");
    let said = follower.next_said();
    assert!(
        said.contains("events of other nodes may have been missed"),
        "{said}"
    );
    drop(follower);
    std::thread::sleep(Duration::from_secs(1));
    stop_load.store(true, Ordering::SeqCst);
    let answered: Vec<Vec<Answer>> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    let all = || answered.iter().flatten();
    for answer in all() {
        match answer.status {
            Some(200) => {}
            Some(503) => assert_eq!(answer.said, "\"unavailable\"", "{answer:?}"),
            _ => panic!("a check was answered neither a decision nor 503: {answer:?}"),
        }
    }
    let refused = all().filter(|a| a.status == Some(503)).count();
    assert!(
        refused > 0,
        "no check was refused while the database was away"
    );
    let before = all()
        .filter(|a| a.status == Some(200) && a.at < cut_at)
        .count();
    let after = all()
        .filter(|a| a.status == Some(200) && a.at > restored_at + recovered)
        .count();
    assert!(
        before > 0 && after > 0,
        "decided before the cut {before}, after recovery {after}"
    );
    assert_eq!(request(&addr, "GET", "/readyz", &key, "").0, 200);
    for (run, answers) in runs.iter().zip(&answered) {
        all_stored(&addr, &key, run, answers);
    }
    eprintln!(
        "database cut 7 s: {before} checks decided before, {refused} refused with 503, \
         recovered {recovered:?} after it came back, {after} decided after"
    );
    stop(server);
    drop(proxy);
    drop_schema(&schema);
}

/// A small filesystem of its own (tmpfs), unmounted when dropped.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    /// `None` where this process may not mount (not root): allowed locally, never under CI.
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = std::env::temp_dir().join(format!("charter-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            other => {
                let _ = std::fs::remove_dir(&dir);
                assert!(
                    !std::env::var("CI").is_ok_and(|v| v == "true"),
                    "CI=true but a small filesystem cannot be mounted: {other:?}"
                );
                eprintln!("SKIPPED: cannot mount a tmpfs for the disk-full test: {other:?}");
                None
            }
        }
    }

    fn resize(&self, megabytes: u32) {
        let resized = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(resized.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SQLite on a full disk: checks are refused with 503 `unavailable` (never a 500, never a
/// decision that was not stored) and succeed again by themselves once there is room; every
/// acknowledged check is stored, also after a restart.
#[test]
fn a_full_disk_refuses_checks_with_503_and_loses_nothing_acknowledged() {
    let Some(disk) = SmallDisk::mount(4) else {
        return;
    };
    let data = disk.dir.join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_arg];
    let server = start_with(&args, &[]);
    let key = server.key.clone().unwrap();
    let addr = server.addr.clone();
    tenant_with_bot(&addr, &key);
    let runs = bot_runs(&addr, &key, 4);
    // Large actions fill the disk within seconds.
    let body = format!(
        r#"{{"kind": "tool_call", "tool": "files.write", "args": {{"text": "{}"}}}}"#,
        "x".repeat(8_000)
    );
    let mut answered: Vec<Vec<Answer>> = vec![Vec::new(); runs.len()];
    let started = Instant::now();
    let mut full_at = None;
    'filling: while started.elapsed() < Duration::from_mins(2) {
        for (run, answers) in runs.iter().zip(answered.iter_mut()) {
            let (status, said) =
                request(&addr, "POST", &format!("/v1/runs/{run}/check"), &key, &body);
            let value: serde_json::Value = serde_json::from_str(&said).unwrap_or_default();
            let said = match status {
                200 => value["action_id"].as_str().unwrap().to_owned(),
                _ => value["error"]["code"].to_string(),
            };
            answers.push(Answer {
                at: Instant::now(),
                status: Some(status),
                said,
            });
            if status != 200 {
                full_at = Some(Instant::now());
                break 'filling;
            }
        }
    }
    let full_at = full_at.expect("the disk never filled");
    let refused = answered
        .iter()
        .flatten()
        .find(|a| a.status != Some(200))
        .unwrap();
    assert_eq!(
        (refused.status, refused.said.as_str()),
        (Some(503), "\"unavailable\""),
        "{refused:?}"
    );
    // Still refused while full, and the process stays up.
    let (status, said) = request(
        &addr,
        "POST",
        &format!("/v1/runs/{}/check", runs[0]),
        &key,
        &body,
    );
    assert_eq!(status, 503, "{said}");

    disk.resize(64);
    let mut recovered = None;
    while full_at.elapsed() < Duration::from_secs(30) {
        let (status, said) = request(
            &addr,
            "POST",
            &format!("/v1/runs/{}/check", runs[0]),
            &key,
            &body,
        );
        let value: serde_json::Value = serde_json::from_str(&said).unwrap_or_default();
        if status == 200 {
            answered[0].push(Answer {
                at: Instant::now(),
                status: Some(200),
                said: value["action_id"].as_str().unwrap().to_owned(),
            });
            recovered = Some(full_at.elapsed());
            break;
        }
        assert_eq!(status, 503, "{said}");
        std::thread::sleep(Duration::from_millis(100));
    }
    recovered.expect("checks were not answered again once the disk had room");
    for (run, answers) in runs.iter().zip(&answered) {
        all_stored(&addr, &key, run, answers);
    }
    stop(server);
    let server = start_with(&args, &[]);
    for (run, answers) in runs.iter().zip(&answered) {
        all_stored(&server.addr, &key, run, answers);
    }
    let decided = answered
        .iter()
        .flatten()
        .filter(|a| a.status == Some(200))
        .count();
    eprintln!("disk full after {decided} checks; recovered {recovered:?} after the resize");
    stop(server);
}
