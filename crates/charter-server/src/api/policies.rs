//! Policies: authoring, the lifecycle, versions, export and import.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use charter_core::document::PolicyDocument;
use charter_core::parse::ParseError;
use charter_core::policy::{PolicyDefinition, Status};
use charter_core::rule::{self, Rule};
use charter_core::{RuleId, Scope};
use charter_store::{
    Activation, Change, PolicyEdit, PolicyFilter, Principal, Store, StoreError, StoredPolicy,
};
use serde::Deserialize;
use serde_json::Value;

use super::parse;
use crate::answers::{Items, LastValidation, PolicyVersions, PolicyView};
use crate::error::ApiError;
use crate::extract::{IfMatch, JsonBody, NoQuery, Params, PathParams, Reader, Writer};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies", post(create).get(list))
        .route("/v1/policies/import", post(import))
        .route("/v1/policies/{id}", get(show).put(update).delete(remove))
        .route("/v1/policies/{id}/rules", post(add_rule))
        .route("/v1/policies/{id}/rules/{rule_id}", delete(remove_rule))
        .route("/v1/policies/{id}/activate", post(activate))
        .route("/v1/policies/{id}/deprecate", post(deprecate))
        .route("/v1/policies/{id}/clone", post(clone))
        .route("/v1/policies/{id}/versions", get(versions))
        .route("/v1/policies/{id}/export", get(export))
}

/// A policy as the API shows it, with its latest validation.
async fn view(
    store: &Store,
    principal: &Principal,
    stored: &StoredPolicy,
) -> Result<Value, ApiError> {
    let last_validation = store
        .latest_validation(principal, stored.policy.id.as_str())
        .await?
        .map(|(revision, at, report)| LastValidation {
            revision,
            at,
            report,
        });
    serde_json::to_value(PolicyView {
        policy: &stored.policy,
        last_validation,
    })
    .map_err(|e| ApiError::internal(&e.to_string()))
}

#[utoipa::path(
    post,
    path = "/v1/policies",
    operation_id = "create_policy",
    summary = "Create a draft policy.",
    tag = "policies",
    request_body = crate::schemas::CoreNewPolicy,
    responses(
        (status = 201, description = "The new draft.", body = PolicyView),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn create(
    State(state): State<AppState>,
    Writer(caller): Writer,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let definition = PolicyDefinition::parse(&body)?;
    let stored = state
        .store
        .create_policy(&caller.change(state.clock.now()), definition, false)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state.store, &caller.principal, &stored).await?),
    ))
}

/// A scope type in a query.
#[derive(Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum ScopeType {
    Platform,
    Tenant,
    Agent,
}

