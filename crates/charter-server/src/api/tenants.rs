//! Tenants and agents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use charter_core::{AgentId, TenantId};
use serde::Deserialize;
use serde_json::Value;

use super::{items, json, parse};
use crate::error::ApiError;
use crate::extract::{JsonBody, NoQuery, Params, PathParams, Reader, Writer};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route(
            "/v1/tenants/{tenant_id}/agents",
            post(create_agent).get(list_agents),
        )
}

/// `POST /v1/tenants`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    /// The tenant's id.
    #[schema(value_type = String, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    id: TenantId,
    /// Its name: 1 to 200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
}

#[utoipa::path(
    post,
    path = "/v1/tenants",
    operation_id = "create_tenant",
    summary = "Create a tenant (platform keys).",
    tag = "tenants",
    request_body = NewTenant,
    responses(
        (status = 201, description = "The tenant (platform keys only).", body = charter_store::Tenant),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn create_tenant(
    State(state): State<AppState>,
    Writer(caller): Writer,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewTenant = parse(&body)?;
    let tenant = state
        .store
        .create_tenant(&caller.change(state.clock.now()), &new.id, &new.name)
        .await?;
    Ok((StatusCode::CREATED, json(&tenant)?))
}

#[utoipa::path(
    get,
    path = "/v1/tenants",
    operation_id = "list_tenants",
    summary = "List the tenants the key sees.",
    tag = "tenants",
    responses(
        (status = 200, description = "The tenants the key sees.", body = crate::answers::Items<charter_store::Tenant>)
    ),
    security(("bearer" = []))
)]
async fn list_tenants(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(NoQuery {}): Params<NoQuery>,
) -> Result<Json<Value>, ApiError> {
    items(state.store.list_tenants(&caller.principal).await?)
}

/// `POST /v1/tenants/{tenant_id}/agents`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAgent {
    /// The agent's id, unique in its tenant.
    #[schema(value_type = String, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    id: AgentId,
    /// Its name: 1 to 200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// Who owns it: 1 to 200 characters, not blank, no control characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    owner: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/agents",
    operation_id = "create_agent",
    summary = "Register an agent of a tenant.",
    tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id.", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    request_body = NewAgent,
    responses(
        (status = 201, description = "The agent.", body = charter_store::Agent),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn create_agent(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(tenant_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = TenantId::new(tenant_id.as_str())
        .map_err(|_| ApiError::not_found(format!("tenant {tenant_id}")))?;
    let new: NewAgent = parse(&body)?;
    let agent = state
        .store
        .create_agent(
            &caller.change(state.clock.now()),
            &tenant,
            &new.id,
            &new.name,
            new.owner.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, json(&agent)?))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/agents",
    operation_id = "list_agents",
    summary = "List a tenant's agents.",
    tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id.", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    responses(
        (status = 200, description = "The tenant's agents.", body = crate::answers::Items<charter_store::Agent>),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn list_agents(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(NoQuery {}): Params<NoQuery>,
    PathParams(tenant_id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    items(
        state
            .store
            .list_agents(&caller.principal, &tenant_id)
            .await?,
    )
}
