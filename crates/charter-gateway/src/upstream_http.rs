//! Streamable HTTP upstreams, sessions era (protocol revisions up to 2025-11-25): every message
//! the relay sends is sent with `POST` to the upstream's URL; the answer (a JSON body or a stream of
//! server-sent events) comes back to the relay line by line, as from a stdio upstream. The
//! `Mcp-Session-Id` of the `initialize` answer is echoed on every later request, along with the
//! negotiated `MCP-Protocol-Version`; after `notifications/initialized` a `GET` stream carries
//! what the upstream sends on its own; the session is `DELETE`d when the gateway's ends.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::lock;
use crate::session::Session;
use crate::sse::{Decoder, Message};
use crate::timing;

/// What an HTTP upstream connection remembers between requests.
#[derive(Debug, Default)]
struct Connection {
    session_id: Option<String>,
    protocol_version: Option<String>,
}

/// The HTTP side of one upstream: reads the relay's lines for it and POSTs them.
pub(crate) struct HttpUpstream {
    url: String,
    index: usize,
    http: reqwest::Client,
    connection: Mutex<Connection>,
}

impl HttpUpstream {
    /// Starts relaying the lines of `from_session` to `url`; answers go to `session` as
    /// upstream `index`. Returns the handle that ends the upstream session.
    pub(crate) fn start(
        url: &str,
        index: usize,
        session: Arc<Session>,
        mut from_session: mpsc::UnboundedReceiver<String>,
    ) -> Arc<HttpUpstream> {
        let upstream = Arc::new(HttpUpstream {
            url: url.to_owned(),
            index,
            http: reqwest::Client::new(),
            connection: Mutex::new(Connection::default()),
        });
        let this = Arc::clone(&upstream);
        tokio::spawn(async move {
            while let Some(line) = from_session.recv().await {
                let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let method = value.get("method").and_then(Value::as_str).unwrap_or("");
                // The id of a request, whose answer someone awaits.
                let id = value
                    .get("id")
                    .filter(|id| !id.is_null() && !method.is_empty())
                    .cloned();
                if method == "initialize" || id.is_none() {
                    // In order: the session id must be known before anything else is sent,
                    // and notifications and answers are quick.
                    let initialized = method == "notifications/initialized";
                    this.post(&session, line, id).await;
                    if initialized {
                        this.listen(Arc::clone(&session));
                    }
                } else {
                    let this = Arc::clone(&this);
                    let session = Arc::clone(&session);
                    tokio::spawn(async move { this.post(&session, line, id).await });
                }
            }
        });
        upstream
    }

    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, &self.url)
            .header("accept", "application/json, text/event-stream");
        let connection = lock(&self.connection);
        if let Some(id) = &connection.session_id {
            request = request.header("mcp-session-id", id);
        }
        if let Some(version) = &connection.protocol_version {
            request = request.header("mcp-protocol-version", version);
        }
        request
    }

    /// POSTs one message and hands every message of the answer to the relay. A request left
    /// without an answer (unreachable, an HTTP error, a stream cut short) is answered with a
    /// JSON-RPC internal error, so nobody waits for ever.
    async fn post(&self, session: &Arc<Session>, line: String, id: Option<Value>) {
        let request = self
            .request(reqwest::Method::POST)
            .header("content-type", "application/json")
            .body(line);
        let failure = match request.send().await {
            Err(e) => Some(format!("the upstream MCP server is unreachable: {e}")),
            Ok(response) => {
                if let Some(session_id) = response
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                {
                    lock(&self.connection).session_id = Some(session_id.to_owned());
                }
                let status = response.status();
                let answered = self.relay(session, response, id.as_ref()).await;
                if answered || id.is_none() {
                    None
                } else if status.is_success() {
                    Some("the upstream MCP server closed its answer before responding".to_owned())
                } else {
                    Some(format!("the upstream MCP server answered HTTP {status}"))
                }
            }
        };
        if let (Some(message), Some(id)) = (failure, id) {
            tracing::warn!(upstream = self.index, "{message}");
            let error = serde_json::json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": crate::session::INTERNAL_ERROR, "message": message}});
            session.from_upstream(self.index, error.to_string());
        }
    }

    /// Hands the message(s) of an answer to the relay: one JSON body, or each event. True when
    /// a response to `id` was among them.
    async fn relay(
        &self,
        session: &Arc<Session>,
        response: reqwest::Response,
        id: Option<&Value>,
    ) -> bool {
        let mut answered = false;
        let mut deliver = |text: String| {
            answered |= self.deliver(session, text, id);
        };
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !is_sse {
            if let Ok(text) = response.text().await
                && text.trim_start().starts_with('{')
            {
                deliver(text);
            }
            return answered;
        }
        let mut decoder = Decoder::default();
        let mut body = response.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            for message in decoder.feed(&chunk) {
                if let Message::Event { data, .. } = message {
                    deliver(data);
                }
            }
        }
        answered
    }

    /// Hands one message to the relay (parsed once, here); true when it answers `id`.
    fn deliver(&self, session: &Arc<Session>, text: String, id: Option<&Value>) -> bool {
        let read_at = timing::now();
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            session.from_upstream(self.index, text);
            return false;
        };
        // Remember the negotiated version from the initialize answer.
        if let Some(version) = value["result"]["protocolVersion"].as_str()
            && value["result"].get("capabilities").is_some()
        {
            lock(&self.connection).protocol_version = Some(version.to_owned());
        }
        let answered =
            id.is_some_and(|id| value.get("method").is_none() && value.get("id") == Some(id));
        // One line per message for the relay, whatever the upstream's formatting.
        let line = if text.contains(['\n', '\r']) {
            value.to_string()
        } else {
            text
        };
        session.from_upstream_parsed(self.index, value, line, read_at);
        answered
    }

    /// Opens the `GET` stream of what the upstream sends on its own (a server without one
    /// answers 405, which is fine).
    fn listen(self: &Arc<Self>, session: Arc<Session>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let response = this
                .request(reqwest::Method::GET)
                .header("accept", "text/event-stream")
                .send()
                .await;
            if let Ok(response) = response
                && response.status().is_success()
            {
                this.relay(&session, response, None).await;
            }
        });
    }

    /// Ends the upstream session (`DELETE`), when there is one.
    pub(crate) async fn close(&self) {
        if lock(&self.connection).session_id.is_some() {
            let _ = self.request(reqwest::Method::DELETE).send().await;
        }
    }
}