impl ScopeType {
    fn as_str(self) -> &'static str {
        match self {
            ScopeType::Platform => "platform",
            ScopeType::Tenant => "tenant",
            ScopeType::Agent => "agent",
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this status.
    #[param(value_type = Option<crate::schemas::CoreStatus>)]
    status: Option<Status>,
    /// Only this scope type.
    #[param(inline)]
    scope_type: Option<ScopeType>,
    /// Only this tenant's.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<String>,
    /// Only this agent's.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    agent_id: Option<String>,
    /// Names containing this text (case-insensitive).
    #[param(max_length = 1024, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    q: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/policies",
    operation_id = "list_policies",
    summary = "List policies.",
    tag = "policies",
    params(ListQuery),
    responses(
        (status = 200, description = "The policies the key sees.", body = Items<PolicyView>),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = PolicyFilter {
        status: q.status,
        scope_type: q.scope_type.map(|t| t.as_str().to_owned()),
        tenant_id: q.tenant_id,
        agent_id: q.agent_id,
        q: q.q,
    };
    let found = state
        .store
        .list_policies(&caller.principal, &filter)
        .await?;
    let mut items = Vec::with_capacity(found.len());
    for stored in &found {
        items.push(view(&state.store, &caller.principal, stored).await?);
    }
    super::json(&Items { items })
}

#[utoipa::path(
    get,
    path = "/v1/policies/{id}",
    operation_id = "get_policy",
    summary = "Get a policy version.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    responses(
        (status = 200, description = "The policy.", body = PolicyView, headers(("ETag" = String, description = "`\"<revision>\"`: the precondition a write takes as `If-Match`."))),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn show(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(NoQuery {}): Params<NoQuery>,
    PathParams(id): PathParams<String>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let stored = state.store.get_policy(&caller.principal, &id).await?;
    let etag = format!("\"{}\"", stored.policy.revision);
    Ok((
        [(axum::http::header::ETAG, etag)],
        Json(view(&state.store, &caller.principal, &stored).await?),
    ))
}

/// `PUT /v1/policies/{id}`: the fields to change; server-owned fields are refused by name.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PolicyEdit)]
struct EditBody {
    /// 1–200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    /// Free text, at most 10,000 characters.
    #[schema(max_length = 10_000, pattern = "^[^\\x00]*$")]
    description: Option<String>,
    /// Where the policy applies.
    #[schema(value_type = Option<crate::schemas::CoreScope>)]
    scope: Option<Value>,
    /// Replaces every rule.
    #[schema(value_type = Option<Vec<crate::schemas::CoreRule>>)]
    rules: Option<Value>,
}

/// `PUT` body: every field optional; server-owned fields are refused by name.
fn parse_edit(body: &Value) -> Result<PolicyEdit, ApiError> {
    let raw: EditBody = parse(body)?;
    Ok(edit_of(
        raw.name,
        raw.description,
        raw.scope.as_ref(),
        raw.rules.as_ref(),
    )?)
}

/// The edit of a draft that these fields describe, each checked by core's parser; `None`
/// leaves a field as it is. The workspace's details form edits through this too.
pub(crate) fn edit_of(
    name: Option<String>,
    description: Option<String>,
    scope: Option<&Value>,
    rules: Option<&Value>,
) -> Result<PolicyEdit, ParseError> {
    if let Some(name) = &name {
        PolicyDefinition::check_name(name)?;
    }
    if let Some(description) = &description {
        PolicyDefinition::check_description(description)?;
    }
    let scope = scope
        .map(|s| Scope::parse(s).map_err(|e| e.under("scope")))
        .transpose()?;
    let rules = rules.map(|r| rule::parse_rules(r, "rules")).transpose()?;
    Ok(PolicyEdit {
        name,
        description,
        scope,
        rules,
    })
}

#[utoipa::path(
    put,
    path = "/v1/policies/{id}",
    operation_id = "update_policy",
    summary = "Edit a draft.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$"), ("If-Match" = Option<String>, Header, description = "`\"<revision>\"` (the policy's `ETag`): change nothing and answer 412 unless the policy is at this revision.", pattern = "^(\\*|\"(0|[1-9][0-9]{0,9})\")$")),
    request_body = EditBody,
    responses(
        (status = 200, description = "The edited draft.", body = PolicyView),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody),
        (status = 412, description = "`precondition_failed`: the `If-Match` revision is no longer the policy's (`details.current_revision`); nothing changed.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn update(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(id): PathParams<String>,
    IfMatch(revision): IfMatch,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let edit = parse_edit(&body)?;
    let stored = state
        .store
        .update_policy(&caller.change(state.clock.now()), &id, edit, revision)
        .await?;
    Ok(Json(view(&state.store, &caller.principal, &stored).await?))
}

#[utoipa::path(
    delete,
    path = "/v1/policies/{id}",
    operation_id = "delete_policy",
    summary = "Delete a draft.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$"), ("If-Match" = Option<String>, Header, description = "`\"<revision>\"` (the policy's `ETag`): change nothing and answer 412 unless the policy is at this revision.", pattern = "^(\\*|\"(0|[1-9][0-9]{0,9})\")$")),
    responses(
        (status = 200, description = "The draft is deleted.", body = crate::answers::Deleted),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody),
        (status = 412, description = "`precondition_failed`: the `If-Match` revision is no longer the policy's (`details.current_revision`); nothing changed.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn remove(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(id): PathParams<String>,
    IfMatch(revision): IfMatch,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .delete_policy(&caller.change(state.clock.now()), &id, revision)
        .await?;
    super::json(&crate::answers::Deleted { deleted: id })
}

