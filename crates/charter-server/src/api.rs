//! API v1: one router per area, merged here.

pub(crate) mod audit;
pub(crate) mod keys;
pub(crate) mod monitor;
pub(crate) mod policies;
pub(crate) mod run_import;
pub(crate) mod runs;
pub(crate) mod tenants;
pub(crate) mod validate;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole API.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let render = metrics.clone();
    let writer = state.runtime.writer.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| async move {
                let stats = writer.stats();
                render.respond(&headers, (stats.batches, stats.records))
            }),
        )
        .route(
            "/v1/openapi.json",
            get(|| async { axum::Json(crate::schemas::openapi()) }),
        )
        .merge(tenants::router())
        .merge(keys::router())
        .merge(policies::router())
        .merge(runs::router())
        .merge(monitor::router())
        .merge(validate::router())
        .merge(audit::router())
        .route_layer(axum::middleware::from_fn(refuse_write_query))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

/// Refuses a query string on a write: no POST, PUT or DELETE route takes parameters, and one
/// silently ignored (`?force=true` on activate, say) would let a caller believe it was obeyed.
/// Runs only on matched routes, so an unknown path is still a 404.
async fn refuse_write_query(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let method = request.method();
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        return next.run(request).await;
    }
    match request.uri().query().filter(|q| !q.is_empty()) {
        None => next.run(request).await,
        Some(query) => {
            let name = query.split(['&', '=']).next().unwrap_or_default();
            let path = if !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                format!("query.{name}")
            } else {
                "query".to_owned()
            };
            ApiError::invalid(&path, format!("{method} routes take no query parameters"))
                .into_response()
        }
    }
}

// The three operational routes are closures in `router`; utoipa documents functions, so each
// has a private marker function here carrying its `#[utoipa::path]` (never routed or called).

/// Liveness.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    summary = "Liveness: answers `ok`.",
    tag = "operations",
    responses((status = 200, description = "The server is up.", body = String, content_type = "text/plain", example = "ok"))
)]
#[allow(
    dead_code,
    reason = "an OpenAPI marker: the route is a closure in `router`"
)]
pub(crate) fn healthz_doc() {}

/// How long `/readyz` waits for the database before it answers "not ready".
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness, apart from liveness (`/healthz`): the database answers within 2 s and has every
/// migration of this build applied. A load balancer sends checks only to a ready node.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    summary = "Readiness: the database answers and is migrated.",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: the database answered and holds this build's migrations.", body = String, content_type = "text/plain", example = "ready"),
        (status = 503, description = "Not ready, and why (the database's error, no answer within 2 s, or a schema behind this build).", body = String, content_type = "text/plain", example = "not ready: the database did not answer within 2 s")
    )
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match tokio::time::timeout(READY_WITHIN, state.store.readiness()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready".to_owned()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the database did not answer within {} s",
                READY_WITHIN.as_secs()
            ),
        ),
    }
}

/// The server's metrics: requests, checks, violations, the group commit, the process, the build.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    summary = "Prometheus metrics.",
    tag = "operations",
    responses((status = 200, description = "The metrics in Prometheus' text format (`text/plain; version=0.0.4`), or in OpenMetrics 1.0.0 text when `Accept` prefers `application/openmetrics-text`.", body = String, content_type = "text/plain"))
)]
#[allow(
    dead_code,
    reason = "an OpenAPI marker: the route is a closure in `router`"
)]
pub(crate) fn metrics_doc() {}

/// This document: the OpenAPI 3.1 description of API v1, generated from the code.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    summary = "This OpenAPI 3.1 document.",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json"))
)]
#[allow(
    dead_code,
    reason = "an OpenAPI marker: the route is a closure in `router`"
)]
pub(crate) fn openapi_doc() {}

/// Parses a body strictly into `T` (unknown fields and wrong types name their path).
fn parse<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid(
            "",
            format!(
                "the body must be a JSON object, found {}",
                charter_core::parse::kind_of(body)
            ),
        ));
    }
    Ok(charter_core::parse::from_value(body)?)
}

/// The page size of a list: `limit` is 1 to 500, 50 when absent.
fn page_limit(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::invalid("query.limit", "a limit is 1 to 500")),
    }
}

/// `{"items": [...]}`, through the type the document describes.
fn items<T: serde::Serialize>(items: Vec<T>) -> Result<axum::Json<Value>, ApiError> {
    json(&crate::answers::Items { items })
}

/// Any serializable value as a JSON response.
fn json<T: serde::Serialize>(value: &T) -> Result<axum::Json<Value>, ApiError> {
    serde_json::to_value(value)
        .map(axum::Json)
        .map_err(|e| ApiError::internal(&e.to_string()))
}
