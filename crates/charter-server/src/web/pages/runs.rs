//! Runs: the list, newest first and paged, and a run's page (its agent, status, times, the
//! policy versions it pinned, and its actions as a timeline with their decisions and
//! violations). Read through `Store::runs`, `Store::get_run`, `Store::pinned_policies`,
//! `Store::run_actions` and `Store::violations` with the visitor's principal, as the API's
//! run routes do: another tenant's run is not found, as a made-up id is.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use charter_core::{Action, AgentId, RunId};
use charter_store::{Run, RunFilter, RunStatus, StoreError, ViolationFilter};
use jiff::Timestamp;
use serde::Deserialize;

use crate::extract::parse_query;
use crate::state::AppState;
use crate::web::pages::monitor::{Row as EventRow, utc};
use crate::web::pages::policies::{encode, when};
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// Runs on a page.
const PAGE: u32 = 50;

/// The most violations a run's page shows (the Monitor filtered by the run pages the rest).
const VIOLATIONS: u32 = 500;

/// Actions on a page of a run, as many as the other lists show: a longer run's page links to
/// its later actions.
const STEPS: u32 = 50;

/// A run page's query: the page of its actions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunQuery {
    cursor: Option<String>,
}

/// The list's query: its filters as the form sends them (an empty field is no filter).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// An agent's id.
    #[serde(default)]
    agent: String,
    /// `running`, `halted`, `completed` or `failed`.
    #[serde(default)]
    status: String,
    /// Started at or after (a `datetime-local` value is UTC).
    #[serde(default)]
    since: String,
    cursor: Option<String>,
}

impl ListQuery {
    /// The store's filter of the runs `tenant` (the one in view) holds.
    fn filter(&self, tenant: Option<String>) -> Result<RunFilter, String> {
        let agent = self.agent.trim();
        if !agent.is_empty() && AgentId::new(agent).is_err() {
            return Err(format!("agent: `{agent}` is not an agent id"));
        }
        let status = match self.status.as_str() {
            "" => None,
            name => Some(RunStatus::from_name(name).ok_or_else(|| {
                format!("status: `{name}` is none of running, halted, completed, failed")
            })?),
        };
        let since =
            match self.since.trim() {
                "" => None,
                text => Some(utc(text).parse::<Timestamp>().map_err(|_| {
                    format!("since: `{text}` is not a time (2026-12-01T09:30, UTC)")
                })?),
            };
        Ok(RunFilter {
            tenant_id: tenant,
            agent_id: (!agent.is_empty()).then(|| agent.to_owned()),
            status,
            since,
        })
    }

