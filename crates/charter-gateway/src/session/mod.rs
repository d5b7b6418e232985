//! One MCP session through the gateway: the agent on one side, the upstream MCP servers on the
//! other, and a Charter run for the session.
//!
//! The data path is a thin JSON-RPC relay over `serde_json::Value`: messages the gateway does
//! not change are forwarded as the exact line it read, so unknown fields, `_meta`, progress
//! tokens and ids reach the other side untouched. It inspects `initialize` (the run starts),
//! `tools/list` (tools Charter blocks whatever the arguments are left out), `tools/call` (the
//! call is checked before it is forwarded, the result before it is returned), an upstream's
//! `notifications/tools/list_changed` (passed on only when the tools the agent sees changed)
//! and cancellations (routed, and mapped to the other side's request id). With several
//! upstreams it prefixes tool and prompt names, merges every page of the lists, and routes each
//! request to the upstream that owns its tool, prompt or resource (`routing`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::charter::{Charter, CharterError};
use crate::filter::ToolFilter;
use crate::lock;
use crate::names::Names;
use crate::outlet::Outlet;
use crate::routing::Catalog;
use crate::timing;

mod tools;
mod upstreams;

pub use upstreams::merge_initialize;

/// JSON-RPC: the message is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request (a batch, here).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: bad parameters (an unknown tool).
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: internal error; the gateway fails closed with it when Charter gives no answer.
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP: no such resource (with several upstreams, no upstream claims the URI).
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// The most pages the gateway reads of one upstream's list: an upstream whose cursors never
/// end must not keep a request open for ever.
const MAX_PAGES: usize = 1000;

/// The `_meta` key that marks a request of the 2026-07-28 era (no `initialize`: every request
/// names its protocol version).
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// The channel of the `output` actions the gateway checks.
pub const OUTPUT_CHANNEL: &str = "mcp";

/// An answer from an upstream: the message and the exact line it came as.
#[derive(Debug)]
pub struct Reply {
    /// The parsed message.
    pub value: Value,
    /// The line, forwarded as is when the gateway changes nothing.
    pub raw: String,
    /// When it was read from the upstream (with timings on).
    pub read_at: Option<Instant>,
}

/// The gateway's side of one upstream connection.
#[derive(Debug)]
pub struct UpstreamLink {
    send: Outlet,
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    alive: AtomicBool,
}

impl UpstreamLink {
    /// A link that writes lines to `send`.
    pub fn new(send: impl Into<Outlet>) -> UpstreamLink {
        UpstreamLink {
            send: send.into(),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
        }
    }

    /// Sends a request whose id is `key` (the id's JSON); the receiver gets its answer, or an
    /// error once the upstream is gone.
    fn request(&self, key: &str, line: String) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        // A closed upstream answers nothing: the waiting side sees its sender dropped.
        if self.alive.load(Ordering::Acquire) {
            lock(&self.pending).insert(key.to_owned(), tx);
            if !self.send.send(line) || !self.alive.load(Ordering::Acquire) {
                lock(&self.pending).remove(key);
            }
        }
        rx
    }

    fn notify(&self, line: String) {
        self.send.send(line);
    }

    /// Stops waiting for the answer to `key` (the agent cancelled it): a late answer is dropped.
    fn forget(&self, key: &str) {
        lock(&self.pending).remove(key);
    }

    /// Delivers an answer to whoever waits for it.
    fn answer(&self, key: &str, reply: Reply) -> bool {
        match lock(&self.pending).remove(key) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// The upstream is gone: every waiting request fails.
    pub fn closed(&self) {
        self.alive.store(false, Ordering::Release);
        lock(&self.pending).clear();
    }
}

/// The session's run, once started.
#[derive(Debug, Default)]
struct RunState {
    id: Option<String>,
    policies: Vec<String>,
    halt: Option<Value>,
    filter: Option<Arc<ToolFilter>>,
}

/// Where a request of the agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inflight {
    /// Being checked, routed or gathered by the gateway, not forwarded (yet).
    Checking,
    /// Forwarded to this upstream.
    At(usize),
    /// Forwarded to every upstream.
    All,
}

