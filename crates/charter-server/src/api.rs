//! API v1: one router per area, merged here.

mod audit;
mod keys;
mod policies;
mod tenants;

use axum::Router;
use axum::routing::get;
use charter_store::Store;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole API.
pub fn router<S: Store + Clone>(state: AppState<S>) -> Router {
    let metrics = state.metrics.clone();
    let render = metrics.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { render.render() }))
        .merge(tenants::router())
        .merge(keys::router())
        .merge(policies::router())
        .merge(audit::router())
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

/// Parses a body strictly into `T` (unknown fields and wrong types name their path).
fn parse<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    Ok(charter_core::parse::from_value(body)?)
}

/// `{"items": [...]}`.
fn items<T: serde::Serialize>(items: &[T]) -> Result<axum::Json<Value>, ApiError> {
    let items = serde_json::to_value(items).map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok(axum::Json(serde_json::json!({ "items": items })))
}

/// Any serializable value as a JSON response.
fn json<T: serde::Serialize>(value: &T) -> Result<axum::Json<Value>, ApiError> {
    serde_json::to_value(value)
        .map(axum::Json)
        .map_err(|e| ApiError::internal(&e.to_string()))
}
