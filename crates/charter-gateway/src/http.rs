//! The Streamable HTTP front, sessions era (protocol revisions up to 2025-11-25): `POST /mcp`
//! carries the agent's messages, `initialize` opens a session (`Mcp-Session-Id`) with its own
//! upstream processes and its own Charter run, `GET /mcp` opens the stream of messages the
//! upstreams send on their own, `DELETE /mcp` ends the session and its run.
//!
//! A request's answer comes back as a server-sent-events stream carrying the progress
//! notifications of that request (matched by its progress token), then the response. Requests
//! and other notifications of the upstreams go on the `GET` stream when one is open, else on an
//! open request stream, else they wait for one. Only loopback `Host` and `Origin` values are
//! accepted (DNS rebinding).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::GatewayError;
use crate::charter::Charter;
use crate::config::Config;
use crate::lock;
use crate::outlet::Outlet;
use crate::session::{INVALID_REQUEST, Session};
use crate::stdio::{Started, start_session, stop_session};
use crate::timing;

/// The session header.
const SESSION_HEADER: &str = "mcp-session-id";

/// Where the messages for the agent go, per session.
#[derive(Debug, Default)]
struct Routes {
    /// Open request streams, by the request's id (its JSON).
    requests: HashMap<String, mpsc::UnboundedSender<String>>,
    /// Progress token (its JSON) → the request id it belongs to.
    tokens: HashMap<String, String>,
    /// The `GET` stream, when open.
    listen: Option<mpsc::UnboundedSender<String>>,
    /// Messages no stream could take yet.
    backlog: Vec<String>,
}

impl Routes {
    /// Delivers one message of the session to the agent.
    fn deliver(&mut self, line: String) {
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            return;
        };
        let is_response = value.get("method").is_none();
        if is_response {
            let key = value["id"].to_string();
            if let Some(stream) = self.requests.remove(&key) {
                self.tokens.retain(|_, id| id != &key);
                let _ = stream.send(line);
            }
            return;
        }
        if let Some(token) = value["params"].get("progressToken")
            && let Some(stream) = self
                .tokens
                .get(&token.to_string())
                .and_then(|id| self.requests.get(id))
        {
            let _ = stream.send(line);
            return;
        }
        if let Some(listen) = &self.listen {
            match listen.send(line) {
                Ok(()) => return,
                Err(mpsc::error::SendError(line)) => {
                    self.listen = None;
                    return self.deliver(line);
                }
            }
        }
        if let Some(stream) = self.requests.values().find(|stream| !stream.is_closed()) {
            let _ = stream.send(line);
            return;
        }
        self.backlog.push(line);
    }

    /// The agent cancelled request `key`: its stream ends now, without an answer (the relay
    /// drops any that comes), instead of staying open until the client goes.
    fn cancelled(&mut self, key: &str) {
        self.requests.remove(key);
        self.tokens.retain(|_, id| id != key);
    }
}

/// One HTTP session.
struct HttpSession {
    session: Arc<Session>,
    started: Mutex<Option<Started>>,
    routes: Arc<Mutex<Routes>>,
    last_seen: Mutex<Instant>,
}

impl HttpSession {
    fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    /// Idle: nothing asked for `timeout`, no request waiting for its answer, no `GET` stream
    /// whose client is still there.
    fn idle(&self, timeout: Duration) -> bool {
        let routes = lock(&self.routes);
        let listening = routes.listen.as_ref().is_some_and(|tx| !tx.is_closed());
        let waiting = routes.requests.values().any(|tx| !tx.is_closed());
        !listening && !waiting && lock(&self.last_seen).elapsed() >= timeout
    }
}

/// What every handler shares.
struct Front {
    config: Config,
    charter: Charter,
    sessions: Mutex<HashMap<String, Arc<HttpSession>>>,
}

/// Serves Streamable HTTP at `/mcp` on `listen` until interrupted (Ctrl-C or SIGTERM); every
/// session's run is then ended.
pub async fn serve(config: &Config, listen: &str) -> Result<(), GatewayError> {
    let key = config
        .key()
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let front = Arc::new(Front {
        charter: Charter::new(&config.charter.url, key),
        config: config.clone(),
        sessions: Mutex::new(HashMap::new()),
    });
    let idle_timeout = config.front.idle_timeout();
    let sweeper = tokio::spawn(sweep(Arc::clone(&front), idle_timeout));
    let app = Router::new()
        .route(
            "/mcp",
            post(post_message).get(open_stream).delete(end_session),
        )
        .with_state(Arc::clone(&front));
    let listener = bind(listen).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| GatewayError::Listen(e.to_string()))?;
    sweeper.abort();
    let sessions: Vec<Arc<HttpSession>> = lock(&front.sessions).drain().map(|(_, s)| s).collect();
    for session in sessions {
        end(&session).await;
    }
    Ok(())
}

