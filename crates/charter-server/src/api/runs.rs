//! Runs and checks over HTTP. A run pins the active set at its start; a check is parsed here
//! and decided by the runtime (`crate::runtime`), which answers once the action and its
//! decision are durably recorded.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use charter_core::Action;
use charter_store::{Principal, RunFilter, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{json, page_limit, parse};
use crate::error::ApiError;
use crate::extract::{Executor, JsonBody, NoQuery, Params, PathParams, Reader};
use crate::runtime::Checked;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/runs", post(start).get(list))
        .route("/v1/runs/import", post(super::run_import::import))
        .route("/v1/runs/{run_id}", get(show))
        .route("/v1/runs/{run_id}/check", post(check))
        .route("/v1/runs/{run_id}/end", post(end))
}

/// `POST /v1/runs`: a new run of an agent, which pins the active policies that govern it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRun {
    /// The agent; it must exist in the run's tenant.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    agent_id: String,
    /// The run's tenant: a platform key must name it; a tenant key's runs are its own.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<String>,
    /// Anything the caller attaches: a JSON object (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// A run's `metadata` (`{}` when absent): a JSON object within [`charter_core::parse::MAX_DEPTH`],
/// as `POST /v1/runs` and an import take it.
pub(super) fn run_metadata(metadata: Option<Value>) -> Result<Value, ApiError> {
    let metadata = metadata.unwrap_or_else(|| json!({}));
    let Value::Object(object) = &metadata else {
        return Err(ApiError::invalid("metadata", "metadata is a JSON object"));
    };
    charter_core::parse::check_object_depth(object, "metadata")?;
    Ok(metadata)
}

/// The tenant of a run a body describes: the one it names, else a tenant key's own (naming
/// another is refused by the store, as a tenant that exists nowhere); a platform key must name
/// it (`whose`: "the run's", "each run's").
pub(super) fn run_tenant(
    principal: &Principal,
    named: Option<String>,
    whose: &str,
) -> Result<String, ApiError> {
    match (principal, named) {
        (_, Some(tenant)) => Ok(tenant),
        (Principal::Tenant(own), None) => Ok(own.to_string()),
        (Principal::Platform, None) => Err(ApiError::invalid(
            "tenant_id",
            format!("a platform key names {whose} tenant"),
        )),
    }
}

/// The run as `POST /v1/runs` answers it.
fn run_view(run: &charter_store::Run) -> Result<Value, ApiError> {
    serde_json::to_value(run).map_err(|e| ApiError::internal(&e.to_string()))
}

#[utoipa::path(
    post,
    path = "/v1/runs",
    operation_id = "start_run",
    summary = "Start a run, pinning the active policies that govern it.",
    tag = "runs",
    request_body = NewRun,
    responses(
        (status = 201, description = "The run, `running`, with the policy set it pinned.", body = charter_store::Run),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn start(
    State(state): State<AppState>,
    Executor(caller): Executor,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewRun = parse(&body)?;
    let tenant = run_tenant(&caller.principal, new.tenant_id, "the run's")?;
    let metadata = run_metadata(new.metadata)?;
    let (run, _) = state
        .store
        .start_run(
            &caller.principal,
            &tenant,
            &new.agent_id,
            &metadata,
            state.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(run_view(&run)?)))
}

