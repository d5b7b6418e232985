//! The stdio front (the agent on the gateway's standard input and output) and stdio upstreams
//! (child processes). Messages are newline-delimited JSON; standard output carries nothing else
//! (logs go to standard error).

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::GatewayError;
use crate::charter::Charter;
use crate::config::{Config, Transport, Upstream};
use crate::names::Names;
use crate::outlet::Outlet;
use crate::session::{Session, UpstreamLink};
use crate::upstream_http::HttpUpstream;

/// Writes every line received to `out`, each followed by a newline, until the senders are gone
/// or `out` is closed.
async fn write_lines(mut rx: mpsc::UnboundedReceiver<String>, mut out: impl AsyncWrite + Unpin) {
    while let Some(line) = rx.recv().await {
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        if out.write_all(&bytes).await.is_err() || out.flush().await.is_err() {
            break;
        }
    }
}

/// A started child process and the channel to its standard input.
struct Spawned {
    child: Child,
    link: UpstreamLink,
    stdout: tokio::process::ChildStdout,
}

fn spawn(upstream: &Upstream, command: &str) -> Result<Spawned, GatewayError> {
    let mut child = Command::new(command)
        .args(&upstream.args)
        .envs(&upstream.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            GatewayError::Upstream(format!("starting {:?} ({command}): {e}", upstream.name))
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(GatewayError::Upstream(format!(
            "starting {:?}: no pipes",
            upstream.name
        )));
    };
    Ok(Spawned {
        child,
        link: UpstreamLink::new(child_outlet(stdin)),
        stdout,
    })
}

/// A child's standard input, written directly by whoever sends.
fn child_outlet(stdin: ChildStdin) -> Outlet {
    #[cfg(unix)]
    {
        let pipe = stdin
            .into_owned_fd()
            .and_then(tokio::net::unix::pipe::Sender::from_owned_fd);
        match pipe {
            Ok(pipe) => Outlet::Pipe(crate::outlet::PipeWriter::new(pipe)),
            Err(e) => {
                tracing::warn!("an upstream's standard input: {e}");
                let (tx, _) = mpsc::unbounded_channel();
                Outlet::Channel(tx)
            }
        }
    }
    #[cfg(not(unix))]
    {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_lines(rx, stdin));
        Outlet::Channel(tx)
    }
}

/// The agent's side: standard input and output as non-blocking pipes when they are pipes (no
/// trip through tokio's blocking pool per message), else through tokio's blocking pool.
fn agent_io() -> (Box<dyn AsyncRead + Unpin + Send>, Outlet) {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        use tokio::net::unix::pipe;
        let input = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Receiver::from_owned_fd);
        let output = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Sender::from_owned_fd);
        let input: Box<dyn AsyncRead + Unpin + Send> = match input {
            Ok(input) => Box::new(input),
            Err(_) => Box::new(tokio::io::stdin()),
        };
        let output = if let Ok(output) = output {
            Outlet::Pipe(crate::outlet::PipeWriter::new(output))
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_lines(rx, tokio::io::stdout()));
            Outlet::Channel(tx)
        };
        (input, output)
    }
    #[cfg(not(unix))]
    {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_lines(rx, tokio::io::stdout()));
        (Box::new(tokio::io::stdin()), Outlet::Channel(tx))
    }
}

/// A session with its upstreams started: the relay, and the child processes to stop when it ends.
pub(crate) struct Started {
    pub(crate) session: Arc<Session>,
    pub(crate) children: Vec<Child>,
    pub(crate) http: Vec<Arc<HttpUpstream>>,
}

/// Starts the upstreams of `config` and a session relaying between them and `to_agent`.
pub(crate) fn start_session(
    config: &Config,
    charter: &Charter,
    to_agent: Outlet,
) -> Result<Started, GatewayError> {
    let names = Names::new(config.upstreams.iter().map(|u| u.name.clone()).collect());
    let mut children = Vec::new();
    let mut links = Vec::new();
    let mut outputs = Vec::new();
    let mut http_lines = Vec::new();
    for (index, upstream) in config.upstreams.iter().enumerate() {
        match upstream.transport() {
            Transport::Stdio { command } => {
                let spawned = spawn(upstream, command)?;
                children.push(spawned.child);
                links.push(spawned.link);
                outputs.push((index, spawned.stdout));
            }
            Transport::Http { url } => {
                let (tx, rx) = mpsc::unbounded_channel();
                links.push(UpstreamLink::new(tx));
                http_lines.push((index, url.to_owned(), rx));
            }
        }
    }
    let session = Arc::new(Session::new(
        names,
        charter.clone(),
        config.charter.agent.clone(),
        config.charter.tenant.clone(),
        links,
        to_agent,
    ));
    let http = http_lines
        .into_iter()
        .map(|(index, url, rx)| HttpUpstream::start(&url, index, Arc::clone(&session), rx))
        .collect();
    for (index, stdout) in outputs {
        let session = Arc::clone(&session);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                session.from_upstream(index, line);
            }
            if !session.closing() {
                tracing::warn!("upstream {index} closed its output: its pending requests fail");
            }
            if let Some(link) = session.upstream(index) {
                link.closed();
            }
        });
    }
    Ok(Started {
        session,
        children,
        http,
    })
}

/// Ends a session: its run ends, its upstream processes are stopped.
pub(crate) async fn stop_session(started: Started) {
    started.session.end().await;
    for upstream in &started.http {
        upstream.close().await;
    }
    for mut child in started.children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// Serves one MCP session on standard input and output until the agent closes its input; the
/// session's run then ends.
pub async fn serve(config: &Config) -> Result<(), GatewayError> {
    let key = config
        .key()
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let charter = Charter::new(&config.charter.url, key);
    let (input, to_agent) = agent_io();
    let started = start_session(config, &charter, to_agent)?;
    let session = Arc::clone(&started.session);
    let mut lines = BufReader::new(input).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => session.from_agent(line),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("reading standard input: {e}");
                break;
            }
        }
    }
    drop(session);
    stop_session(started).await;
    Ok(())
}