#[utoipa::path(
    post,
    path = "/v1/policies/{id}/rules",
    operation_id = "add_rule",
    summary = "Append a rule to a draft.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$"), ("If-Match" = Option<String>, Header, description = "`\"<revision>\"` (the policy's `ETag`): change nothing and answer 412 unless the policy is at this revision.", pattern = "^(\\*|\"(0|[1-9][0-9]{0,9})\")$")),
    request_body = crate::schemas::CoreRule,
    responses(
        (status = 201, description = "The draft with the rule appended.", body = PolicyView),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody),
        (status = 412, description = "`precondition_failed`: the `If-Match` revision is no longer the policy's (`details.current_revision`); nothing changed.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn add_rule(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(id): PathParams<String>,
    IfMatch(revision): IfMatch,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rule = Rule::parse(&body)?;
    let stored = state
        .store
        .add_rule(&caller.change(state.clock.now()), &id, rule, revision)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state.store, &caller.principal, &stored).await?),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/policies/{id}/rules/{rule_id}",
    operation_id = "remove_rule",
    summary = "Remove a rule from a draft.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$"), ("rule_id" = String, Path, description = "The rule's id within the policy.", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$"), ("If-Match" = Option<String>, Header, description = "`\"<revision>\"` (the policy's `ETag`): change nothing and answer 412 unless the policy is at this revision.", pattern = "^(\\*|\"(0|[1-9][0-9]{0,9})\")$")),
    responses(
        (status = 200, description = "The draft without the rule.", body = PolicyView),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody),
        (status = 412, description = "`precondition_failed`: the `If-Match` revision is no longer the policy's (`details.current_revision`); nothing changed.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn remove_rule(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams((id, rule_id)): PathParams<(String, String)>,
    IfMatch(revision): IfMatch,
) -> Result<Json<Value>, ApiError> {
    let rule_id = RuleId::new(rule_id.as_str())
        .map_err(|_| ApiError::not_found(format!("rule {rule_id} in policy {id}")))?;
    let stored = state
        .store
        .remove_rule(&caller.change(state.clock.now()), &id, &rule_id, revision)
        .await?;
    Ok(Json(view(&state.store, &caller.principal, &stored).await?))
}

/// `POST /v1/policies/{id}/activate`: how to activate a draft; the body may be empty.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    /// Activate without a validation of the current revision (recorded in the audit log).
    #[serde(default)]
    force: bool,
    /// Deprecate the lineage's other active versions in the same transaction.
    #[serde(default)]
    supersede: bool,
}

#[utoipa::path(
    post,
    path = "/v1/policies/{id}/activate",
    operation_id = "activate_policy",
    summary = "Activate a draft.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$"), ("If-Match" = Option<String>, Header, description = "`\"<revision>\"` (the policy's `ETag`): change nothing and answer 412 unless the policy is at this revision.", pattern = "^(\\*|\"(0|[1-9][0-9]{0,9})\")$")),
    request_body(content = ActivateBody, description = "How to activate; an empty body is the same as `{}`."),
    responses(
        (status = 200, description = "The active policy.", body = PolicyView),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody),
        (status = 412, description = "`precondition_failed`: the `If-Match` revision is no longer the policy's (`details.current_revision`); nothing changed.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn activate(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(id): PathParams<String>,
    IfMatch(revision): IfMatch,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let how: ActivateBody = parse(&body)?;
    let stored = state
        .store
        .activate(
            &caller.change(state.clock.now()),
            &id,
            Activation {
                force: how.force,
                supersede: how.supersede,
            },
            revision,
        )
        .await?;
    Ok(Json(view(&state.store, &caller.principal, &stored).await?))
}

/// `POST /v1/policies/{id}/deprecate`: `{}` (or no body).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeprecateBody)]
struct Empty {}

#[utoipa::path(
    post,
    path = "/v1/policies/{id}/deprecate",
    operation_id = "deprecate_policy",
    summary = "Deprecate an active policy.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    request_body(content = Empty, description = "`{}`; an empty body is the same."),
    responses(
        (status = 200, description = "The deprecated policy.", body = PolicyView),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody),
        (status = 409, description = "`conflict`: wrong lifecycle status or a duplicate.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn deprecate(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let _: Empty = parse(&body)?;
    let stored = state
        .store
        .deprecate(&caller.change(state.clock.now()), &id)
        .await?;
    Ok(Json(view(&state.store, &caller.principal, &stored).await?))
}

