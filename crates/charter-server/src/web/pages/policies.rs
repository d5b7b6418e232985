//! Policies: the list (tabs by status, search by name, filter by scope) and a policy's page.
//! Both read through the store with the visitor's principal, as `GET /v1/policies` does.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use charter_core::policy::Status;
use charter_core::{PolicyId, Scope};
use charter_store::{PolicyFilter, PolicySummary, StoredPolicy};
use jiff::Timestamp;
use serde::Deserialize;

use crate::state::AppState;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// Policies per page of the list.
const PAGE: u32 = 50;

/// A policy's page shows the versions of its lineage up to this many before and after it.
const NEAR: u32 = 10;

/// The list's query, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    scope: Option<String>,
    cursor: Option<String>,
}

/// The list's query, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filters {
    /// `None`: every status (the "All" tab).
    status: Option<Status>,
    /// Names containing this.
    q: Option<String>,
    /// `platform`, `tenant` or `agent`.
    scope: Option<&'static str>,
}

impl Filters {
    /// The filters of `query`, and its cursor.
    fn parse(query: ListQuery) -> Result<(Filters, Option<String>), WebError> {
        let status = match query.status.as_deref().unwrap_or("") {
            "" | "all" => None,
            "draft" => Some(Status::Draft),
            "active" => Some(Status::Active),
            "deprecated" => Some(Status::Deprecated),
            other => {
                return Err(WebError::BadRequest(format!(
                    "status: `{other}` is none of draft, active, deprecated, all"
                )));
            }
        };
        let scope = match query.scope.as_deref().unwrap_or("") {
            "" | "any" => None,
            "platform" => Some("platform"),
            "tenant" => Some("tenant"),
            "agent" => Some("agent"),
            other => {
                return Err(WebError::BadRequest(format!(
                    "scope: `{other}` is none of platform, tenant, agent, any"
                )));
            }
        };
        let q = query
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if let Some(q) = &q
            && (q.chars().count() > 200 || q.chars().any(char::is_control))
        {
            return Err(WebError::BadRequest(
                "q: a search is at most 200 characters, with no control characters".into(),
            ));
        }
        let cursor = query.cursor.filter(|c| !c.is_empty());
        if let Some(cursor) = &cursor
            && (cursor.len() > 200 || cursor.chars().any(char::is_control))
        {
            return Err(WebError::BadRequest(
                "cursor: not a cursor of this list".into(),
            ));
        }
        Ok((Filters { status, q, scope }, cursor))
    }

    /// The list's URL with these filters and `status` instead of this one's.
    fn href(&self, status: Option<Status>) -> String {
        self.page_href(status, None)
    }

    /// The list's URL with these filters, `status` instead of this one's, at `cursor`.
    fn page_href(&self, status: Option<Status>, cursor: Option<&str>) -> String {
        let mut params = Vec::new();
        if let Some(status) = status {
            params.push(format!("status={}", status.as_str()));
        }
        if let Some(q) = &self.q {
            params.push(format!("q={}", encode(q)));
        }
        if let Some(scope) = self.scope {
            params.push(format!("scope={scope}"));
        }
        if let Some(cursor) = cursor {
            params.push(format!("cursor={}", encode(cursor)));
        }
        if params.is_empty() {
            "/policies".to_owned()
        } else {
            format!("/policies?{}", params.join("&"))
        }
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A tab of the list.
struct Tab {
    label: &'static str,
    href: String,
    current: bool,
}

/// A row of the list.
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) scope: String,
    pub(crate) version: u32,
    pub(crate) status: &'static str,
    pub(crate) rules: usize,
    pub(crate) updated: String,
}

/// A scope in words: `Platform`, `Tenant acme`, `Agent acme/support`.
fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::Platform => "Platform".to_owned(),
        Scope::Tenant { tenant_id } => format!("Tenant {tenant_id}"),
        Scope::Agent {
            tenant_id,
            agent_id,
        } => format!("Agent {tenant_id}/{agent_id}"),
    }
}

