//! The audit log and its verification.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use charter_store::AuditFilter;
use serde::Deserialize;
use serde_json::Value;

use super::{json, page_limit};
use crate::error::ApiError;
use crate::extract::{Params, Reader};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit", get(list))
        .route("/v1/audit/verify", get(verify))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// One chain: a tenant's id, or `platform` (platform keys; a tenant key always gets its own).
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<String>,
    /// Entries of this policy version.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    policy_id: Option<String>,
    /// Entries of this lineage.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    lineage_id: Option<String>,
    /// One action, e.g. `policy.activated`.
    #[param(max_length = 1024, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    action: Option<String>,
    /// One actor (a key id).
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    actor: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<jiff::Timestamp>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}~[A-Za-z0-9_.:-]{0,128}$")]
    cursor: Option<String>,
    /// Page size: 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "list_audit",
    summary = "List audit entries.",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries.", body = charter_store::Page<charter_store::AuditEntry>),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = AuditFilter {
        tenant_id: q.tenant_id,
        policy_id: q.policy_id,
        lineage_id: q.lineage_id,
        action: q.action,
        actor: q.actor,
        since: q.since,
    };
    let limit = page_limit(q.limit.as_deref())?;
    let page = state
        .store
        .audit(&caller.principal, &filter, q.cursor.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from(e).under("query"))?;
    json(&page)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VerifyQuery {
    /// One chain: a tenant's id, or `platform`; a platform key without it checks every chain.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    operation_id = "verify_audit",
    summary = "Verify audit chains.",
    tag = "audit",
    params(VerifyQuery),
    responses(
        (status = 200, description = "`{ok: true, entries}` or `{ok: false, tenant_id, first_bad_seq}`.", body = charter_store::Verification),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn verify(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(q): Params<VerifyQuery>,
) -> Result<Json<Value>, ApiError> {
    let result = state
        .store
        .verify_audit(&caller.principal, q.tenant_id.as_deref())
        .await?;
    json(&result)
}
