//! Two hidden modes for `scripts/bench-gateway`, so that the gateway's overhead can be split
//! into what any proxy pays and what the gateway's own logic costs:
//!
//! - the **null relay**: the first upstream of the configuration behind the configured front
//!   with no logic at all. Over stdio, two threads copy bytes between the agent's pipes and the
//!   child's (the fewest hops and wake-ups a stdio proxy can have); over HTTP, every request to
//!   `/mcp` is forwarded with its MCP headers to the upstream's URL and the answer streamed back
//!   (an HTTP server and an HTTP client, as in the gateway).
//! - **the checks alone**: the `tool_call` and `output` checks the gateway makes per call, sent
//!   by the gateway's own Charter client in a loop, with their round trips printed.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

use crate::GatewayError;
use crate::charter::Charter;
use crate::config::{Config, Front, Transport};
use crate::session::OUTPUT_CHANNEL;

/// Runs the null relay for the first upstream behind the configured front (the upstream must
/// be a command for the stdio front, a URL for the HTTP front).
pub async fn null_relay(config: &Config) -> Result<(), GatewayError> {
    let Some(upstream) = config.upstreams.first() else {
        return Err(GatewayError::Config("no upstream".into()));
    };
    match (&config.front, upstream.transport()) {
        (Front::Stdio, Transport::Stdio { command }) => {
            let mut child = std::process::Command::new(command)
                .args(&upstream.args)
                .envs(&upstream.env)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| GatewayError::Upstream(format!("starting {command}: {e}")))?;
            let (Some(mut to_child), Some(mut from_child)) =
                (child.stdin.take(), child.stdout.take())
            else {
                return Err(GatewayError::Upstream("no pipes".into()));
            };
            let back = std::thread::spawn(move || {
                copy(&mut from_child, &mut std::io::stdout().lock());
            });
            copy(&mut std::io::stdin().lock(), &mut to_child);
            drop(to_child);
            let _ = child.wait();
            let _ = back.join();
            Ok(())
        }
        (Front::Http { listen, .. }, Transport::Http { url }) => {
            let app = Router::new()
                .route("/mcp", any(forward))
                .with_state(Arc::new((reqwest::Client::new(), url.to_owned())));
            axum::serve(crate::http::bind(listen).await?, app)
                .await
                .map_err(|e| GatewayError::Listen(e.to_string()))
        }
        _ => Err(GatewayError::Unsupported(
            "the null relay needs a stdio upstream behind the stdio front, or an HTTP upstream behind the HTTP front".into(),
        )),
    }
}

/// Copies bytes as they come until either side closes.
fn copy(from: &mut impl std::io::Read, to: &mut impl std::io::Write) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() || to.flush().is_err() {
                    return;
                }
            }
        }
    }
}

/// The MCP headers a Streamable HTTP request or answer carries.
const FORWARDED: [&str; 5] = [
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

async fn forward(
    State(state): State<Arc<(reqwest::Client, String)>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (client, url) = &*state;
    let mut request = client.request(method, url).body(body);
    for name in FORWARDED {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in FORWARDED {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

/// Starts a run and sends, `calls` times, the two checks the gateway makes for a call of
/// `tool` (of the first upstream) returning `text`, with the gateway's Charter client; prints
/// each pair's round trip in milliseconds, one JSON array on standard output.
pub async fn time_checks(
    config: &Config,
    calls: usize,
    tool: &str,
    text: &str,
) -> Result<(), GatewayError> {
    let key = config
        .key()
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let charter = Charter::new(&config.charter.url, key);
    let names = crate::names::Names::new(config.upstreams.iter().map(|u| u.name.clone()).collect());
    let unreachable = |e: crate::charter::CharterError| GatewayError::Upstream(e.to_string());
    let run = charter
        .start_run(
            &config.charter.agent,
            config.charter.tenant.as_deref(),
            json!({"source": "charter mcp-gateway --time-checks"}),
        )
        .await
        .map_err(unreachable)?;
    let run = run["id"].as_str().unwrap_or_default().to_owned();
    let call = json!({"kind": "tool_call", "tool": names.to_charter(0, tool), "args": {}});
    let output = json!({"kind": "output", "text": text, "channel": OUTPUT_CHANNEL});
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        charter.check(&run, &call).await.map_err(unreachable)?;
        charter.check(&run, &output).await.map_err(unreachable)?;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = charter.end_run(&run).await;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", json!(samples));
    let _ = out.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_passes_every_byte() {
        let input = b"{\"a\":1}\n{\"b\":2}\n".repeat(10_000);
        let mut output = Vec::new();
        copy(&mut &input[..], &mut output);
        assert_eq!(output, input);
    }
}
