//! API keys: shown once at creation, stored only as a hash.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use charter_core::TenantId;
use charter_store::{KeyScope, StoreError, new_key_secret};
use serde::Deserialize;
use serde_json::Value;

use super::{items, json, parse};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, NoQuery, Params, PathParams, Reader, Writer};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(create_key).get(list_keys))
        .route("/v1/keys/{key_id}", delete(revoke_key))
}

/// `POST /v1/keys`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// The key's name: 1 to 200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// The key's tenant; absent for a platform key (a tenant key always makes keys of its own
    /// tenant).
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<TenantId>,
    /// What the key may do.
    #[schema(value_type = Vec<charter_store::KeyScope>, min_items = 1)]
    scopes: Vec<ScopeName>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum ScopeName {
    Read,
    Write,
    Execute,
}

#[utoipa::path(
    post,
    path = "/v1/keys",
    operation_id = "create_key",
    summary = "Create a key; its value is shown only in this response.",
    tag = "keys",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key, with its value `key` shown this once.", body = crate::answers::CreatedKey),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn create_key(
    State(state): State<AppState>,
    Writer(caller): Writer,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let created = create(&state, &caller, &new.name, new.tenant_id, &scopes).await?;
    Ok((StatusCode::CREATED, json(&created)?))
}

/// Creates a key by `caller`: the one way of the API and the workspace. A key grants only the
/// scopes it holds (scopes would mean nothing otherwise), and a tenant key makes keys of its
/// own tenant; the store checks the rest (a tenant key making a platform key, or one of
/// another tenant). The answer holds the key's value: the only time it is ever shown.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    name: &str,
    tenant: Option<TenantId>,
    scopes: &[KeyScope],
) -> Result<crate::answers::CreatedKey, StoreError> {
    if let Some(missing) = scopes.iter().find(|s| !caller.key.scopes.contains(s)) {
        return Err(StoreError::Forbidden(format!(
            "this key cannot grant the `{}` scope it does not hold",
            missing.as_str()
        )));
    }
    let tenant = match (&caller.principal, tenant) {
        (charter_store::Principal::Tenant(own), None) => Some(own.clone()),
        (_, tenant) => tenant,
    };
    let secret = new_key_secret();
    let key = state
        .store
        .create_key(
            &caller.change(state.clock.now()),
            name,
            tenant.as_ref(),
            scopes,
            &secret,
        )
        .await?;
    Ok(crate::answers::CreatedKey {
        key: secret,
        api_key: key,
    })
}

#[utoipa::path(
    get,
    path = "/v1/keys",
    operation_id = "list_keys",
    summary = "List keys, never their values.",
    tag = "keys",
    responses(
        (status = 200, description = "The keys the caller sees, never their values.", body = crate::answers::Items<charter_store::ApiKey>)
    ),
    security(("bearer" = []))
)]
async fn list_keys(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(NoQuery {}): Params<NoQuery>,
) -> Result<Json<Value>, ApiError> {
    items(state.store.list_keys(&caller.principal).await?)
}

#[utoipa::path(
    delete,
    path = "/v1/keys/{key_id}",
    operation_id = "revoke_key",
    summary = "Revoke a key at once.",
    tag = "keys",
    params(("key_id" = String, Path, description = "The key's id (`key_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    responses(
        (status = 200, description = "The key, revoked at once.", body = charter_store::ApiKey),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn revoke_key(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(key_id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let key = state
        .store
        .revoke_key(&caller.change(state.clock.now()), &key_id)
        .await?;
    json(&key)
}
