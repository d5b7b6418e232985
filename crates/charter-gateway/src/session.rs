//! One MCP session through the gateway: the agent on one side, the upstream MCP servers on the
//! other, and a Charter run for the session.
//!
//! The data path is a thin JSON-RPC relay over `serde_json::Value`: messages the gateway does
//! not change are forwarded as the exact line it read, so unknown fields, `_meta`, progress
//! tokens and ids reach the other side untouched. It inspects `initialize` (the run starts),
//! `tools/list` (tools Charter blocks whatever the arguments are left out), `tools/call` (the
//! call is checked before it is forwarded, the result before it is returned) and, with several
//! upstreams, renames tools and merges lists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::charter::{Charter, CharterError};
use crate::filter::ToolFilter;
use crate::names::Names;
use crate::outlet::Outlet;
use crate::output;
use crate::refusal::{self, Refused};
use crate::timing::{self, CallTimes};

/// JSON-RPC: the message is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request (a batch, here).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: bad parameters (an unknown tool).
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: internal error; the gateway fails closed with it when Charter gives no answer.
pub const INTERNAL_ERROR: i64 = -32603;

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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// Being checked, not forwarded yet.
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
                let wait = self.forward(0, &key, line);
                let session = Arc::clone(self);
                tokio::spawn(async move { session.list_tools_one(id, key, wait).await });
            }
            "tools/list" => {
                let session = Arc::clone(self);
                tokio::spawn(async move { session.list_tools_all(id).await });
            }
            _ if !self.names.prefixed() => {
                // One upstream: forwarded now, in order, and answered as it comes.
                let wait = self.forward(0, &key, line);
                let session = Arc::clone(self);
                tokio::spawn(async move {
                    let reply = wait.await;
                    session.done(&key);
                    match reply {
                        Ok(reply) => session.send_agent(reply.raw),
                        Err(_) => session.upstream_gone(&id),
                    }
                });
            }
            "ping" => self.send_agent(response(&id, &json!({}))),
            _ => {
                let session = Arc::clone(self);
                let method = method.to_owned();
                tokio::spawn(async move { session.several(&method, id, key, line).await });
            }
        }
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

    fn done(&self, key: &str) {
        lock(&self.inflight).remove(key);
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
                Some(Inflight::At(upstream)) => {
                    if let Some(link) = self.upstreams.get(upstream) {
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
    pub fn from_upstream(&self, index: usize, line: String) {
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
        &self,
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
            (true, None) => self.send_agent(line),
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

    /// The run's tool filter, read once from its pinned policies.
    async fn filter(&self) -> Result<Arc<ToolFilter>, CharterError> {
        self.ensure_run().await?;
        let mut run = self.run.lock().await;
        if let Some(filter) = &run.filter {
            return Ok(Arc::clone(filter));
        }
        let mut policies = Vec::new();
        for id in &run.policies {
            match self.charter.policy(id).await {
                Ok(policy) => policies.push(policy),
                Err(e) if e.status() == Some(403) => {
                    tracing::warn!(
                        "the key cannot read policies (no `read` scope): tools/list is not filtered; every call is still checked"
                    );
                    policies.clear();
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let filter = Arc::new(ToolFilter::from_policies(&policies));
        run.filter = Some(Arc::clone(&filter));
        Ok(filter)
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
        self.done(&key);
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

    async fn call_tool(
        &self,
        id: Value,
        key: String,
        value: Value,
        line: String,
        read: Option<Instant>,
    ) {
        let mut times = CallTimes::start(read);
        let outcome = self.checked_call(&id, &key, &value, line, &mut times).await;
        self.done(&key);
        match outcome {
            Ok(Some(answer)) => self.send_agent(answer),
            Ok(None) => {}
            Err(message) => self.fail(&id, INTERNAL_ERROR, &message),
        }
        CallTimes::mark(&mut times, "written");
        CallTimes::finish(times);
    }

    /// A `tools/call`: its answer for the agent, `None` when cancelled, or the message of an
    /// internal error.
    async fn checked_call(
        &self,
        id: &Value,
        key: &str,
        value: &Value,
        line: String,
        times: &mut Option<CallTimes>,
    ) -> Result<Option<String>, String> {
        let params = &value["params"];
        let Some(wire) = params["name"].as_str() else {
            return Ok(Some(error_response(
                id,
                INVALID_PARAMS,
                "tools/call needs a name",
            )));
        };
        let Some((upstream, tool)) = self.names.from_wire(wire) else {
            return Ok(Some(error_response(
                id,
                INVALID_PARAMS,
                &format!("Unknown tool: {wire}"),
            )));
        };
        let args = match params.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(args @ Value::Object(_)) => args.clone(),
            Some(_) => {
                return Ok(Some(error_response(
                    id,
                    INVALID_PARAMS,
                    "tools/call arguments must be an object",
                )));
            }
        };
        let charter_tool = self.names.to_charter(upstream, tool);
        let modern = params["_meta"].get(PROTOCOL_VERSION_META).is_some();
        let closed =
            |e: CharterError| format!("Charter could not check the call, so it was not made: {e}");
        let (run, halted) = self.ensure_run().await.map_err(closed)?;
        if let Some(halt) = halted {
            return Ok(Some(response(
                id,
                &refusal::result(&halt, &charter_tool, Refused::Call, modern),
            )));
        }
        let action = json!({"kind": "tool_call", "tool": charter_tool, "args": args});
        CallTimes::mark(times, "check_sent");
        let decision = self.charter.check(&run, &action).await.map_err(closed)?;
        CallTimes::mark(times, "check_answered");
        if decision["decision"] != "allow" {
            if decision["decision"] == "halt" {
                self.halt(&decision).await;
            }
            return Ok(Some(response(
                id,
                &refusal::result(&decision, &charter_tool, Refused::Call, modern),
            )));
        }
        let line = if self.names.prefixed() {
            let mut value = value.clone();
            value["params"]["name"] = json!(tool);
            value.to_string()
        } else {
            line
        };
        {
            let mut inflight = lock(&self.inflight);
            if inflight.get(key) != Some(&Inflight::Checking) {
                return Ok(None); // cancelled while being checked
            }
            inflight.insert(key.to_owned(), Inflight::At(upstream));
        }
        let Some(link) = self.upstreams.get(upstream) else {
            return Err("no such upstream".into());
        };
        let wait = link.request(key, line);
        CallTimes::mark(times, "forwarded");
        let reply = wait
            .await
            .map_err(|_| "the upstream MCP server closed before answering".to_owned())?;
        CallTimes::mark_at(times, "upstream_read", reply.read_at);
        CallTimes::mark(times, "upstream_received");
        let Some(result) = reply.value.get("result") else {
            return Ok(Some(reply.raw)); // a protocol error of the upstream, as it is
        };
        let modern = modern || result.get("resultType").is_some();
        for text in output::pieces(result) {
            let action = json!({"kind": "output", "text": text, "channel": OUTPUT_CHANNEL});
            CallTimes::mark(times, "output_sent");
            let decision = self.charter.check(&run, &action).await.map_err(|e| {
                format!("Charter could not check the tool's result, so it was withheld: {e}")
            })?;
            CallTimes::mark(times, "output_answered");
            if decision["decision"] != "allow" {
                if decision["decision"] == "halt" {
                    self.halt(&decision).await;
                }
                return Ok(Some(response(
                    id,
                    &refusal::result(&decision, &charter_tool, Refused::Output, modern),
                )));
            }
        }
        Ok(Some(reply.raw))
    }

    async fn list_tools_one(&self, id: Value, key: String, wait: oneshot::Receiver<Reply>) {
        let (reply, filter) = tokio::join!(wait, self.filter());
        self.done(&key);
        let Ok(reply) = reply else {
            return self.upstream_gone(&id);
        };
        let filter = match filter {
            Ok(filter) => filter,
            Err(e) => {
                return self.fail(
                    &id,
                    INTERNAL_ERROR,
                    &format!("Charter could not say which tools are allowed: {e}"),
                );
            }
        };
        let Some(tools) = reply.value["result"]["tools"].as_array() else {
            return self.send_agent(reply.raw);
        };
        let kept: Vec<&Value> = tools
            .iter()
            .filter(|t| !filter.hides(&self.names.to_charter(0, t["name"].as_str().unwrap_or(""))))
            .collect();
        if kept.len() == tools.len() {
            return self.send_agent(reply.raw);
        }
        let kept: Vec<Value> = kept.into_iter().cloned().collect();
        let mut result = reply.value["result"].clone();
        result["tools"] = Value::Array(kept);
        if result.get("cacheScope").is_some() {
            // The list now depends on who asks (2026-07-28 caching): never share it.
            result["cacheScope"] = json!("private");
        }
        self.send_agent(response(&id, &result));
    }

    /// Sends a request of the gateway's own to `upstream`, and waits for its answer.
    async fn own_request(&self, upstream: usize, method: &str, params: Value) -> Option<Value> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = json!(format!("charter-gateway-{n}"));
        let line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let link = self.upstreams.get(upstream)?;
        link.request(&key_of(&id), line).await.ok().map(|r| r.value)
    }

    /// `tools/list` with several upstreams: every page of each, renamed and filtered.
    async fn list_tools_all(&self, id: Value) {
        let filter = match self.filter().await {
            Ok(filter) => filter,
            Err(e) => {
                return self.fail(
                    &id,
                    INTERNAL_ERROR,
                    &format!("Charter could not say which tools are allowed: {e}"),
                );
            }
        };
        let mut all = Vec::new();
        for upstream in 0..self.upstreams.len() {
            let mut cursor: Option<Value> = None;
            loop {
                let params = match &cursor {
                    Some(cursor) => json!({"cursor": cursor}),
                    None => json!({}),
                };
                let Some(answer) = self.own_request(upstream, "tools/list", params).await else {
                    break;
                };
                for tool in answer["result"]["tools"].as_array().into_iter().flatten() {
                    let name = tool["name"].as_str().unwrap_or("");
                    if filter.hides(&self.names.to_charter(upstream, name)) {
                        continue;
                    }
                    let mut tool = tool.clone();
                    tool["name"] = json!(self.names.to_wire(upstream, name));
                    all.push(tool);
                }
                match answer["result"].get("nextCursor") {
                    Some(next) if !next.is_null() && cursor.as_ref() != Some(next) => {
                        cursor = Some(next.clone());
                    }
                    _ => break,
                }
            }
        }
        self.send_agent(response(&id, &json!({"tools": all})));
    }

    /// Any other request with several upstreams: lists (`*/list`) merged from every upstream's
    /// first page; anything else tried on each upstream in turn until one answers without
    /// an error.
    async fn several(&self, method: &str, id: Value, key: String, line: String) {
        let waits = self.forward_all(&key, &line);
        let mut replies = Vec::new();
        if method.ends_with("/list") {
            for wait in waits {
                replies.push(wait.await);
            }
            self.done(&key);
            let mut merged = serde_json::Map::new();
            for reply in replies.into_iter().flatten() {
                if let Some(result) = reply.value["result"].as_object() {
                    for (field, value) in result {
                        match (merged.get_mut(field), value) {
                            (Some(Value::Array(all)), Value::Array(more)) => {
                                all.extend(more.iter().cloned());
                            }
                            (None, _) if field != "nextCursor" => {
                                merged.insert(field.clone(), value.clone());
                            }
                            _ => {}
                        }
                    }
                }
            }
            return self.send_agent(response(&id, &Value::Object(merged)));
        }
        let mut last = None;
        for wait in waits {
            if let Ok(reply) = wait.await {
                if reply.value.get("error").is_none() {
                    self.done(&key);
                    return self.send_agent(reply.raw);
                }
                last = Some(reply.raw);
            }
        }
        self.done(&key);
        match last {
            Some(raw) => self.send_agent(raw),
            None => self.upstream_gone(&id),
        }
    }
}

/// The `initialize` result of several upstreams: the first's protocol version, every
/// capability any of them has (objects merged), the gateway as the server, instructions joined.
pub fn merge_initialize(results: &[&Value]) -> Value {
    let mut capabilities = serde_json::Map::new();
    let mut instructions = Vec::new();
    for result in results {
        for (name, value) in result["capabilities"].as_object().into_iter().flatten() {
            match (capabilities.get_mut(name), value) {
                (Some(Value::Object(have)), Value::Object(more)) => {
                    for (k, v) in more {
                        have.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                (None, _) => {
                    capabilities.insert(name.clone(), value.clone());
                }
                _ => {}
            }
        }
        if let Some(text) = result["instructions"].as_str() {
            instructions.push(text.to_owned());
        }
    }
    let mut merged = json!({
        "protocolVersion": results.first().map_or(Value::Null, |r| r["protocolVersion"].clone()),
        "capabilities": capabilities,
        "serverInfo": {"name": "charter-mcp-gateway", "version": env!("CARGO_PKG_VERSION")},
    });
    if !instructions.is_empty() {
        merged["instructions"] = json!(instructions.join("\n\n"));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_initialize_results_merge_their_capabilities() {
        let a = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": true}}, "serverInfo": {"name": "a"}});
        let b = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}, "resources": {"subscribe": true}}, "instructions": "b"});
        let merged = merge_initialize(&[&a, &b]);
        assert_eq!(merged["protocolVersion"], "2025-11-25");
        assert_eq!(merged["capabilities"]["tools"]["listChanged"], true);
        assert_eq!(merged["capabilities"]["resources"]["subscribe"], true);
        assert_eq!(merged["serverInfo"]["name"], "charter-mcp-gateway");
        assert_eq!(merged["instructions"], "b");
    }
}