/// Listens on `listen`, and says where on standard output, once, for whoever started us
/// (standard output is free with the HTTP front).
pub(crate) async fn bind(
    listen: &str,
) -> Result<impl axum::serve::Listener<Addr = std::net::SocketAddr>, GatewayError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| GatewayError::Listen(format!("{listen}: {e}")))?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        // Small answers go out at once rather than after the agent's acknowledgement.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    let addr = axum::serve::Listener::local_addr(&listener)
        .map_err(|e| GatewayError::Listen(format!("{listen}: {e}")))?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}/mcp");
        let _ = out.flush();
    }
    Ok(listener)
}

/// Ends the sessions idle for `timeout` (an agent that went away without `DELETE`): their runs
/// end and their upstreams stop.
async fn sweep(front: Arc<Front>, timeout: Duration) {
    let period = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        tokio::time::sleep(period).await;
        let expired: Vec<(String, Arc<HttpSession>)> = {
            let mut sessions = lock(&front.sessions);
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| s.idle(timeout))
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| sessions.remove(&id).map(|s| (id, s)))
                .collect()
        };
        for (id, session) in expired {
            tracing::info!(session = %id, "an idle session ended");
            end(&session).await;
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = interrupt.await;
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

async fn end(session: &HttpSession) {
    let started = lock(&session.started).take();
    if let Some(started) = started {
        stop_session(started).await;
    }
    let mut routes = lock(&session.routes);
    routes.listen = None;
    routes.requests.clear();
}

fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}}),
        ),
    )
        .into_response()
}

/// Whether a `Host` or `Origin` value names this machine.
fn is_loopback(value: &str) -> bool {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or(value);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split([':', '/']).next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Refuses requests whose `Host` or `Origin` is not loopback (DNS rebinding).
fn check_origin(headers: &HeaderMap) -> Result<(), Box<Response>> {
    for name in ["host", "origin"] {
        if let Some(value) = headers.get(name) {
            let ok = value.to_str().is_ok_and(is_loopback);
            if !ok {
                return Err(Box::new(jsonrpc_error(
                    StatusCode::FORBIDDEN,
                    -32000,
                    &format!("{name} is not a loopback address"),
                )));
            }
        }
    }
    Ok(())
}

fn session_of(front: &Front, headers: &HeaderMap) -> Result<Arc<HttpSession>, Box<Response>> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32000,
            "Bad Request: no Mcp-Session-Id; start with initialize",
        )));
    };
    lock(&front.sessions).get(id).cloned().ok_or_else(|| {
        Box::new(jsonrpc_error(
            StatusCode::NOT_FOUND,
            -32001,
            "Session not found",
        ))
    })
}

fn new_session_id() -> String {
    use rand::RngExt as _;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().fold(String::with_capacity(32), |mut id, b| {
        use std::fmt::Write as _;
        let _ = write!(id, "{b:02x}");
        id
    })
}

/// Starts a session: its upstreams, its relay, and the routes of its messages to the agent.
fn open_session(front: &Front) -> Result<(String, Arc<HttpSession>), GatewayError> {
    let routes = Arc::new(Mutex::new(Routes::default()));
    let delivered = Arc::clone(&routes);
    // Each message is routed by the task that produced it, under the routes' lock: no task
    // in between to wake.
    let to_agent = Outlet::Call(Arc::new(move |line| lock(&delivered).deliver(line)));
    let started = start_session(&front.config, &front.charter, to_agent)?;
    let session = Arc::new(HttpSession {
        session: Arc::clone(&started.session),
        started: Mutex::new(Some(started)),
        routes,
        last_seen: Mutex::new(Instant::now()),
    });
    let id = new_session_id();
    lock(&front.sessions).insert(id.clone(), Arc::clone(&session));
    Ok((id, session))
}

/// The events of a stream: everything routed to it. A request's stream closes after its
/// response (its sender is dropped when the response is routed).
fn events(
    rx: mpsc::UnboundedReceiver<String>,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((Ok(Event::default().event("message").data(line)), rx))
    })
}