    /// The query of these filters, for the list's links (`&`-joined, encoded; empty for none).
    fn params(&self) -> String {
        [
            ("agent", self.agent.trim()),
            ("status", self.status.as_str()),
            ("since", self.since.trim()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// The statuses the list filters by: `(value, label)`.
const STATUSES: [(&str, &str); 5] = [
    ("", "Any status"),
    ("running", "Running"),
    ("halted", "Halted"),
    ("completed", "Completed"),
    ("failed", "Failed"),
];

/// A row of the list.
struct RunRow {
    id: String,
    agent_id: String,
    tenant_id: String,
    status: &'static str,
    started: String,
    ended: Option<String>,
    imported: bool,
}

impl RunRow {
    fn of(run: &Run) -> RunRow {
        RunRow {
            id: run.id.clone(),
            agent_id: run.agent_id.clone(),
            tenant_id: run.tenant_id.clone(),
            status: run.status.as_str(),
            started: when(run.started_at),
            ended: run.ended_at.map(when),
            imported: run.imported,
        }
    }
}

/// The Runs list.
#[derive(Template)]
#[template(path = "runs.html", blocks = ["content"])]
struct ListPage {
    chrome: Chrome,
    rows: Vec<RunRow>,
    problem: Option<String>,
    /// The filters as sent.
    query: ListQuery,
    statuses: [(&'static str, &'static str); 5],
    /// The first page with these filters, when this is a later one.
    newest: Option<String>,
    older: Option<String>,
}

impl ListPage {
    /// Whether any filter narrows the list.
    fn filtered(&self) -> bool {
        !self.query.params().is_empty()
    }
}

render::page!(ListPage);

/// `GET /runs`.
pub(crate) async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let path = uri
        .path_and_query()
        .map_or_else(|| "/runs".to_owned(), ToString::to_string);
    let chrome = Chrome::load(&state, &visitor, "runs", path).await?;
    let query: ListQuery = match parse_query(uri.query().unwrap_or_default()) {
        Ok(query) => query,
        Err(e) => {
            let page = ListPage::of(chrome, ListQuery::default(), Some(e.in_words()));
            return Ok(render::respond(StatusCode::BAD_REQUEST, htmx, &page));
        }
    };
    let filter = match query.filter(visitor.tenant.clone()) {
        Ok(filter) => filter,
        Err(problem) => {
            let page = ListPage::of(chrome, query, Some(problem));
            return Ok(render::respond(StatusCode::BAD_REQUEST, htmx, &page));
        }
    };
    let found = state
        .store
        .runs(
            &visitor.caller.principal,
            &filter,
            query.cursor.as_deref(),
            PAGE,
        )
        .await;
    let params = query.params();
    let link = |cursor: Option<&str>| {
        let mut parts: Vec<String> = Vec::new();
        if !params.is_empty() {
            parts.push(params.clone());
        }
        if let Some(cursor) = cursor {
            parts.push(format!("cursor={}", encode(cursor)));
        }
        if parts.is_empty() {
            "/runs".to_owned()
        } else {
            format!("/runs?{}", parts.join("&"))
        }
    };
    match found {
        Ok(found) => {
            let newest = query.cursor.is_some().then(|| link(None));
            let older = found
                .next_cursor
                .as_deref()
                .map(|cursor| link(Some(cursor)));
            let mut page = ListPage::of(chrome, query, None);
            page.rows = found.items.iter().map(RunRow::of).collect();
            page.newest = newest;
            page.older = older;
            Ok(render::respond(StatusCode::OK, htmx, &page))
        }
        Err(StoreError::Invalid { path, message }) => {
            let page = ListPage::of(chrome, query, Some(format!("{path}: {message}")));
            Ok(render::respond(StatusCode::BAD_REQUEST, htmx, &page))
        }
        Err(e) => Ok(WebError::from(e).in_layout(chrome, htmx)),
    }
}

impl ListPage {
    /// The list with no rows yet.
    fn of(chrome: Chrome, query: ListQuery, problem: Option<String>) -> ListPage {
        ListPage {
            chrome,
            rows: Vec::new(),
            problem,
            query,
            statuses: STATUSES,
            newest: None,
            older: None,
        }
    }
}

/// A policy version a run pinned.
struct Pinned {
    id: String,
    name: String,
    version: u32,
    status: &'static str,
}

/// An action of the timeline.
struct Step {
    at: String,
    kind: String,
    summary: String,
    /// `None`: an imported action without a recorded decision.
    decision: Option<String>,
    violations: Vec<EventRow>,
}

/// A run's page.
#[derive(Template)]
#[template(path = "run.html", blocks = ["content"])]
struct RunPage {
    chrome: Chrome,
    run: RunRow,
    pinned: Vec<Pinned>,
    steps: Vec<Step>,
    /// Whether the run has more violations than the page shows.
    more: bool,
    /// The page of the run's next actions, if any.
    later: Option<String>,
    /// The page of its first actions, when this is a later page.
    first: Option<String>,
}

render::page!(RunPage);

/// `GET /runs/{id}`: another tenant's run is not found, as a made-up id is.
pub(crate) async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "runs", uri.path().to_owned()).await?;
    let cursor = match parse_query::<RunQuery>(uri.query().unwrap_or_default()) {
        Ok(query) => query.cursor,
        Err(e) => return Ok(WebError::BadRequest(e.in_words()).in_layout(chrome, htmx)),
    };
    match load(&state, &visitor, &id, cursor.as_deref()).await {
        Ok((run, pinned, steps, more, next)) => {
            let page = RunPage {
                first: cursor.map(|_| format!("/runs/{}", run.id)),
                later: next.map(|c| format!("/runs/{}?cursor={}", run.id, encode(&c))),
                chrome,
                run,
                pinned,
                steps,
                more,
            };
            Ok(render::respond(StatusCode::OK, htmx, &page))
        }
        Err(e) => Ok(e.in_layout(chrome, htmx)),
    }
}

/// The run `id` with what its page shows: the page of its actions after `cursor`, their
/// violations, and the next page's cursor.
async fn load(
    state: &AppState,
    visitor: &Visitor,
    id: &str,
    cursor: Option<&str>,
) -> Result<(RunRow, Vec<Pinned>, Vec<Step>, bool, Option<String>), WebError> {
    // An id no run can have is not found, before the store is asked.
    if RunId::new(id).is_err() {
        return Err(WebError::NotFound);
    }
    let principal = &visitor.caller.principal;
    let run = state.store.get_run(principal, id).await?;
    let pinned = state
        .store
        .pinned_policies(&run)
        .await?
        .iter()
        .map(|p| Pinned {
            id: p.id.to_string(),
            name: p.definition.name.clone(),
            version: p.version,
            status: p.status.as_str(),
        })
        .collect();
    let page = state
        .store
        .run_actions_page(principal, id, cursor, STEPS)
        .await?;
    let actions = page.items;
    // The violations of this page's actions only: those of its time span (an action's
    // violations carry its time).
    let filter = ViolationFilter {
        run_id: Some(id.to_owned()),
        since: actions.first().map(|a| a.at),
        until: actions
            .last()
            .and_then(|a| a.at.checked_add(jiff::SignedDuration::from_millis(1)).ok()),
        ..ViolationFilter::default()
    };
    let violations = state
        .store
        .violations(principal, &filter, None, VIOLATIONS)
        .await?;
    let more = violations.next_cursor.is_some();
    let steps = actions
        .iter()
        .map(|a| {
            let (kind, summary) = match a.action.as_ref().map(Action::parse) {
                Some(Ok(action)) => (action.kind().as_str().to_owned(), action.summary()),
                _ => ("action".to_owned(), "input not kept".to_owned()),
            };
            Step {
                at: a.at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
                kind,
                summary,
                decision: a.decision.clone(),
                violations: violations
                    .items
                    .iter()
                    .filter(|v| v.action_id == a.id)
                    .map(EventRow::of)
                    .collect(),
            }
        })
        .collect();
    Ok((RunRow::of(&run), pinned, steps, more, page.next_cursor))
}
