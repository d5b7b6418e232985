//! `POST /v1/policies/{id}/validate` (product.md §5): the range from the body, then
//! `crate::validation`, which the workspace calls too.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::parse;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, Writer};
use crate::state::AppState;
use crate::validation::{self, Range};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/policies/{id}/validate", post(validate))
}

/// `POST /v1/policies/{id}/validate`: the range to replay; the body may be empty.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateBody {
    /// How far back from `until` (default `7d`); not with `since`.
    #[serde(default)]
    #[schema(value_type = Option<crate::schemas::CoreSpan>)]
    lookback: Option<String>,
    /// The start of the range (RFC 3339).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    since: Option<jiff::Timestamp>,
    /// The end of the range (default now).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    until: Option<jiff::Timestamp>,
    /// The most runs to replay (default and at most 10,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000)]
    max_runs: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/v1/policies/{id}/validate",
    operation_id = "validate_policy",
    summary = "Replay a policy over recorded history and store the report against its revision.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    request_body(content = ValidateBody, description = "The range; an empty body is the same as `{}`."),
    responses(
        (status = 200, description = "The validation report (product.md §5): counts, per rule, samples, new vs already blocked.", body = crate::answers::ValidationReport),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: the policy changed while it was validated.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn validate(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let request: ValidateBody = parse(&body)?;
    let range = Range::read(
        state.clock.now(),
        request.lookback.as_deref(),
        request.since,
        request.until,
        request.max_runs,
    )
    .map_err(|bad| ApiError::invalid(bad.field, bad.message))?;
    let report = validation::run(&state, &caller, &id, range).await?;
    super::json(&report)
}
