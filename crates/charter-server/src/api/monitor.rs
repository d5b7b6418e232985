//! The Monitor: violation events (every block and halt), filtered and paged newest first, and
//! counted per time bucket for the chart.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use charter_core::calendar::Span;
use std::sync::Arc;

use charter_store::{Principal, ViolationEvent, ViolationFilter};
use serde::Deserialize;
use serde_json::Value;

use super::{json, page_limit};
use crate::error::ApiError;
use crate::extract::{Caller, Params, Reader};
use crate::live::Feed;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/violations", get(list))
        .route("/v1/violations/stats", get(stats))
        .route("/v1/violations/stream", get(stream))
}

/// Whether a live event passes the caller's tenant and the stream's filters (the
/// workspace's live Monitor asks too).
pub(crate) fn passes(event: &ViolationEvent, principal: &Principal, f: &ViolationFilter) -> bool {
    let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    principal.sees(Some(&event.tenant_id))
        && is(&f.tenant_id, &event.tenant_id)
        && is(&f.policy_id, &event.policy_id)
        && is(&f.lineage_id, &event.lineage_id)
        && is(&f.agent_id, &event.agent_id)
        && is(&f.run_id, &event.run_id)
        && is(&f.rule_type, &event.rule_type)
        && is(&f.decision, &event.decision)
        && f.since.is_none_or(|s| event.at >= s)
        && f.until.is_none_or(|u| event.at < u)
}

/// What a live subscriber of violation events receives.
pub(crate) enum Live {
    /// A committed event that passes the subscriber's tenant and filters.
    Event(Arc<ViolationEvent>),
    /// The subscriber fell behind: this many events were dropped for it.
    Missed(u64),
    /// The node's connection to the database was lost and made again: events that other
    /// nodes committed meanwhile were not relayed.
    Gap,
}

/// The violation events `caller` may see that pass `filter`, as they are committed, until
/// the server shuts down: the one live feed of the API's stream and the workspace's Monitor.
/// The feed holds one of the caller's key's streams while it lasts; a key that holds all of
/// them is refused (429).
pub(crate) async fn live(
    state: &AppState,
    caller: &Caller,
    filter: ViolationFilter,
) -> Result<impl futures_util::Stream<Item = Live> + Send + use<>, ApiError> {
    use tokio::sync::broadcast::error::RecvError;
    let slot = state.streams.open(&caller.key.id)?;
    let principal = caller.principal.clone();
    let (receiver, closing) = state.runtime.live.subscribe(&state.store).await;
    Ok(futures_util::stream::unfold(
        (receiver, closing, principal, filter, slot),
        |(mut receiver, mut closing, principal, filter, slot)| async move {
            loop {
                let next = tokio::select! {
                    next = receiver.recv() => next,
                    _ = closing.wait_for(|closed| *closed) => return None,
                };
                let live = match next {
                    Ok(Feed::Event(event)) if passes(&event, &principal, &filter) => {
                        Live::Event(event)
                    }
                    Ok(Feed::Event(_)) => continue,
                    Ok(Feed::Gap) => Live::Gap,
                    Err(RecvError::Lagged(missed)) => Live::Missed(missed),
                    Err(RecvError::Closed) => return None,
                };
                return Some((live, (receiver, closing, principal, filter, slot)));
            }
        },
    ))
}

