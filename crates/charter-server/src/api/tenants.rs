//! Tenants and agents.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use charter_core::{AgentId, TenantId};
use charter_store::{KeyScope, Store};
use serde::Deserialize;
use serde_json::Value;

use super::{items, json, parse};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;

pub(super) fn router<S: Store + Clone>() -> Router<AppState<S>> {
    Router::new()
        .route(
            "/v1/tenants",
            post(create_tenant::<S>).get(list_tenants::<S>),
        )
        .route(
            "/v1/tenants/{tenant_id}/agents",
            post(create_agent::<S>).get(list_agents::<S>),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: TenantId,
    name: String,
}

async fn create_tenant<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(KeyScope::Write)?;
    let new: NewTenant = parse(&body)?;
    let tenant = state
        .store
        .create_tenant(&caller.change(state.clock.now()), &new.id, &new.name)
        .await?;
    Ok((StatusCode::CREATED, json(&tenant)?))
}

async fn list_tenants<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(KeyScope::Read)?;
    items(&state.store.list_tenants(&caller.principal).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgent {
    id: AgentId,
    name: String,
    #[serde(default)]
    owner: Option<String>,
}

async fn create_agent<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(KeyScope::Write)?;
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

async fn list_agents<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(KeyScope::Read)?;
    items(
        &state
            .store
            .list_agents(&caller.principal, &tenant_id)
            .await?,
    )
}
