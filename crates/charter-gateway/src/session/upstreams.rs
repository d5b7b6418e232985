//! Several upstreams behind one session: the lists the gateway reads itself (every page) and
//! merges, requests routed to the upstream that owns a prompt or a resource, and the requests
//! that go to every upstream.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::{INVALID_PARAMS, MAX_PAGES, RESOURCE_NOT_FOUND, Session, key_of, lock, response};
use crate::routing::Route;

impl Session {
    /// Sends a request of the gateway's own to `upstream`, and waits for its answer.
    pub(super) async fn own_request(
        &self,
        upstream: usize,
        method: &str,
        params: Value,
    ) -> Option<Value> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = json!(format!("charter-gateway-{n}"));
        let line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let link = self.upstreams.get(upstream)?;
        link.request(&key_of(&id), line).await.ok().map(|r| r.value)
    }

    /// Every page of the list `method` of `upstream`: the items under `field`; `None` when
    /// the upstream answers an error (it lists nothing of the kind) or is gone.
    pub(super) async fn list_all(
        &self,
        upstream: usize,
        method: &str,
        field: &str,
    ) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(cursor) => json!({"cursor": cursor}),
                None => json!({}),
            };
            let answer = self.own_request(upstream, method, params).await?;
            let result = answer.get("result")?;
            items.extend(result[field].as_array().into_iter().flatten().cloned());
            match result.get("nextCursor") {
                Some(next) if !next.is_null() && cursor.as_ref() != Some(next) => {
                    cursor = Some(next.clone());
                }
                _ => return Some(items),
            }
        }
        tracing::warn!(
            upstream = self.names.server(upstream),
            "{method}: more than {MAX_PAGES} pages, the rest is left out"
        );
        Some(items)
    }

    /// `resources/list`, `resources/templates/list` or `prompts/list` with several upstreams:
    /// every page of every upstream in one answer, without a cursor (prompts renamed like
    /// tools). What the resources lists say is remembered for routing.
    pub(super) async fn merged_list(&self, method: &str, id: Value, key: String, value: &Value) {
        if value["params"].get("cursor").is_some_and(|c| !c.is_null()) {
            if self.finish(&key) {
                self.fail(
                    &id,
                    INVALID_PARAMS,
                    "Invalid cursor: the gateway answers merged lists whole, without cursors",
                );
            }
            return;
        }
        let field = match method {
            "resources/list" => "resources",
            "resources/templates/list" => "resourceTemplates",
            _ => "prompts",
        };
        let lists = futures_util::future::join_all(
            (0..self.upstreams.len()).map(|upstream| self.list_all(upstream, method, field)),
        )
        .await;
        let mut all = Vec::new();
        {
            let mut catalog = lock(&self.catalog);
            for (upstream, items) in lists.into_iter().enumerate() {
                let items = items.unwrap_or_default();
                match method {
                    "resources/list" => catalog.set_resources(upstream, &items),
                    "resources/templates/list" => catalog.set_templates(upstream, &items),
                    _ => {}
                }
                for mut item in items {
                    if method == "prompts/list"
                        && let Some(name) = item["name"].as_str()
                    {
                        item["name"] = json!(self.names.to_wire(upstream, name));
                    }
                    all.push(item);
                }
            }
        }
        if self.finish(&key) {
            self.send_agent(response(&id, &json!({ field: all })));
        }
    }

    /// A request about one prompt or resource, with several upstreams: sent to the upstream
    /// that owns it (a prompt by its prefix, a resource by its URI), the prompt's name
    /// unprefixed.
    pub(super) async fn routed(
        &self,
        method: &str,
        id: Value,
        key: String,
        mut value: Value,
        line: String,
    ) {
        let params = &mut value["params"];
        let target = match (method, params["ref"]["type"].as_str()) {
            // `get_mut`, not an index: indexing params that are not an object would panic.
            ("prompts/get", _) => match params.get_mut("name") {
                Some(name) => self.route_name(name),
                None => Err((INVALID_PARAMS, "a prompt name is needed".to_owned())),
            },
            ("completion/complete", Some("ref/prompt")) => {
                self.route_name(&mut params["ref"]["name"])
            }
            ("completion/complete", Some("ref/resource")) => {
                let uri = params["ref"]["uri"].as_str().map(str::to_owned);
                self.route_uri(uri.as_deref()).await.map(|u| (u, false))
            }
            ("completion/complete", _) => Err((
                INVALID_PARAMS,
                "completion/complete needs a ref/prompt or a ref/resource".to_owned(),
            )),
            _ => {
                let uri = params["uri"].as_str().map(str::to_owned);
                self.route_uri(uri.as_deref()).await.map(|u| (u, false))
            }
        };
        let (upstream, renamed) = match target {
            Ok(target) => target,
            Err((code, message)) => {
                if self.finish(&key) {
                    self.fail(&id, code, &message);
                }
                return;
            }
        };
        let line = if renamed { value.to_string() } else { line };
        let Some(wait) = self.forward_unless_cancelled(upstream, &key, line) else {
            return;
        };
        let reply = wait.await;
        if !self.finish(&key) {
            return;
        }
        match reply {
            Ok(reply) => self.send_agent(reply.raw),
            Err(_) => self.upstream_gone(&id),
        }
    }

    /// The upstream of a prefixed prompt name, the name replaced by the upstream's own; true
    /// for "renamed".
    pub(super) fn route_name(&self, name: &mut Value) -> Result<(usize, bool), (i64, String)> {
        let Some(wire) = name.as_str() else {
            return Err((INVALID_PARAMS, "a prompt name is needed".to_owned()));
        };
        let Some((upstream, own)) = self.names.from_wire(wire) else {
            return Err((INVALID_PARAMS, format!("Unknown prompt: {wire}")));
        };
        *name = json!(own);
        Ok((upstream, true))
    }

    /// The upstream that owns `uri`, from what the upstreams listed (listed first when not
    /// known yet).
    pub(super) async fn route_uri(&self, uri: Option<&str>) -> Result<usize, (i64, String)> {
        let Some(uri) = uri else {
            return Err((INVALID_PARAMS, "a resource uri is needed".to_owned()));
        };
        let unknown = lock(&self.catalog).unknown_resources();
        if !unknown.is_empty() {
            let lists =
                futures_util::future::join_all(unknown.iter().map(|&upstream| async move {
                    tokio::join!(
                        self.list_all(upstream, "resources/list", "resources"),
                        self.list_all(upstream, "resources/templates/list", "resourceTemplates"),
                    )
                }))
                .await;
            let mut catalog = lock(&self.catalog);
            for (&upstream, (resources, templates)) in unknown.iter().zip(lists) {
                catalog.set_resources(upstream, &resources.unwrap_or_default());
                catalog.set_templates(upstream, &templates.unwrap_or_default());
            }
        }
        let route = lock(&self.catalog).route(uri);
        match route {
            Route::One(upstream) => Ok(upstream),
            Route::Ambiguous(upstreams) => {
                let names: Vec<&str> = upstreams.iter().map(|&u| self.names.server(u)).collect();
                Err((
                    INVALID_PARAMS,
                    format!(
                        "Ambiguous resource {uri}: several upstreams could serve it ({}); the gateway does not guess which to ask",
                        names.join(", ")
                    ),
                ))
            }
            Route::Unknown => Err((
                RESOURCE_NOT_FOUND,
                format!(
                    "Resource not found: no upstream lists {uri}, a template matching it or its scheme"
                ),
            )),
        }
    }

    /// Any other request with several upstreams: other lists (`*/list`) merged from every
    /// upstream's first page; anything else (`logging/setLevel`, methods the gateway does not
    /// know) sent to every upstream, the first answer without an error returned.
    pub(super) async fn several(&self, method: &str, id: Value, key: String, line: String) {
        let waits = self.forward_all(&key, &line);
        let mut replies = Vec::new();
        if method.ends_with("/list") {
            for wait in waits {
                replies.push(wait.await);
            }
            self.finish(&key);
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
                    self.finish(&key);
                    return self.send_agent(reply.raw);
                }
                last = Some(reply.raw);
            }
        }
        self.finish(&key);
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