/// One session: the agent's requests, the upstreams' answers, the run.
#[derive(Debug)]
pub struct Session {
    names: Names,
    charter: Charter,
    agent: String,
    tenant: Option<String>,
    upstreams: Vec<UpstreamLink>,
    to_agent: Outlet,
    run: tokio::sync::Mutex<RunState>,
    inflight: Mutex<HashMap<String, Inflight>>,
    /// Requests of the upstreams to the agent: the id the agent sees → upstream and its id.
    relayed: Mutex<HashMap<String, (usize, Value)>>,
    client_info: Mutex<Value>,
    next_id: AtomicU64,
    closing: AtomicBool,
    /// What the upstreams listed: the tools the agent was shown, their resources.
    catalog: Mutex<Catalog>,
    /// One re-listing after a `list_changed` at a time, so they compare against each other in
    /// order.
    relisting: tokio::sync::Mutex<()>,
}

fn key_of(id: &Value) -> String {
    id.to_string()
}

fn response(id: &Value, result: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

fn error_response(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

impl Session {
    /// A session relaying between the agent (`to_agent`) and `upstreams`, named by `names`.
    pub fn new(
        names: Names,
        charter: Charter,
        agent: String,
        tenant: Option<String>,
        upstreams: Vec<UpstreamLink>,
        to_agent: impl Into<Outlet>,
    ) -> Session {
        let catalog = Catalog::new(upstreams.len());
        Session {
            names,
            charter,
            agent,
            tenant,
            upstreams,
            to_agent: to_agent.into(),
            run: tokio::sync::Mutex::new(RunState::default()),
            inflight: Mutex::new(HashMap::new()),
            relayed: Mutex::new(HashMap::new()),
            client_info: Mutex::new(Value::Null),
            next_id: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            catalog: Mutex::new(catalog),
            relisting: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether the session is ending (the agent closed its input).
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// The upstream links, for their readers.
    pub fn upstream(&self, index: usize) -> Option<&UpstreamLink> {
        self.upstreams.get(index)
    }

    fn send_agent(&self, line: String) {
        self.to_agent.send(line);
    }

    fn fail(&self, id: &Value, code: i64, message: &str) {
        self.send_agent(error_response(id, code, message));
    }

    /// One line from the agent, just read.
    pub fn from_agent(self: &Arc<Self>, line: String) {
        self.from_agent_read_at(line, timing::now());
    }

    /// One line from the agent, read at `read` (with timings on: [`timing::now`]).
    pub fn from_agent_read_at(self: &Arc<Self>, line: String, read: Option<Instant>) {
        if line.trim().is_empty() {
            return;
        }
        let value: Value = match serde_json::from_str(&line) {
            Ok(value) => value,
            Err(e) => {
                self.fail(&Value::Null, PARSE_ERROR, &format!("not JSON: {e}"));
                return;
            }
        };
        self.from_agent_parsed(value, line, read);
    }

    /// One message from the agent, already parsed from `line` (the HTTP front parses the body
    /// to route it), read at `read`.
    pub fn from_agent_parsed(self: &Arc<Self>, value: Value, line: String, read: Option<Instant>) {
        if value.is_array() {
            // A batch must never bypass inspection; MCP dropped batches after 2025-03-26.
            self.fail(
                &Value::Null,
                INVALID_REQUEST,
                "JSON-RPC batches are not supported by the Charter gateway",
            );
            return;
        }
        let method = value
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = value.get("id").filter(|id| !id.is_null()).cloned();
        match (method, id) {
            (Some(method), Some(id)) => self.agent_request(&method, id, value, line, read),
            (Some(method), None) => self.agent_notification(&method, &value, line),
            (None, Some(id)) => self.agent_response(&id, value, line),
            (None, None) => {
                tracing::warn!("ignored a message of the agent without method or id");
            }
        }
    }

    fn agent_request(
        self: &Arc<Self>,
        method: &str,
        id: Value,
        value: Value,
        line: String,
        read: Option<Instant>,
    ) {
        let key = key_of(&id);
        match method {
            "initialize" => {
                *lock(&self.client_info) = value["params"]["clientInfo"].clone();
                let waits = self.forward_all(&key, &line);
                let session = Arc::clone(self);
                tokio::spawn(async move { session.initialize(id, key, waits).await });
            }
            "tools/call" => {
                lock(&self.inflight).insert(key.clone(), Inflight::Checking);
                let session = Arc::clone(self);
                tokio::spawn(async move { session.call_tool(id, key, value, line, read).await });
            }
            "tools/list" if !self.names.prefixed() => {
                let first_page = value["params"].get("cursor").is_none_or(Value::is_null);
                let wait = self.forward(0, &key, line);
                let session = Arc::clone(self);
                tokio::spawn(
                    async move { session.list_tools_one(id, key, wait, first_page).await },
                );
            }
            "tools/list" => {
                lock(&self.inflight).insert(key.clone(), Inflight::Checking);
                let session = Arc::clone(self);
                tokio::spawn(async move { session.list_tools_all(id, key).await });
            }
            // One upstream: forwarded now, in order, and answered as it comes.
            _ if !self.names.prefixed() => self.relay(0, id, key, line),
            "ping" => self.send_agent(response(&id, &json!({}))),
            "resources/list" | "resources/templates/list" | "prompts/list" => {
                lock(&self.inflight).insert(key.clone(), Inflight::Checking);
                let session = Arc::clone(self);
                let method = method.to_owned();
                tokio::spawn(async move { session.merged_list(&method, id, key, &value).await });
            }
            "prompts/get"
            | "completion/complete"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe" => {
                lock(&self.inflight).insert(key.clone(), Inflight::Checking);
                let session = Arc::clone(self);
                let method = method.to_owned();
                tokio::spawn(async move { session.routed(&method, id, key, value, line).await });
            }
            _ => {
                let session = Arc::clone(self);
                let method = method.to_owned();
                tokio::spawn(async move { session.several(&method, id, key, line).await });
            }
        }
    }

    /// Forwards a request to `upstream` now and answers the agent with the upstream's answer.
    fn relay(self: &Arc<Self>, upstream: usize, id: Value, key: String, line: String) {
        let wait = self.forward(upstream, &key, line);
        let session = Arc::clone(self);
        tokio::spawn(async move {
            let reply = wait.await;
            if !session.finish(&key) {
                return; // cancelled by the agent: no answer
            }
            match reply {
                Ok(reply) => session.send_agent(reply.raw),
                Err(_) => session.upstream_gone(&id),
            }
        });
    }

    /// Forwards a request that was being checked or routed, unless the agent cancelled it
    /// meanwhile.
    fn forward_unless_cancelled(
        &self,
        upstream: usize,
        key: &str,
        line: String,
    ) -> Option<oneshot::Receiver<Reply>> {
        let link = self.upstreams.get(upstream)?;
        let mut inflight = lock(&self.inflight);
        if inflight.get(key) != Some(&Inflight::Checking) {
            return None;
        }
        inflight.insert(key.to_owned(), Inflight::At(upstream));
        drop(inflight);
        Some(link.request(key, line))
    }

    fn forward(&self, upstream: usize, key: &str, line: String) -> oneshot::Receiver<Reply> {
        lock(&self.inflight).insert(key.to_owned(), Inflight::At(upstream));
        match self.upstreams.get(upstream) {
            Some(link) => link.request(key, line),
            None => oneshot::channel().1,
        }
    }

    fn forward_all(&self, key: &str, line: &str) -> Vec<oneshot::Receiver<Reply>> {
        lock(&self.inflight).insert(key.to_owned(), Inflight::All);
        self.upstreams
            .iter()
            .map(|link| link.request(key, line.to_owned()))
            .collect()
    }

    /// The request is answered now: false when the agent cancelled it (then it gets no answer).
    fn finish(&self, key: &str) -> bool {
        lock(&self.inflight).remove(key).is_some()
    }

    fn upstream_gone(&self, id: &Value) {
        self.fail(
            id,
            INTERNAL_ERROR,
            "the upstream MCP server closed before answering",
        );
    }

    fn agent_notification(&self, method: &str, value: &Value, line: String) {
        if method == "notifications/cancelled" {
            let key = key_of(&value["params"]["requestId"]);
            let mut inflight = lock(&self.inflight);
            match inflight.get(&key).copied() {
                // Not forwarded yet: it never will be.
                Some(Inflight::Checking) => {
                    inflight.remove(&key);
                }
                // Forwarded: the upstream stops, and its answer, should it come, is dropped.
                Some(Inflight::At(upstream)) => {
                    inflight.remove(&key);
                    drop(inflight);
                    if let Some(link) = self.upstreams.get(upstream) {
                        link.forget(&key);
                        link.notify(line);
                    }
                }
                Some(Inflight::All) | None => {
                    drop(inflight);
                    self.notify_all(&line);
                }
            }
            return;
        }
        self.notify_all(&line);
    }

    fn notify_all(&self, line: &str) {
        for link in &self.upstreams {
            link.notify(line.to_owned());
        }
    }

    /// The agent answers a request an upstream sent it (sampling, elicitation, roots, ping).
    fn agent_response(&self, id: &Value, mut value: Value, line: String) {
        let Some((upstream, original)) = lock(&self.relayed).remove(&key_of(id)) else {
            tracing::warn!("ignored an answer of the agent to no request: {id}");
            return;
        };
        let Some(link) = self.upstreams.get(upstream) else {
            return;
        };
        if &original == id {
            link.notify(line);
        } else {
            value["id"] = original;
            link.notify(value.to_string());
        }
    }

    /// One line from upstream `index`.
    pub fn from_upstream(self: &Arc<Self>, index: usize, line: String) {
        let read_at = timing::now();
        if line.trim().is_empty() {
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!(
                upstream = self.names.server(index),
                "ignored a line that is not JSON"
            );
            return;
        };
        self.from_upstream_parsed(index, value, line, read_at);
    }

    /// One message from upstream `index`, already parsed from `line`, read at `read_at`.
    pub fn from_upstream_parsed(
        self: &Arc<Self>,
        index: usize,
        value: Value,
        line: String,
        read_at: Option<Instant>,
    ) {
        let has_method = value.get("method").is_some();
        let id = value.get("id").filter(|id| !id.is_null()).cloned();
        match (has_method, id) {
            (false, Some(id)) => {
                let Some(link) = self.upstreams.get(index) else {
                    return;
                };
                if !link.answer(
                    &key_of(&id),
                    Reply {
                        value,
                        raw: line,
                        read_at,
                    },
                ) {
                    tracing::debug!(
                        upstream = self.names.server(index),
                        "an answer nobody awaits"
                    );
                }
            }
            (true, Some(id)) => {
                // A request to the agent: relayed, under a fresh id when several upstreams
                // could use the same one.
                if self.names.prefixed() {
                    let n = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let agent_id = json!(format!("charter-gateway-{n}"));
                    lock(&self.relayed).insert(key_of(&agent_id), (index, id));
                    let mut value = value;
                    value["id"] = agent_id;
                    self.send_agent(value.to_string());
                } else {
                    lock(&self.relayed).insert(key_of(&id), (index, id));
                    self.send_agent(line);
                }
            }
            (true, None) => self.upstream_notification(index, &value, line),
            (false, None) => {
                tracing::warn!("ignored a message of an upstream without method or id");
            }
        }
    }

    /// The session's run: started on first need (`initialize`, or the first governed request
    /// of a client that skips it).
    async fn ensure_run(&self) -> Result<(String, Option<Value>), CharterError> {
        let mut run = self.run.lock().await;
        if let Some(id) = &run.id {
            return Ok((id.clone(), run.halt.clone()));
        }
        let metadata = json!({
            "source": "charter mcp-gateway",
            "upstreams": (0..self.upstreams.len()).map(|i| self.names.server(i)).collect::<Vec<_>>(),
            "client": lock(&self.client_info).clone(),
        });
        let started = self
            .charter
            .start_run(&self.agent, self.tenant.as_deref(), metadata)
            .await?;
        let Some(id) = started["id"].as_str().map(str::to_owned) else {
            return Err(CharterError::Unreachable {
                url: "/v1/runs".into(),
                message: "answered a run without id".into(),
            });
        };
        tracing::info!(run = %id, "the session's run started");
        run.policies = started["policy_set"]["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect();
        run.id = Some(id.clone());
        Ok((id, None))
    }

    async fn halt(&self, decision: &Value) {
        let mut run = self.run.lock().await;
        if run.halt.is_none() {
            run.halt = Some(decision.clone());
        }
    }

    /// Ends the session's run (on the agent's end of input): `completed`, or `halted` as it is.
    pub async fn end(&self) {
        self.closing.store(true, Ordering::Relaxed);
        let id = self.run.lock().await.id.clone();
        if let Some(id) = id {
            match self.charter.end_run(&id).await {
                Ok(_) => tracing::info!(run = %id, "the session's run ended"),
                Err(e) => tracing::warn!(run = %id, "ending the session's run: {e}"),
            }
        }
    }

    async fn initialize(&self, id: Value, key: String, waits: Vec<oneshot::Receiver<Reply>>) {
        let (run, replies) = tokio::join!(self.ensure_run(), async {
            let mut replies = Vec::new();
            for wait in waits {
                replies.push(wait.await);
            }
            replies
        });
        self.finish(&key);
        if let Err(e) = run {
            // The session may go on: every governed request retries, and fails closed meanwhile.
            tracing::warn!("starting the session's run: {e}");
        }
        let mut replies: Vec<Reply> = match replies.into_iter().collect() {
            Ok(replies) => replies,
            Err(_) => return self.upstream_gone(&id),
        };
        if replies.len() == 1 {
            if let Some(reply) = replies.pop() {
                self.send_agent(reply.raw);
            }
            return;
        }
        if let Some(failed) = replies.iter().find(|r| r.value.get("error").is_some()) {
            return self.send_agent(failed.raw.clone());
        }
        let results: Vec<&Value> = replies.iter().map(|r| &r.value["result"]).collect();
        self.send_agent(response(&id, &merge_initialize(&results)));
    }

    /// A notification of upstream `index` for the agent.
    fn upstream_notification(self: &Arc<Self>, index: usize, value: &Value, line: String) {
        match value["method"].as_str() {
            Some("notifications/tools/list_changed") => {
                let session = Arc::clone(self);
                tokio::spawn(async move { session.tools_changed(index, line).await });
            }
            Some("notifications/resources/list_changed") => {
                lock(&self.catalog).forget_resources(index);
                self.send_agent(line);
            }
            Some("notifications/cancelled") => self.upstream_cancelled(index, value, line),
            _ => self.send_agent(line),
        }
    }

    /// The upstream cancelled a request it sent to the agent: the agent gets it with the id it
    /// saw.
    fn upstream_cancelled(&self, index: usize, value: &Value, line: String) {
        let original = &value["params"]["requestId"];
        let agent_key = {
            let mut relayed = lock(&self.relayed);
            let key = relayed
                .iter()
                .find(|(_, (upstream, id))| *upstream == index && id == original)
                .map(|(key, _)| key.clone());
            key.inspect(|key| {
                relayed.remove(key);
            })
        };
        match agent_key {
            _ if !self.names.prefixed() => self.send_agent(line),
            Some(key) => {
                let mut value = value.clone();
                value["params"]["requestId"] = serde_json::from_str(&key).unwrap_or(Value::Null);
                self.send_agent(value.to_string());
            }
            None => tracing::debug!(
                upstream = self.names.server(index),
                "a cancellation of no request the agent has: dropped"
            ),
        }
    }
}
