//! The Monitor: block and halt events newest first, filtered by what the URL's query says,
//! paged with the store's cursor, over a chart of events per time bucket. It reads through
//! `Store::violations` and `Store::violation_stats` with the visitor's principal, as
//! `GET /v1/violations` and its stats do, with the filters read by the API's own parsing.

mod chart;
mod live;
pub(crate) mod query;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use charter_store::{Principal, StoreError, ViolationEvent, ViolationFilter};
use jiff::{SignedDuration, Timestamp};

use self::chart::Chart;
pub(crate) use self::live::stream;
use self::query::RANGES;
pub(crate) use self::query::{MonitorQuery, utc};
use crate::state::AppState;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// Events on a page.
const PAGE: u32 = 50;

/// A row of the Monitor: one violated rule of a refused action.
pub(crate) struct Row {
    /// The event's id (the row's element id).
    pub(crate) id: String,
    /// When, to the second.
    pub(crate) at: String,
    /// `block` or `halt`.
    pub(crate) decision: String,
    /// The policy version's id.
    pub(crate) policy_id: String,
    /// Its name.
    pub(crate) policy_name: String,
    /// Its version number.
    pub(crate) policy_version: u32,
    /// The rule's id.
    pub(crate) rule_id: String,
    /// The rule's type.
    pub(crate) rule_type: String,
    /// The run's agent.
    pub(crate) agent_id: String,
    /// The run's tenant.
    pub(crate) tenant_id: String,
    /// The run.
    pub(crate) run_id: String,
    /// The refused action: its tool, resource, channel or model.
    pub(crate) action: String,
    /// What matched, masked.
    pub(crate) matching_input: Option<String>,
    /// Why.
    pub(crate) message: String,
}

impl Row {
    /// The row of `event`.
    pub(crate) fn of(event: &ViolationEvent) -> Row {
        Row {
            id: event.id.clone(),
            at: event.at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            decision: event.decision.clone(),
            policy_id: event.policy_id.clone(),
            policy_name: event.policy_name.clone(),
            policy_version: event.policy_version,
            rule_id: event.rule_id.clone(),
            rule_type: event.rule_type.clone(),
            agent_id: event.agent_id.clone(),
            tenant_id: event.tenant_id.clone(),
            run_id: event.run_id.clone(),
            action: event.action.summary.clone(),
            matching_input: event.matching_input.clone(),
            message: event.message.clone(),
        }
    }
}

/// One row alone: what the live Monitor sends.
#[derive(Template)]
#[template(path = "monitor_row.html")]
pub(crate) struct RowTemplate {
    /// The row.
    pub(crate) row: Row,
}

/// A choice of a select.
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn choices(options: &[(&'static str, &'static str)], current: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|&(value, label)| Choice {
            value,
            label,
            selected: value == current,
        })
        .collect()
}

/// The Monitor's page.
#[derive(Template)]
#[template(path = "monitor.html", blocks = ["content"])]
struct MonitorPage {
    chrome: Chrome,
    /// The form's values as sent.
    policy_id: String,
    lineage_id: String,
    agent_id: String,
    /// A run the events are narrowed to (from a run's page; the form keeps it hidden).
    run_id: String,
    since: String,
    until: String,
    rule_types: Vec<Choice>,
    decisions: Vec<Choice>,
    ranges: Vec<Choice>,
    /// Why the filters cannot be used, when they cannot.
    problem: Option<String>,
    rows: Vec<Row>,
    chart: Option<Chart>,
    filtered: bool,
    /// The next page's URL.
    older: Option<String>,
    /// The first page's URL, on a later page.
    newest: Option<String>,
    /// On the first page: where new events stream from.
    live: Option<LiveLinks>,
}

/// The live Monitor's URLs, with the page's filters.
struct LiveLinks {
    /// The event stream.
    stream: String,
    /// This page, reloaded into the content when the stream says events were missed.
    reload: String,
}

render::page!(MonitorPage);