/// `POST /v1/policies/{id}/clone`: a new draft from any version; the body may be empty.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CloneBody {
    /// The clone's scope; the original's when absent.
    #[schema(value_type = Option<crate::schemas::CoreScope>)]
    scope: Option<Value>,
    /// The clone's name (1–200 characters, not blank, no control characters); the
    /// original's when absent.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/policies/{id}/clone",
    operation_id = "clone_policy",
    summary = "Clone any version into a new draft.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    request_body(content = CloneBody, description = "What to change in the clone; an empty body is the same as `{}`."),
    responses(
        (status = 201, description = "The new draft.", body = PolicyView),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn clone(
    State(state): State<AppState>,
    Writer(caller): Writer,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let raw: CloneBody = parse(&body)?;
    let scope = raw
        .scope
        .as_ref()
        .map(|s| Scope::parse(s).map_err(|e| e.under("scope")))
        .transpose()?;
    let stored = state
        .store
        .clone_policy(&caller.change(state.clock.now()), &id, scope, raw.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state.store, &caller.principal, &stored).await?),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/policies/{id}/versions",
    operation_id = "list_versions",
    summary = "List a policy's lineage, oldest first.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    responses(
        (status = 200, description = "Every version of the lineage, oldest first.", body = PolicyVersions<PolicyView>),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn versions(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(NoQuery {}): Params<NoQuery>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let (lineage, found) = state.store.versions(&caller.principal, &id).await?;
    let mut items = Vec::with_capacity(found.len());
    for stored in &found {
        items.push(view(&state.store, &caller.principal, stored).await?);
    }
    super::json(&PolicyVersions {
        lineage_id: lineage,
        items,
    })
}

#[utoipa::path(
    get,
    path = "/v1/policies/{id}/export",
    operation_id = "export_policy",
    summary = "Export a policy as a portable document.",
    tag = "policies",
    params(("id" = String, Path, description = "A policy version's id (`pol_...`).", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")),
    responses(
        (status = 200, description = "The policy as a portable document (`format: charter.policy/v1`).", body = crate::schemas::CorePolicyDocument),
        (status = 404, description = "`not_found`, also for another tenant's resources.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn export(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Params(NoQuery {}): Params<NoQuery>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let stored = state.store.record_export(&caller.change(now), &id).await?;
    let document = PolicyDocument::export(&stored.policy, now);
    serde_json::to_value(&document)
        .map(Json)
        .map_err(|e| ApiError::internal(&e.to_string()))
}

#[utoipa::path(
    post,
    path = "/v1/policies/import",
    operation_id = "import_policies",
    summary = "Import policy documents as drafts, all or nothing.",
    tag = "policies",
    request_body = crate::schemas::ImportBody,
    responses(
        (status = 201, description = "The new drafts, in order.", body = Items<PolicyView>),
        (status = 400, description = "`invalid`: a bad body, query or header; `details.path` names the field.", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn import(
    State(state): State<AppState>,
    Writer(caller): Writer,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let change = caller.change(state.clock.now());
    let stored = import_drafts(&state.store, &change, &body).await?;
    let mut items = Vec::with_capacity(stored.len());
    for s in &stored {
        items.push(view(&state.store, &caller.principal, s).await?);
    }
    Ok((StatusCode::CREATED, super::json(&Items { items })?))
}

/// Why an import created nothing: a document is refused (its path starts with the document's
/// index when `body` is an array, `[2].rules[0].op`), or the store refused the drafts.
#[derive(Debug)]
pub(crate) enum ImportRefused {
    /// A document does not parse.
    Document(ParseError),
    /// The store refused (another tenant's scope, an unknown agent, a backend failure).
    Store(StoreError),
}

impl From<ImportRefused> for ApiError {
    fn from(e: ImportRefused) -> ApiError {
        match e {
            ImportRefused::Document(e) => e.into(),
            ImportRefused::Store(e) => e.into(),
        }
    }
}

/// Parses what an import receives (one `charter.policy/v1` document, or an array of them) into
/// draft definitions, each rehomed for `change`'s principal. The API and the workspace both
/// import through here, so they accept and refuse the same documents.
pub(crate) fn import_definitions(
    body: &Value,
    change: &Change,
) -> Result<Vec<PolicyDefinition>, ParseError> {
    let documents = match body {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, d)| PolicyDocument::parse(d).map_err(|e| e.under(&format!("[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?,
        other => vec![PolicyDocument::parse(other)?],
    };
    if documents.is_empty() {
        return Err(ParseError::new("", "no documents to import"));
    }
    Ok(documents
        .into_iter()
        .map(|document| {
            let mut definition = document.into_definition();
            rehome(&mut definition, change);
            definition
        })
        .collect())
}

/// Imports `body`'s documents as drafts by `change`, all or nothing: the store creates every
/// draft in one transaction, or none.
pub(crate) async fn import_drafts(
    store: &Store,
    change: &Change,
    body: &Value,
) -> Result<Vec<StoredPolicy>, ImportRefused> {
    let definitions = import_definitions(body, change).map_err(ImportRefused::Document)?;
    store
        .import_policies(change, definitions)
        .await
        .map_err(ImportRefused::Store)
}

/// A tenant- or agent-scoped document imported with a tenant key lands in that key's tenant
/// (product.md §8); a platform key keeps the document's tenant.
fn rehome(definition: &mut PolicyDefinition, change: &Change) {
    if let Principal::Tenant(own) = &change.principal {
        match &mut definition.scope {
            Scope::Tenant { tenant_id } | Scope::Agent { tenant_id, .. } => {
                tenant_id.clone_from(own);
            }
            Scope::Platform => {}
        }
    }
}
