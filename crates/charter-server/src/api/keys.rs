//! API keys: shown once at creation, stored only as a hash.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use charter_core::TenantId;
use charter_store::{KeyScope, Store, new_key_secret};
use serde::Deserialize;
use serde_json::Value;

use super::{items, json, parse};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;

pub(super) fn router<S: Store + Clone>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/keys", post(create_key::<S>).get(list_keys::<S>))
        .route("/v1/keys/{key_id}", delete(revoke_key::<S>))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    tenant_id: Option<TenantId>,
    scopes: Vec<ScopeName>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum ScopeName {
    Read,
    Write,
    Execute,
}

async fn create_key<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(KeyScope::Write)?;
    let new: NewKey = parse(&body)?;
    let scopes: Vec<KeyScope> = new
        .scopes
        .iter()
        .map(|s| match s {
            ScopeName::Read => KeyScope::Read,
            ScopeName::Write => KeyScope::Write,
            ScopeName::Execute => KeyScope::Execute,
        })
        .collect();
    // A tenant key makes keys of its own tenant.
    let tenant = match (&caller.principal, new.tenant_id) {
        (charter_store::Principal::Tenant(own), None) => Some(own.clone()),
        (_, tenant) => tenant,
    };
    let secret = new_key_secret();
    let key = state
        .store
        .create_key(
            &caller.change(state.clock.now()),
            &new.name,
            tenant.as_ref(),
            &scopes,
            &secret,
        )
        .await?;
    let mut view = serde_json::to_value(&key).map_err(|e| ApiError::internal(&e.to_string()))?;
    // The only time the key is ever shown.
    view["key"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_keys<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(KeyScope::Read)?;
    items(&state.store.list_keys(&caller.principal).await?)
}

async fn revoke_key<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(KeyScope::Write)?;
    let key = state
        .store
        .revoke_key(&caller.change(state.clock.now()), &key_id)
        .await?;
    json(&key)
}