impl MonitorPage {
    fn new(chrome: Chrome, query: &MonitorQuery) -> MonitorPage {
        let rule_types = [
            ("", "Any rule type"),
            ("tool", "Tool"),
            ("data_access", "Data access"),
            ("rate", "Rate"),
            ("cost", "Cost"),
            ("time", "Time"),
            ("output", "Output"),
        ];
        let decisions = [("", "Block or halt"), ("block", "Block"), ("halt", "Halt")];
        MonitorPage {
            chrome,
            policy_id: query.field("policy_id").to_owned(),
            lineage_id: query.field("lineage_id").to_owned(),
            agent_id: query.field("agent_id").to_owned(),
            run_id: query.field("run_id").to_owned(),
            since: query.field("since").to_owned(),
            until: query.field("until").to_owned(),
            rule_types: choices(&rule_types, query.field("rule_type")),
            decisions: choices(&decisions, query.field("decision")),
            ranges: choices(RANGES, &query.range),
            problem: None,
            rows: Vec::new(),
            chart: None,
            filtered: query.filtered(),
            older: None,
            newest: None,
            live: None,
        }
    }
}

/// The query's filter as the visitor reads it: a platform key that chose a tenant looks at
/// that tenant's events (a tenant key's own are the store's business).
pub(crate) fn visitor_filter(visitor: &Visitor, query: &MonitorQuery) -> ViolationFilter {
    let mut filter = query.filter.clone();
    if filter.tenant_id.is_none() {
        filter.tenant_id.clone_from(&visitor.tenant);
    }
    filter
}

/// `GET /monitor`.
pub(crate) async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let path = uri
        .path_and_query()
        .map_or_else(|| "/monitor".to_owned(), ToString::to_string);
    let chrome = Chrome::load(&state, &visitor, "monitor", path).await?;
    let now = state.clock.now();
    // A bad filter is shown on the page, with the form as sent, never a bare error.
    let bad = |chrome: Chrome, query: &MonitorQuery, problem: String| {
        let mut page = MonitorPage::new(chrome, query);
        page.problem = Some(problem);
        let status = if htmx {
            // htmx swaps a 422 (base.html's responseHandling), not a 400.
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        Ok(render::respond(status, htmx, &page))
    };
    let query = match MonitorQuery::parse(uri.query().unwrap_or_default(), now) {
        Ok(query) => query,
        Err(refused) => return bad(chrome, &refused.shown, refused.problem),
    };
    let filter = visitor_filter(&visitor, &query);
    let principal = &visitor.caller.principal;
    let found = state
        .store
        .violations(principal, &filter, query.cursor.as_deref(), PAGE)
        .await;
    let found = match found {
        Ok(found) => found,
        Err(StoreError::Invalid { path, message }) => {
            return bad(chrome, &query, format!("{path}: {message}"));
        }
        Err(e) => return Ok(WebError::from(e).in_layout(chrome, htmx)),
    };
    let chart = match chart(&state, principal, &filter, now).await {
        Ok(chart) => chart,
        Err(StoreError::Invalid { path, message }) => {
            return bad(chrome, &query, format!("{path}: {message}"));
        }
        Err(e) => return Ok(WebError::from(e).in_layout(chrome, htmx)),
    };
    let mut page = MonitorPage::new(chrome, &query);
    page.rows = found.items.iter().map(Row::of).collect();
    page.older = found
        .next_cursor
        .as_deref()
        .map(|cursor| query.href("/monitor", Some(cursor)));
    page.newest = query.cursor.as_ref().map(|_| query.href("/monitor", None));
    page.chart = chart;
    // New events belong at the top of the first page only.
    if query.cursor.is_none() {
        page.live = Some(LiveLinks {
            stream: query.href("/monitor/stream", None),
            reload: query.href("/monitor", None),
        });
    }
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// The chart of the events `filter` selects, from its `since` (or the first event) to its
/// `until` (or now); `None` when there is nothing to draw.
async fn chart(
    state: &AppState,
    principal: &Principal,
    filter: &ViolationFilter,
    now: Timestamp,
) -> Result<Option<Chart>, StoreError> {
    let end = filter.until.unwrap_or(now);
    let start = match filter.since {
        Some(since) => since,
        // All time: from the first event (one read through the events' index of time), and
        // an hour at least, so that the events of one minute are not one bar as wide as the
        // chart.
        None => match state.store.first_violation_at(principal, filter).await? {
            Some(first) => first.min(
                end.checked_sub(SignedDuration::from_hours(1))
                    .unwrap_or(end),
            ),
            None => return Ok(None),
        },
    };
    if start >= end {
        return Ok(None);
    }
    let bucket_ms = chart::bucket_ms(start, end);
    let counts = state
        .store
        .violation_stats(principal, filter, bucket_ms)
        .await?;
    if counts.is_empty() {
        return Ok(None);
    }
    Ok(Some(Chart::new(&counts, start, end, bucket_ms)))
}
