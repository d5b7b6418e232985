//! Validate (product.md §5): replay a policy over the recorded actions of the runs in its scope
//! and range, with fresh simulated limits, and store the report against its revision.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use charter_core::calendar::Span;
use charter_core::engine::ArgsRead;
use charter_core::replay::{RecordedAction, Replay};
use charter_core::{CompiledSet, Scope};
use charter_store::{HistoryPage, Principal};
use serde::Deserialize;
use serde_json::Value;

use super::parse;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, Writer};
use crate::state::AppState;

/// Actions read from the store per page: the replay never holds more.
const PAGE: u32 = 2_000;
/// The default and largest number of runs a validation looks at.
const DEFAULT_MAX_RUNS: u64 = 10_000;

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
        (status = 401, description = "`unauthenticated`: no valid key.", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`: the key lacks the scope or the authority.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: the policy changed while it was validated.", body = crate::error::ErrorBody),
        (status = 413, description = "`too_large`: the body exceeds the limit.", body = crate::error::ErrorBody)
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
    let now = state.clock.now();
    let until = request.until.unwrap_or(now);
    let since = match (request.since, request.lookback.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "lookback",
                "give `lookback` or `since`, not both",
            ));
        }
        (Some(since), None) => since,
        (None, lookback) => {
            let span = Span::parse(lookback.unwrap_or("7d"))
                .map_err(|e| ApiError::invalid("lookback", e.to_string()))?;
            let millis = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
            jiff::Timestamp::from_millisecond(until.as_millisecond().saturating_sub(millis))
                .map_err(|e| ApiError::invalid("lookback", e.to_string()))?
        }
    };
    if since >= until {
        return Err(ApiError::invalid(
            "since",
            "the range is empty: since must be before until",
        ));
    }
    let max_runs = request.max_runs.unwrap_or(DEFAULT_MAX_RUNS);
    if max_runs == 0 || max_runs > DEFAULT_MAX_RUNS {
        return Err(ApiError::invalid(
            "max_runs",
            format!("1 to {DEFAULT_MAX_RUNS}"),
        ));
    }

    let stored = state.store.get_policy(&caller.principal, &id).await?;
    let policy = &stored.policy;
    let set = CompiledSet::compile([policy])
        .map_err(|e| ApiError::internal(&format!("compiling the policy: {e}")))?;
    let rule_ids = policy.rules().iter().map(|r| r.id.clone());
    let mut replay = Replay::new(&set, rule_ids);
    let (tenant, agent) = match policy.scope() {
        Scope::Platform => (None, None),
        Scope::Tenant { tenant_id } => (Some(tenant_id.as_str()), None),
        Scope::Agent {
            tenant_id,
            agent_id,
        } => (Some(tenant_id.as_str()), Some(agent_id.as_str())),
    };
    // A platform policy replays every tenant's history: only the platform reads it all.
    let reader = if tenant.is_none() {
        Principal::Platform
    } else {
        caller.principal.clone()
    };
    // The next page is read while this one is replayed: the store's work (on SQLite, its own
    // thread) and the replay overlap.
    let fetch = |page: HistoryPage| {
        let store = state.store.clone();
        let reader = reader.clone();
        tokio::spawn(async move { store.actions_page(&reader, &page).await })
    };
    let first = HistoryPage {
        tenant: tenant.map(str::to_owned),
        agent: agent.map(str::to_owned),
        since,
        until,
        after: None,
        limit: PAGE,
        // Arguments no rule of the policy reads are checked but not built: most of a page's
        // parsing, and of what its replay frees, otherwise.
        args: ArgsRead::of([policy]),
    };
    let mut runs = std::collections::HashSet::new();
    let mut capped = false;
    let mut next = Some(fetch(first.clone()));
    while let Some(reading) = next.take() {
        let page = reading
            .await
            .map_err(|e| ApiError::internal(&format!("reading recorded actions: {e}")))??;
        let Some(last) = page.last() else { break };
        // A short page is the last one.
        if page.len() >= PAGE as usize {
            next = Some(fetch(first.following(last)));
        }
        for row in page {
            if !runs.contains(row.run_id.as_str()) {
                if runs.len() as u64 >= max_runs {
                    capped = true;
                    continue;
                }
                runs.insert(row.run_id.clone());
            }
            let at = jiff::Timestamp::from_millisecond(row.at_ms)
                .map_err(|e| ApiError::internal(&e.to_string()))?;
            replay.push(&RecordedAction {
                run_id: row.run_id,
                tenant_id: row.tenant_id,
                agent_id: row.agent_id,
                run_started_at: row.run_started_at,
                at,
                action: row.action,
                recorded: row.decision,
            });
        }
    }
    let report = crate::answers::ValidationReport {
        policy_id: policy.id.clone(),
        revision: policy.revision,
        range: crate::answers::ReplayRange { since, until },
        runs_capped: capped,
        report: replay.finish(),
    };
    let value = serde_json::to_value(&report).map_err(|e| ApiError::internal(&e.to_string()))?;
    state
        .store
        .record_validation(&caller.change(now), &id, policy.revision, &value)
        .await?;
    Ok(Json(value))
}