async fn post_message(
    State(front): State<Arc<Front>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let read = timing::now();
    if let Err(refused) = check_origin(&headers) {
        return *refused;
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return jsonrpc_error(StatusCode::BAD_REQUEST, -32700, "Parse error: not JSON");
    };
    if !value.is_object() {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "JSON-RPC batches are not supported by the Charter gateway",
        );
    }
    // One line per message towards stdio upstreams: the body as it came unless it spans lines.
    let line = match std::str::from_utf8(&body) {
        Ok(text) if !text.contains(['\n', '\r']) => text.to_owned(),
        _ => value.to_string(),
    };
    let method = value.get("method").and_then(Value::as_str);
    let id = value.get("id").filter(|id| !id.is_null());
    let (session_id, session) = if method == Some("initialize")
        && !headers.contains_key(SESSION_HEADER)
    {
        match open_session(&front) {
            Ok((id, session)) => (Some(id), session),
            Err(e) => {
                tracing::error!("starting a session: {e}");
                return jsonrpc_error(StatusCode::INTERNAL_SERVER_ERROR, -32603, &e.to_string());
            }
        }
    } else {
        match session_of(&front, &headers) {
            Ok(session) => (None, session),
            Err(refused) => return *refused,
        }
    };
    session.touch();
    let (Some(_), Some(id)) = (method, id) else {
        // A notification, or the agent's answer to an upstream's request.
        if method == Some("notifications/cancelled") {
            lock(&session.routes).cancelled(&value["params"]["requestId"].to_string());
        }
        session.session.from_agent_parsed(value, line, read);
        return StatusCode::ACCEPTED.into_response();
    };
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let mut routes = lock(&session.routes);
        let key = id.to_string();
        if let Some(token) = value["params"]["_meta"].get("progressToken") {
            routes.tokens.insert(token.to_string(), key.clone());
        }
        routes.requests.insert(key, tx);
    }
    session.session.from_agent_parsed(value, line, read);
    let mut response = Sse::new(events(rx)).into_response();
    if let Some(session_id) = session_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(SESSION_HEADER, session_id);
    }
    response
}

async fn open_stream(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(refused) = check_origin(&headers) {
        return *refused;
    }
    let session = match session_of(&front, &headers) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    session.touch();
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    {
        let mut routes = lock(&session.routes);
        for line in routes.backlog.drain(..) {
            let _ = tx.send(line);
        }
        routes.listen = Some(tx);
    }
    Sse::new(events(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn end_session(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(refused) = check_origin(&headers) {
        return *refused;
    }
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32000,
            "Bad Request: no Mcp-Session-Id",
        );
    };
    let session = lock(&front.sessions).remove(id);
    match session {
        Some(session) => {
            end(&session).await;
            StatusCode::OK.into_response()
        }
        None => jsonrpc_error(StatusCode::NOT_FOUND, -32001, "Session not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_and_origins_pass() {
        for ok in [
            "localhost",
            "localhost:8931",
            "127.0.0.1:1",
            "[::1]:80",
            "http://localhost:3000",
            "http://127.0.0.1",
        ] {
            assert!(is_loopback(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8931",
            "http://localhost.evil.example",
            "10.0.0.1",
        ] {
            assert!(!is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn routes_send_progress_to_its_request_and_the_rest_to_the_listen_stream() {
        let mut routes = Routes::default();
        let (request, mut request_rx) = mpsc::unbounded_channel();
        let (listen, mut listen_rx) = mpsc::unbounded_channel();
        routes.requests.insert("7".into(), request);
        routes.tokens.insert("\"p\"".into(), "7".into());
        routes.deliver(r#"{"jsonrpc":"2.0","id":"e1","method":"elicitation/create"}"#.into());
        assert_eq!(routes.backlog.len(), 0, "an open request stream takes it");
        assert!(request_rx.try_recv().is_ok());
        routes.listen = Some(listen);
        routes.deliver(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1}}"#.into(),
        );
        routes.deliver(r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#.into());
        routes.deliver(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#.into());
        assert!(request_rx.try_recv().unwrap().contains("progress"));
        assert!(request_rx.try_recv().unwrap().contains("result"));
        assert!(
            listen_rx
                .try_recv()
                .unwrap()
                .contains("notifications/message")
        );
        assert!(routes.requests.is_empty() && routes.tokens.is_empty());
    }

    #[test]
    fn a_cancelled_request_stream_ends_and_closed_streams_take_nothing() {
        let mut routes = Routes::default();
        let (cancelled, mut cancelled_rx) = mpsc::unbounded_channel();
        let (gone, gone_rx) = mpsc::unbounded_channel();
        let (open, mut open_rx) = mpsc::unbounded_channel();
        routes.requests.insert("1".into(), cancelled);
        routes.tokens.insert("\"p\"".into(), "1".into());
        routes.cancelled("1");
        assert!(routes.tokens.is_empty());
        // Its sender is gone: the SSE stream reading it ends.
        assert!(cancelled_rx.try_recv().is_err() && cancelled_rx.is_closed());
        // A stream whose client went takes nothing: the message waits for a stream.
        drop(gone_rx);
        routes.requests.insert("2".into(), gone);
        routes.deliver(r#"{"jsonrpc":"2.0","id":"e1","method":"elicitation/create"}"#.into());
        assert_eq!(routes.backlog.len(), 1);
        routes.requests.insert("3".into(), open);
        routes.deliver(r#"{"jsonrpc":"2.0","id":"e2","method":"elicitation/create"}"#.into());
        assert!(open_rx.try_recv().is_ok_and(|m| m.contains("e2")));
    }
}