#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/check",
    operation_id = "check_action",
    summary = "Check one action of a run; answers once the action and its decision are recorded.",
    tag = "runs",
    params(("run_id" = String, Path, description = "A run's id (`run_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    request_body(content = crate::schemas::Action, description = "The action; it is stamped with the server's clock."),
    responses(
        (status = 200, description = "The decision, with every violated rule. On a halted run: `halt` with `action_id: null` and the violations that halted it, and nothing is recorded.", body = Answer),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: the run has ended; nothing changes.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn check(
    State(state): State<AppState>,
    Executor(caller): Executor,
    PathParams(run_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<axum::response::Response, ApiError> {
    let started = std::time::Instant::now();
    let action = Action::from_value(body)?;
    let checked = state
        .runtime
        .check(
            &state.store,
            &caller.principal,
            &run_id,
            action,
            state.clock.now(),
        )
        .await?;
    let (action_id, decision) = match checked {
        Checked::Decided {
            action_id,
            decision,
        } => (action_id, decision),
        Checked::Halted { halted_by } => {
            return Ok(Json(Answer {
                decision: charter_core::Outcome::Halt,
                run_id: &run_id,
                action_id: None,
                violations: Violations::Recorded(&halted_by),
            })
            .into_response());
        }
    };
    state
        .metrics
        .observe_decision(decision.outcome.as_str(), started.elapsed().as_secs_f64());
    for v in &decision.violations {
        let (policy, rule_type) = (v.source.policy.id.as_str(), v.source.rule_type.as_str());
        state
            .metrics
            .observe_violation(policy, rule_type, v.outcome.as_str());
    }
    // Serialized straight from the decision, not through a JSON tree.
    Ok(Json(Answer {
        decision: decision.outcome,
        run_id: &run_id,
        action_id: Some(&action_id),
        violations: Violations::Decided(&decision.violations),
    })
    .into_response())
}

/// `POST /v1/runs/{run_id}/check`: the decision on one action, with every violated rule.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Decision)]
struct Answer<'a> {
    /// The strongest of the violations (`allow` when there are none).
    #[schema(value_type = crate::schemas::CoreOutcome)]
    decision: charter_core::Outcome,
    /// The run.
    run_id: &'a str,
    /// The recorded action's id (`evt_...`); `null` when the run was already halted (nothing
    /// is recorded then).
    action_id: Option<&'a str>,
    /// Every violated rule, in policy and rule order (limits last); on a halted run, the
    /// violations that halted it.
    #[schema(value_type = Vec<crate::schemas::Violation>)]
    violations: Violations<'a>,
}

/// A check's violations: decided now (serialized straight from the decision, not through a
/// JSON tree), or those that halted the run, as recorded.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Violations<'a> {
    Decided(&'a [charter_core::engine::Violation]),
    Recorded(&'a Value),
}

/// `POST /v1/runs/{run_id}/end`: how the run ended; the body may be empty.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EndBody {
    /// `completed` (the default) or `failed`; a halted run stays `halted`.
    #[serde(default)]
    status: Option<EndStatus>,
}

/// How `POST /v1/runs/{run_id}/end` ends a run.
#[derive(Deserialize, Clone, Copy, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum EndStatus {
    /// Ended normally (the default).
    #[default]
    Completed,
    /// Ended in failure.
    Failed,
}

#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/end",
    operation_id = "end_run",
    summary = "End a run.",
    tag = "runs",
    params(("run_id" = String, Path, description = "A run's id (`run_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    request_body(content = EndBody, description = "How the run ended; an empty body is the same as `{}`."),
    responses(
        (status = 200, description = "The ended run.", body = charter_store::Run),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: the run has already ended.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn end(
    State(state): State<AppState>,
    Executor(caller): Executor,
    PathParams(run_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let end: EndBody = parse(&body)?;
    let status = match end.status.unwrap_or_default() {
        EndStatus::Completed => RunStatus::Completed,
        EndStatus::Failed => RunStatus::Failed,
    };
    let run = state
        .store
        .end_run(&caller.principal, &run_id, status, state.clock.now())
        .await?;
    state.runtime.forget_run(&run_id);
    Ok(Json(run_view(&run)?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this agent's.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    agent_id: Option<String>,
    /// Only this tenant's (a tenant key lists only its own: another tenant's id lists nothing).
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<String>,
    /// Only runs in this status.
    #[param(value_type = Option<charter_store::RunStatus>)]
    status: Option<String>,
    /// Runs started at or after this time (RFC 3339).
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
    path = "/v1/runs",
    operation_id = "list_runs",
    summary = "List runs, newest first.",
    tag = "runs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of runs (live and imported), newest first.", body = charter_store::Page<charter_store::Run>),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(name) => Some(RunStatus::from_name(name).ok_or_else(|| {
            ApiError::invalid("query.status", "running, halted, completed or failed")
        })?),
    };
    let limit = page_limit(q.limit.as_deref())?;
    let filter = RunFilter {
        tenant_id: q.tenant_id,
        agent_id: q.agent_id,
        status,
        since: q.since,
    };
    let page = state
        .store
        .runs(&caller.principal, &filter, q.cursor.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from(e).under("query"))?;
    json(&page)
}

#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}",
    operation_id = "get_run",
    summary = "Get a run with its actions and their decisions.",
    tag = "runs",
    params(("run_id" = String, Path, description = "A run's id (`run_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    responses(
        (status = 200, description = "The run, with `actions` in order.", body = crate::answers::RunWithActions),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn show(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(NoQuery {}): Params<NoQuery>,
    PathParams(run_id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let run = state.store.get_run(&caller.principal, &run_id).await?;
    let actions = state.store.run_actions(&caller.principal, &run_id).await?;
    json(&crate::answers::RunWithActions { run, actions })
}
