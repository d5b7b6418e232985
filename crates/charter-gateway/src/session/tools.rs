//! The tools of a session: a `tools/call` checked before it is forwarded and its result before
//! the agent sees it, `tools/list` filtered by what Charter blocks whatever the arguments, and
//! an upstream's `notifications/tools/list_changed` passed on only when what the agent sees
//! changed.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{
    INTERNAL_ERROR, INVALID_PARAMS, OUTPUT_CHANNEL, PROTOCOL_VERSION_META, Reply, Session,
    error_response, lock, response,
};
use crate::charter::CharterError;
use crate::filter::ToolFilter;
use crate::output;
use crate::refusal::{self, Refused};
use crate::timing::CallTimes;

impl Session {
    /// The run's tool filter, read once from its pinned policies.
    pub(super) async fn filter(&self) -> Result<Arc<ToolFilter>, CharterError> {
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

    pub(super) async fn call_tool(
        &self,
        id: Value,
        key: String,
        value: Value,
        line: String,
        read: Option<Instant>,
    ) {
        let mut times = CallTimes::start(read);
        let outcome = self.checked_call(&id, &key, &value, line, &mut times).await;
        if !self.finish(&key) {
            return; // cancelled by the agent: no answer
        }
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
    pub(super) async fn checked_call(
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
        if let Some(refusal) = self
            .refusal(id, &decision, &charter_tool, Refused::Call, modern)
            .await
        {
            return Ok(Some(refusal));
        }
        let line = if self.names.prefixed() {
            let mut value = value.clone();
            value["params"]["name"] = json!(tool);
            value.to_string()
        } else {
            line
        };
        // `names.from_wire` gave a configured upstream: `None` is a cancellation while checking.
        let Some(wait) = self.forward_unless_cancelled(upstream, key, line) else {
            return Ok(None);
        };
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
            if let Some(refusal) = self
                .refusal(id, &decision, &charter_tool, Refused::Output, modern)
                .await
            {
                return Ok(Some(refusal));
            }
        }
        Ok(Some(reply.raw))
    }

    /// The answer to the call `id` when Charter's `decision` on it (or on its result) is not
    /// `allow`, a halt kept for the session's later calls; `None` when it allows.
    async fn refusal(
        &self,
        id: &Value,
        decision: &Value,
        tool: &str,
        refused: Refused,
        modern: bool,
    ) -> Option<String> {
        if decision["decision"] == "allow" {
            return None;
        }
        if decision["decision"] == "halt" {
            self.halt(decision).await;
        }
        Some(response(
            id,
            &refusal::result(decision, tool, refused, modern),
        ))
    }

    pub(super) async fn list_tools_one(
        &self,
        id: Value,
        key: String,
        wait: oneshot::Receiver<Reply>,
        first_page: bool,
    ) {
        let (reply, filter) = tokio::join!(wait, self.filter());
        if !self.finish(&key) {
            return;
        }
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
        {
            let shown = kept.iter().map(|&t| t.clone()).collect();
            let mut catalog = lock(&self.catalog);
            if first_page {
                catalog.show_tools(0, shown);
            } else {
                catalog.show_more_tools(0, shown);
            }
        }
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

    /// The tools of `upstream` that Charter does not block whatever the arguments, with the
    /// upstream's own names.
    pub(super) async fn visible_tools(
        &self,
        upstream: usize,
        filter: &ToolFilter,
    ) -> Option<Vec<Value>> {
        let tools = self.list_all(upstream, "tools/list", "tools").await?;
        Some(
            tools
                .into_iter()
                .filter(|t| {
                    let name = t["name"].as_str().unwrap_or("");
                    !filter.hides(&self.names.to_charter(upstream, name))
                })
                .collect(),
        )
    }

    /// The upstream's tools changed: listed again and filtered; the agent is told only when
    /// the tools it sees changed (or it never listed them).
    pub(super) async fn tools_changed(&self, index: usize, line: String) {
        let _in_order = self.relisting.lock().await;
        if lock(&self.catalog).shown_tools(index).is_none() {
            return self.send_agent(line);
        }
        let filter = match self.filter().await {
            Ok(filter) => filter,
            Err(e) => {
                // The agent's next tools/list fails closed anyway; it may as well ask.
                tracing::warn!("re-filtering the tools after list_changed: {e}");
                return self.send_agent(line);
            }
        };
        let Some(visible) = self.visible_tools(index, &filter).await else {
            return self.send_agent(line);
        };
        if lock(&self.catalog).tools_changed(index, visible) {
            self.send_agent(line);
        } else {
            tracing::debug!(
                upstream = self.names.server(index),
                "tools/list_changed without a change the agent can see: not passed on"
            );
        }
    }

    /// `tools/list` with several upstreams: every page of each, filtered and renamed.
    pub(super) async fn list_tools_all(&self, id: Value, key: String) {
        let filter = match self.filter().await {
            Ok(filter) => filter,
            Err(e) => {
                if self.finish(&key) {
                    self.fail(
                        &id,
                        INTERNAL_ERROR,
                        &format!("Charter could not say which tools are allowed: {e}"),
                    );
                }
                return;
            }
        };
        let lists = futures_util::future::join_all(
            (0..self.upstreams.len()).map(|upstream| self.visible_tools(upstream, &filter)),
        )
        .await;
        let mut all = Vec::new();
        {
            let mut catalog = lock(&self.catalog);
            for (upstream, tools) in lists.into_iter().enumerate() {
                let tools = tools.unwrap_or_default();
                for tool in &tools {
                    let mut tool = tool.clone();
                    let name = tool["name"].as_str().unwrap_or("").to_owned();
                    tool["name"] = json!(self.names.to_wire(upstream, &name));
                    all.push(tool);
                }
                catalog.show_tools(upstream, tools);
            }
        }
        if self.finish(&key) {
            self.send_agent(response(&id, &json!({"tools": all})));
        }
    }
}
