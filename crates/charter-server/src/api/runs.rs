//! Runs and checks: the hot path. A run pins the active set at its start; a check evaluates
//! one action with the server's clock, settles its limit claims atomically, records the action
//! and its decision durably (group commit), and only then answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use charter_core::Action;
use charter_core::engine::{RunContext, decide};
use charter_core::limits::Settle;
use charter_store::{ActionRecord, KeyScope, Principal, RunFilter, RunStatus, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{json, parse};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Params, PathParams, Reader};
use crate::state::AppState;

pub(crate) fn router<S: Store + Clone>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/runs", post(start::<S>).get(list::<S>))
        .route("/v1/runs/{run_id}", get(show::<S>))
        .route("/v1/runs/{run_id}/check", post(check::<S>))
        .route("/v1/runs/{run_id}/end", post(end::<S>))
}

/// A caller whose key has the `execute` scope.
fn executor(caller: Caller) -> Result<Caller, ApiError> {
    caller.require(KeyScope::Execute)?;
    Ok(caller)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRun {
    agent_id: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// The run as `POST /v1/runs` answers it.
fn run_view(run: &charter_store::Run) -> Result<Value, ApiError> {
    serde_json::to_value(run).map_err(|e| ApiError::internal(&e.to_string()))
}

async fn start<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = executor(caller)?;
    let new: NewRun = parse(&body)?;
    let tenant = match (&caller.principal, new.tenant_id) {
        (Principal::Tenant(own), None) => own.to_string(),
        (_, Some(tenant)) => tenant,
        (Principal::Platform, None) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "a platform key names the run's tenant",
            ));
        }
    };
    let metadata = new.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        return Err(ApiError::invalid("metadata", "metadata is a JSON object"));
    }
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

async fn check<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    PathParams(run_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let caller = executor(caller)?;
    let action = Action::parse(&body)?;
    let run = state.store.get_run(&caller.principal, &run_id).await?;
    if run.ended_at.is_some() {
        return Err(ApiError::conflict(format!(
            "run {run_id} has ended: it takes no more actions"
        )));
    }
    if run.status == RunStatus::Halted {
        // Halted: every later action is refused with the violations that halted the run, and
        // nothing is recorded.
        return Ok(Json(json!({
            "decision": "halt", "run_id": run.id, "action_id": null,
            "violations": run.halted_by.clone().unwrap_or_else(|| json!([])),
        })));
    }
    let set = state.runtime.set_of(&state.store, &run).await?;
    let now = state.clock.now();
    let ctx = RunContext {
        tenant_id: &run.tenant_id,
        agent_id: &run.agent_id,
        run_id: &run.id,
        run_started_at: run.started_at,
        now,
    };
    let evaluation = set.evaluate(&action, &ctx);
    let mode = if evaluation.violations.is_empty() {
        Settle::CommitIfWithin
    } else {
        Settle::CheckOnly
    };
    let exceeded = state.store.settle(&evaluation.claims, now, mode).await?;
    let decision = decide(evaluation, &exceeded);
    let action_id = format!("evt_{}", uuid_like());
    let answer = json!({
        "decision": decision.outcome,
        "run_id": run.id,
        "action_id": action_id,
        "violations": decision.violations,
    });
    state
        .runtime
        .writer
        .record(ActionRecord {
            id: action_id,
            run_id: run.id.clone(),
            tenant_id: run.tenant_id.clone(),
            agent_id: run.agent_id.clone(),
            at: now,
            action,
            decision: decision.outcome,
            violations: decision.violations,
            policy_set_hash: run.policy_set.hash.clone(),
        })
        .await?;
    Ok(Json(answer))
}

/// A time-ordered unique suffix for action ids.
fn uuid_like() -> String {
    charter_store::new_id_suffix()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndBody {
    #[serde(default)]
    status: Option<String>,
}

async fn end<S: Store + Clone>(
    State(state): State<AppState<S>>,
    caller: Caller,
    PathParams(run_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let caller = executor(caller)?;
    let end: EndBody = parse(&body)?;
    let status = match end.status.as_deref() {
        None | Some("completed") => RunStatus::Completed,
        Some("failed") => RunStatus::Failed,
        Some(_) => {
            return Err(ApiError::invalid(
                "status",
                "a run ends `completed` or `failed`",
            ));
        }
    };
    let run = state
        .store
        .end_run(&caller.principal, &run_id, status, state.clock.now())
        .await?;
    Ok(Json(run_view(&run)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    agent_id: Option<String>,
    tenant_id: Option<String>,
    status: Option<String>,
    since: Option<jiff::Timestamp>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list<S: Store + Clone>(
    State(state): State<AppState<S>>,
    Reader(caller): Reader,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some("running") => Some(RunStatus::Running),
        Some("halted") => Some(RunStatus::Halted),
        Some("completed") => Some(RunStatus::Completed),
        Some("failed") => Some(RunStatus::Failed),
        Some(_) => {
            return Err(ApiError::invalid(
                "query.status",
                "running, halted, completed or failed",
            ));
        }
    };
    let filter = RunFilter {
        tenant_id: q.tenant_id,
        agent_id: q.agent_id,
        status,
        since: q.since,
    };
    let page = state
        .store
        .runs(
            &caller.principal,
            &filter,
            q.cursor.as_deref(),
            q.limit.unwrap_or(50),
        )
        .await?;
    json(&page)
}

async fn show<S: Store + Clone>(
    State(state): State<AppState<S>>,
    Reader(caller): Reader,
    PathParams(run_id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let run = state.store.get_run(&caller.principal, &run_id).await?;
    let actions = state.store.run_actions(&caller.principal, &run_id).await?;
    let mut view = run_view(&run)?;
    view["actions"] =
        serde_json::to_value(actions).map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok(Json(view))
}