/// A time as the pages show it (UTC, to the minute): `2026-12-07 18:20 UTC`. Written out
/// rather than through `strftime`, which parses its format on every call (lists draw one per
/// row).
pub(crate) fn when(at: Timestamp) -> String {
    let t = jiff::tz::Offset::UTC.to_datetime(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

impl Row {
    /// A row of the list.
    fn listed(p: &PolicySummary) -> Row {
        Row {
            id: p.id.to_string(),
            name: p.name.clone(),
            scope: scope_text(&p.scope),
            version: p.version,
            status: p.status.as_str(),
            rules: p.rules,
            updated: when(p.last_changed()),
        }
    }

    /// The row of a whole policy (a policy's page heads with it).
    pub(crate) fn of(stored: &StoredPolicy) -> Row {
        Row::listed(&PolicySummary::of(stored))
    }
}

/// The Policies list.
#[derive(Template)]
#[template(path = "policies.html", blocks = ["content"])]
struct ListPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    q: String,
    scope: &'static str,
    rows: Vec<Row>,
    /// Whether any filter narrows the list (the empty state then says so).
    filtered: bool,
    /// The next page's URL, when there are older policies.
    older: Option<String>,
    /// The first page's URL, when this is a later one.
    newest: Option<String>,
}

render::page!(ListPage);

/// `GET /policies`.
pub(crate) async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let path = uri
        .path_and_query()
        .map_or_else(|| "/policies".to_owned(), ToString::to_string);
    let chrome = Chrome::load(&state, &visitor, "policies", path).await?;
    let filters = match query {
        Ok(Query(query)) => Filters::parse(query),
        Err(e) => Err(WebError::BadRequest(e.body_text())),
    };
    let (filters, cursor) = match filters {
        Ok(parsed) => parsed,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let filter = PolicyFilter {
        status: filters.status,
        scope_type: filters.scope.map(str::to_owned),
        tenant_id: visitor.tenant.clone(),
        agent_id: None,
        q: filters.q.clone(),
    };
    let found = match state
        .store
        .policies_page(&visitor.caller.principal, &filter, cursor.as_deref(), PAGE)
        .await
    {
        Ok(found) => found,
        Err(e) => return Ok(WebError::from(e).in_layout(chrome, htmx)),
    };
    let tabs = [
        ("All", None),
        ("Draft", Some(Status::Draft)),
        ("Active", Some(Status::Active)),
        ("Deprecated", Some(Status::Deprecated)),
    ]
    .into_iter()
    .map(|(label, status)| Tab {
        label,
        href: filters.href(status),
        current: status == filters.status,
    })
    .collect();
    let page = ListPage {
        chrome,
        tabs,
        q: filters.q.clone().unwrap_or_default(),
        scope: filters.scope.unwrap_or(""),
        rows: found.items.iter().map(Row::listed).collect(),
        filtered: filters != Filters::default(),
        older: found
            .next_cursor
            .as_deref()
            .map(|c| filters.page_href(filters.status, Some(c))),
        newest: cursor.as_ref().map(|_| filters.href(filters.status)),
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// A policy's page: its facts, the versions near it, its rules as sentences, and what its
/// status and the key allow.
#[derive(Template)]
#[template(path = "policy.html", blocks = ["content"])]
struct PolicyPage {
    chrome: Chrome,
    row: Row,
    description: String,
    lineage: String,
    revision: u32,
    created: String,
    cloned_from: Option<String>,
    rules: Vec<RuleLine>,
    rules_json: String,
    /// The lineage's versions near this one, oldest first.
    versions: Vec<VersionLine>,
    /// How many versions come before and after those shown (the audit log has them all).
    earlier: u32,
    later: u32,
}

render::page!(PolicyPage);

/// A version of the lineage as the chain on a policy's page shows it.
struct VersionLine {
    id: String,
    version: u32,
    status: &'static str,
    created: String,
    /// Who activated it and when.
    activated: Option<(Who, String)>,
    /// Who deprecated it and when.
    deprecated: Option<(Who, String)>,
    /// Whether it is the version this page shows.
    current: bool,
}

/// The key that did something: its id, and its name when the visitor's key may see it.
struct Who {
    id: String,
    name: Option<String>,
}

impl VersionLine {
    fn of(
        version: &PolicySummary,
        current: &PolicyId,
        names: &HashMap<String, String>,
    ) -> VersionLine {
        // Who and when are recorded together; either alone would be a half-told event.
        let event = |done: &Option<(Timestamp, String)>| {
            done.as_ref().map(|(at, by)| {
                let who = Who {
                    name: names.get(by).cloned(),
                    id: by.clone(),
                };
                (who, when(*at))
            })
        };
        VersionLine {
            id: version.id.to_string(),
            version: version.version,
            status: version.status.as_str(),
            created: when(version.created_at),
            activated: event(&version.activated),
            deprecated: event(&version.deprecated),
            current: version.id == *current,
        }
    }
}

/// A rule as the page tells it: its id and type, its sentence as (is code, text) pieces, so the
/// template escapes every piece and wraps code in `<code>`, and its description.
pub(crate) struct RuleLine {
    pub(crate) id: String,
    pub(crate) rule_type: &'static str,
    pub(crate) pieces: Vec<(bool, String)>,
    pub(crate) description: Option<String>,
}

impl RuleLine {
    /// The line of `rule`.
    pub(crate) fn of(rule: &charter_core::Rule) -> RuleLine {
        use charter_core::sentence::{Piece, Sentence};
        RuleLine {
            id: rule.id.to_string(),
            rule_type: rule.rule_type().as_str(),
            pieces: Sentence::of(&rule.kind)
                .pieces()
                .iter()
                .map(|piece| match piece {
                    Piece::Text(text) => (false, text.clone()),
                    Piece::Code(code) => (true, code.clone()),
                })
                .collect(),
            description: rule.description.clone().filter(|d| !d.is_empty()),
        }
    }
}

/// The names of the keys the visitor's key may see, by id, when `versions` name any (a tenant
/// key sees its tenant's keys, not the platform's: those stay ids). Names only make the chain
/// easier to read, so a failure to list them leaves the ids rather than failing the page.
async fn key_names(
    state: &AppState,
    visitor: &Visitor,
    versions: &[PolicySummary],
) -> HashMap<String, String> {
    let acted = versions
        .iter()
        .any(|v| v.activated.is_some() || v.deprecated.is_some());
    if !acted {
        return HashMap::new();
    }
    match state.store.list_keys(&visitor.caller.principal).await {
        Ok(keys) => keys.into_iter().map(|k| (k.id, k.name)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "listing keys for a version chain");
            HashMap::new()
        }
    }
}

/// `id` if a policy can have it; an id none can (NUL bytes, bad characters, too long) is not
/// found before the store is asked, as the API's path parameters are.
pub(crate) fn policy_id(id: &str) -> Result<&str, WebError> {
    PolicyId::new(id)
        .map(|_| id)
        .map_err(|_| WebError::NotFound)
}

/// The policy `id` as the visitor may see it: another tenant's is not found, as a made-up id is.
pub(crate) async fn visible(
    state: &AppState,
    visitor: &Visitor,
    id: &str,
) -> Result<StoredPolicy, WebError> {
    let id = policy_id(id)?;
    Ok(state
        .store
        .get_policy(&visitor.caller.principal, id)
        .await?)
}

/// `GET /policies/{id}`: another tenant's policy is not found, as a made-up id is.
pub(crate) async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", uri.path().to_owned()).await?;
    let stored = match visible(&state, &visitor, &id).await {
        Ok(stored) => stored,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let rules_json = match serde_json::to_string_pretty(&stored.policy.definition.rules) {
        Ok(json) => json,
        Err(e) => {
            tracing::error!(error = %e, "serializing rules");
            return Ok(WebError::Internal.in_layout(chrome, htmx));
        }
    };
    let near = match state
        .store
        .versions_near(&visitor.caller.principal, &id, NEAR)
        .await
    {
        Ok(near) => near,
        Err(e) => return Ok(WebError::from(e).in_layout(chrome, htmx)),
    };
    let found = near.items;
    let names = key_names(&state, &visitor, &found).await;
    let versions = found
        .iter()
        .map(|v| VersionLine::of(v, &stored.policy.id, &names))
        .collect();
    let p = &stored.policy;
    let page = PolicyPage {
        versions,
        earlier: near.before,
        later: near.after,
        row: Row::of(&stored),
        description: p.definition.description.clone(),
        lineage: p.lineage_id.to_string(),
        revision: p.revision,
        created: when(p.created_at),
        cloned_from: p.cloned_from.as_ref().map(ToString::to_string),
        rules: p.definition.rules.iter().map(RuleLine::of).collect(),
        rules_json,
        chrome,
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_strftime_writes_them() {
        for at in [0, 1_767_582_479, 1_795_000_000, 4_102_444_799] {
            let at = Timestamp::from_second(at).unwrap();
            assert_eq!(
                when(at),
                at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                "{at}"
            );
        }
    }

    fn query(status: Option<&str>, q: Option<&str>, scope: Option<&str>) -> ListQuery {
        ListQuery {
            status: status.map(str::to_owned),
            q: q.map(str::to_owned),
            scope: scope.map(str::to_owned),
            cursor: None,
        }
    }

    #[test]
    fn filters_are_parsed_once_and_kept_in_links() {
        let (f, _) = Filters::parse(query(Some("draft"), Some(" a b&c "), Some("agent"))).unwrap();
        assert_eq!(f.status, Some(Status::Draft));
        assert_eq!(f.href(None), "/policies?q=a%20b%26c&scope=agent");
        assert_eq!(
            Filters::parse(query(Some("all"), Some(""), Some("any")))
                .unwrap()
                .0,
            Filters::default()
        );
        assert!(Filters::parse(query(Some("gone"), None, None)).is_err());
        assert!(Filters::parse(query(None, None, Some("world"))).is_err());
        assert!(Filters::parse(query(None, Some("a\u{0}"), None)).is_err());
    }
}
