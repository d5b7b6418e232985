//! The Monitor: violation events (every block and halt), filtered and paged newest first, and
//! counted per time bucket for the chart.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use charter_core::calendar::Span;
use charter_store::{Store, ViolationFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json;
use crate::error::ApiError;
use crate::extract::{Params, Reader};
use crate::state::AppState;

pub(crate) fn router<S: Store + Clone>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/violations", get(list::<S>))
        .route("/v1/violations/stats", get(stats::<S>))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filters {
    policy_id: Option<String>,
    lineage_id: Option<String>,
    agent_id: Option<String>,
    tenant_id: Option<String>,
    run_id: Option<String>,
    rule_type: Option<String>,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
    cursor: Option<String>,
    limit: Option<u32>,
    bucket: Option<String>,
}

impl Filters {
    fn filter(&self) -> Result<ViolationFilter, ApiError> {
        if let Some(t) = &self.rule_type
            && charter_core::RuleType::from_name(t).is_none()
        {
            return Err(ApiError::invalid(
                "query.rule_type",
                "one of tool, data_access, rate, cost, time, output",
            ));
        }
        Ok(ViolationFilter {
            policy_id: self.policy_id.clone(),
            lineage_id: self.lineage_id.clone(),
            agent_id: self.agent_id.clone(),
            tenant_id: self.tenant_id.clone(),
            run_id: self.run_id.clone(),
            rule_type: self.rule_type.clone(),
            since: self.since,
            until: self.until,
        })
    }
}

async fn list<S: Store + Clone>(
    State(state): State<AppState<S>>,
    Reader(caller): Reader,
    Params(q): Params<Filters>,
) -> Result<Json<Value>, ApiError> {
    if q.bucket.is_some() {
        return Err(ApiError::invalid(
            "query.bucket",
            "`bucket` belongs to /v1/violations/stats",
        ));
    }
    if q.limit.is_some_and(|l| l == 0 || l > 500) {
        return Err(ApiError::invalid("query.limit", "a limit is 1 to 500"));
    }
    let page = state
        .store
        .violations(
            &caller.principal,
            &q.filter()?,
            q.cursor.as_deref(),
            q.limit.unwrap_or(50),
        )
        .await?;
    json(&page)
}

async fn stats<S: Store + Clone>(
    State(state): State<AppState<S>>,
    Reader(caller): Reader,
    Params(q): Params<Filters>,
) -> Result<Json<Value>, ApiError> {
    if q.cursor.is_some() || q.limit.is_some() {
        return Err(ApiError::invalid("query", "stats take no cursor or limit"));
    }
    let bucket = Span::parse(q.bucket.as_deref().unwrap_or("1h"))
        .map_err(|e| ApiError::invalid("query.bucket", e.to_string()))?;
    let bucket_ms = i64::try_from(bucket.as_millis())
        .map_err(|_| ApiError::invalid("query.bucket", "too long"))?;
    let counts = state
        .store
        .violation_stats(&caller.principal, &q.filter()?, bucket_ms)
        .await?;
    let buckets: Vec<Value> = counts
        .into_iter()
        .map(|(start, count)| json!({"start": start, "count": count}))
        .collect();
    Ok(Json(json!({ "buckets": buckets })))
}