/// Server-sent events, one per new violation matching the filters, as they are committed.
#[utoipa::path(
    get,
    path = "/v1/violations/stream",
    operation_id = "stream_violations",
    summary = "Tail new violations live (server-sent events).",
    tag = "monitor",
    params(crate::schemas::ViolationFilters),
    responses(
        (status = 200, description = "Server-sent events, one per new violation matching the filters, as it is committed: `event: violation`, `id: <violation id>`, and one line of `data`, a `ViolationEvent` as JSON. A subscriber that falls behind gets the comment `missed N events: read /v1/violations`; after this node lost its database connection, `events of other nodes may have been missed: read /v1/violations`; keep-alive comments are sent while idle.", body = String, content_type = "text/event-stream"),
        (status = 400, description = "`invalid`: a bad filter (`details.path` names it), or `cursor`, `limit` or `bucket`, which a stream does not take (`details.path` is `query.cursor`, `query.limit` or `query.bucket`).", body = crate::error::ErrorBody),
        (status = 429, description = "`too_many_requests`: the key already holds the most open streams one key may hold (`details.limit`; `charter serve --max-streams-per-key`).", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn stream(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(q): Params<Filters>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt as _;
    if let Some(name) = q.paging(true) {
        return Err(ApiError::invalid(
            &format!("query.{name}"),
            format!("a stream takes only filters, not `{name}`"),
        ));
    }
    let filter = q.filter()?;
    let events = live(&state, &caller, filter).await?.map(|live| {
        Ok(match live {
            Live::Event(event) => Event::default()
                .event("violation")
                .id(event.id.clone())
                .data(serde_json::to_string(&*event).unwrap_or_default()),
            Live::Missed(missed) => {
                Event::default().comment(format!("missed {missed} events: read /v1/violations"))
            }
            Live::Gap => Event::default()
                .comment("events of other nodes may have been missed: read /v1/violations"),
        })
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The Monitor's query, as the API and the workspace's Monitor read it
/// ([`crate::extract::parse_query`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filters {
    policy_id: Option<String>,
    lineage_id: Option<String>,
    agent_id: Option<String>,
    tenant_id: Option<String>,
    run_id: Option<String>,
    rule_type: Option<String>,
    decision: Option<String>,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
    /// Where the page starts.
    pub(crate) cursor: Option<String>,
    /// The page's length.
    pub(crate) limit: Option<String>,
    /// The stats' bucket.
    pub(crate) bucket: Option<String>,
}

impl Filters {
    /// The first paging parameter given, `cursor` or `limit` (and `bucket` when `bucket` is
    /// true), for the routes that take none.
    pub(crate) fn paging(&self, bucket: bool) -> Option<&'static str> {
        [
            ("cursor", self.cursor.is_some()),
            ("limit", self.limit.is_some()),
            ("bucket", bucket && self.bucket.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }

    /// The store's filter: the one reading of these values.
    pub(crate) fn filter(&self) -> Result<ViolationFilter, ApiError> {
        if let Some(t) = &self.rule_type
            && charter_core::RuleType::from_name(t).is_none()
        {
            return Err(ApiError::invalid(
                "query.rule_type",
                "one of tool, data_access, rate, cost, time, output",
            ));
        }
        if let Some(d) = &self.decision
            && !matches!(d.as_str(), "block" | "halt")
        {
            return Err(ApiError::invalid("query.decision", "one of block, halt"));
        }
        Ok(ViolationFilter {
            policy_id: self.policy_id.clone(),
            lineage_id: self.lineage_id.clone(),
            agent_id: self.agent_id.clone(),
            tenant_id: self.tenant_id.clone(),
            run_id: self.run_id.clone(),
            rule_type: self.rule_type.clone(),
            decision: self.decision.clone(),
            since: self.since,
            until: self.until,
        })
    }
}

#[utoipa::path(
    get,
    path = "/v1/violations",
    operation_id = "list_violations",
    summary = "List violations, newest first.",
    tag = "monitor",
    params(crate::schemas::ViolationFilters, crate::schemas::ViolationPaging),
    responses(
        (status = 200, description = "A page of violation events, newest first.", body = charter_store::Page<charter_store::ViolationEvent>),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(q): Params<Filters>,
) -> Result<Json<Value>, ApiError> {
    if q.bucket.is_some() {
        return Err(ApiError::invalid(
            "query.bucket",
            "`bucket` belongs to /v1/violations/stats",
        ));
    }
    let limit = page_limit(q.limit.as_deref())?;
    let page = state
        .store
        .violations(&caller.principal, &q.filter()?, q.cursor.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from(e).under("query"))?;
    json(&page)
}

#[utoipa::path(
    get,
    path = "/v1/violations/stats",
    operation_id = "violation_stats",
    summary = "Count violations per time bucket.",
    tag = "monitor",
    params(crate::schemas::ViolationFilters, crate::schemas::StatsParams),
    responses(
        (status = 200, description = "Counts per bucket, oldest first; empty buckets are left out.", body = crate::answers::ViolationStats),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn stats(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(q): Params<Filters>,
) -> Result<Json<Value>, ApiError> {
    if let Some(name) = q.paging(false) {
        return Err(ApiError::invalid(
            &format!("query.{name}"),
            format!("stats take no `{name}`"),
        ));
    }
    let bucket = Span::parse(q.bucket.as_deref().unwrap_or("1h"))
        .map_err(|e| ApiError::invalid("query.bucket", e.to_string()))?;
    let bucket_ms = i64::try_from(bucket.as_millis())
        .map_err(|_| ApiError::invalid("query.bucket", "too long"))?;
    let counts = state
        .store
        .violation_stats(&caller.principal, &q.filter()?, bucket_ms)
        .await
        .map_err(|e| ApiError::from(e).under("query"))?;
    let buckets = counts
        .into_iter()
        .map(|(start, count)| crate::answers::StatsBucket { start, count })
        .collect();
    json(&crate::answers::ViolationStats { buckets })
}
