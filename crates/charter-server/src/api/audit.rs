//! The audit log and its verification.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use charter_store::{AuditFilter, KeyScope, Store};
use serde::Deserialize;
use serde_json::Value;

use super::json;
use crate::error::ApiError;
use crate::extract::{Caller, Params};
use crate::state::AppState;

pub(super) fn router<S: Store + Clone>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/audit", get(list::<S>))
        .route("/v1/audit/verify", get(verify::<S>))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    tenant_id: Option<String>,
    policy_id: Option<String>,
    lineage_id: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    since: Option<jiff::Timestamp>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(KeyScope::Read)?;
    let filter = AuditFilter {
        tenant_id: q.tenant_id,
        policy_id: q.policy_id,
        lineage_id: q.lineage_id,
        action: q.action,
        actor: q.actor,
        since: q.since,
    };
    let page = state
        .store
        .audit(
            &caller.principal,
            &filter,
            q.cursor.as_deref(),
            q.limit.unwrap_or(50),
        )
        .await?;
    json(&page)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    tenant_id: Option<String>,
}

async fn verify<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Params(q): Params<VerifyQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(KeyScope::Read)?;
    let result = state
        .store
        .verify_audit(&caller.principal, q.tenant_id.as_deref())
        .await?;
    json(&result)
}
