//! Authoring from the workspace: a new draft from a form, and drafts imported from a file.
//!
//! Both go through what the API goes through, with the session's caller: a new draft is the
//! JSON `POST /v1/policies` takes, parsed by `PolicyDefinition::parse` and created by
//! `Store::create_policy`; an import is `api::policies::import_drafts`, the code behind
//! `POST /v1/policies/import` (rehomed into a tenant key's tenant, all or nothing). So the
//! pages accept and refuse exactly what the API does, and the parser's JSON path says which
//! field is at fault.

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use charter_core::ParseError;
use charter_core::policy::PolicyDefinition;
use charter_store::{StoreError, StoredPolicy};
use serde::Deserialize;
use serde_json::{Value, json};

use super::lifecycle::go;
use super::policies::Row;
use super::scopes::{self, Picker};
use crate::api::policies::{ImportRefused, import_drafts};
use crate::extract::Caller;
use crate::state::AppState;
use crate::web::forms::{FormErrors, Refusal};
use crate::web::multipart;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// What the new-policy form holds: as typed, to show again beside its errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPolicy {
    /// The token, checked by the CSRF guard.
    #[serde(rename = "csrf", default)]
    _csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// `platform`, `tenant` or `agent`.
    #[serde(default)]
    scope: String,
    /// The tenant of a tenant-scoped policy.
    #[serde(default)]
    tenant: String,
    /// The agent of an agent-scoped policy, as `tenant/agent` (neither id may hold a `/`).
    #[serde(default)]
    agent: String,
}

/// The new-policy page.
#[derive(Template)]
#[template(path = "policy_new.html", blocks = ["content"])]
struct NewPage {
    chrome: Chrome,
    picker: Picker,
    form: NewPolicy,
    errors: FormErrors,
}

render::page!(NewPage);

/// The page with `form` and its `errors`: the tenants the key sees, and their agents.
async fn new_page(
    state: &AppState,
    visitor: &Visitor,
    chrome: Chrome,
    form: NewPolicy,
    errors: FormErrors,
) -> Result<NewPage, (WebError, Chrome)> {
    match Picker::load(state, visitor, &form.scope, &form.tenant, &form.agent).await {
        Ok(picker) => Ok(NewPage {
            chrome,
            picker,
            form,
            errors,
        }),
        Err(e) => Err((e, chrome)),
    }
}

/// Answers `page`, or the error that kept it from being built.
fn answer(status: StatusCode, htmx: bool, page: Result<NewPage, (WebError, Chrome)>) -> Response {
    match page {
        Ok(page) => render::respond(status, htmx, &page),
        Err((e, chrome)) => e.in_layout(chrome, htmx),
    }
}

/// `GET /policies/new`.
pub(crate) async fn new_form(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", "/policies/new".to_owned()).await?;
    if let Err(e) = visitor.writer() {
        return Ok(e.in_layout(chrome, htmx));
    }
    let page = new_page(
        &state,
        &visitor,
        chrome,
        NewPolicy::default(),
        FormErrors::default(),
    )
    .await;
    Ok(answer(StatusCode::OK, htmx, page))
}

/// The form field that shows an error at the definition's JSON `path`; `None`: above the form.
pub(crate) fn field_of(path: &str, scope: &str) -> Option<&'static str> {
    match path {
        "name" => Some("name"),
        "description" => Some("description"),
        _ => scopes::field_of(path, scope),
    }
}

/// The errors of a refusal at `path`: beside its field, or above the form.
pub(crate) fn at(path: &str, message: String, scope: &str) -> FormErrors {
    match field_of(path, scope) {
        Some(field) => FormErrors::one(field, message),
        None if path.is_empty() => FormErrors::above(message),
        None => FormErrors::above(format!("{path}: {message}")),
    }
}

/// What a store refusal of a policy form (new, details, clone) says: an invalid value beside
/// its input, a scope the key may not use beside the scope, anything else as
/// `FormErrors::refusal` tells it (a stale revision above the form, a backend failure as a
/// page).
pub(crate) fn refusal(e: StoreError, scope: &str) -> Refusal {
    match e {
        StoreError::Invalid { path, message } => Refusal::Form(at(&path, message, scope)),
        StoreError::Forbidden(message) => Refusal::Form(FormErrors::one("scope", message)),
        other => FormErrors::refusal(other, &[], None),
    }
}

/// The definition the form describes, as the JSON the API takes (`POST /v1/policies`).
fn definition_json(form: &NewPolicy) -> Value {
    json!({
        "name": form.name.trim(),
        "description": form.description.trim(),
        "scope": scopes::scope_json(&form.scope, &form.tenant, &form.agent),
    })
}

/// Creates the draft `form` describes, by `caller`.
async fn create_draft(
    state: &AppState,
    caller: &Caller,
    form: &NewPolicy,
) -> Result<StoredPolicy, Refusal> {
    let definition = PolicyDefinition::parse(&definition_json(form))
        .map_err(|e: ParseError| Refusal::Form(at(&e.path, e.message, &form.scope)))?;
    state
        .store
        .create_policy(&caller.change(state.clock.now()), definition, false)
        .await
        .map_err(|e| refusal(e, &form.scope))
}

/// `POST /policies/new`: creates the draft and opens its page; the form again with its errors
/// beside their fields (422) when the parser or the store refuses it, and nothing created.
pub(crate) async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    form: Result<axum::Form<NewPolicy>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", "/policies/new".to_owned()).await?;
    let caller = match visitor.writer() {
        Ok(caller) => caller,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let Ok(axum::Form(form)) = form else {
        return Ok(WebError::BadRequest(
            "the form takes `name`, `description`, `scope`, `tenant` and `agent`".into(),
        )
        .in_layout(chrome, htmx));
    };
    let errors = match create_draft(&state, caller, &form).await {
        Ok(stored) => return Ok(go(htmx, &format!("/policies/{}", stored.policy.id))),
        Err(Refusal::Page(e)) => return Ok(e.in_layout(chrome, htmx)),
        Err(Refusal::Form(errors)) => errors,
    };
    let page = new_page(&state, &visitor, chrome, form, errors).await;
    Ok(answer(StatusCode::UNPROCESSABLE_ENTITY, htmx, page))
}

/// The import page: the upload form, its error, or the drafts just imported.
#[derive(Template)]
#[template(path = "policy_import.html", blocks = ["content"])]
struct ImportPage {
    chrome: Chrome,
    /// Why nothing was imported: the document's path and what is wrong there.
    error: Option<(String, String)>,
    /// The drafts just imported, in the file's order.
    imported: Vec<Row>,
    /// The largest body the server takes.
    limit_kib: usize,
}

render::page!(ImportPage);

/// `GET /policies/import`.
pub(crate) async fn import_form(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", "/policies/import".to_owned()).await?;
    if let Err(e) = visitor.writer() {
        return Ok(e.in_layout(chrome, htmx));
    }
    let page = ImportPage {
        chrome,
        error: None,
        imported: Vec::new(),
        limit_kib: state.body_limit / 1024,
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// The file of an upload, as text.
fn uploaded(headers: &HeaderMap, body: &[u8]) -> Result<String, (String, String)> {
    let refused = |message: &str| (String::new(), message.to_owned());
    let boundary = multipart::boundary(headers)
        .ok_or_else(|| refused("send the form with its file (multipart/form-data)"))?;
    let parts = multipart::parts(body, &boundary)
        .ok_or_else(|| refused("the upload is not a well-formed form"))?;
    let file = parts
        .into_iter()
        .find(|p| p.name == "file")
        .filter(|p| !p.data.is_empty())
        .ok_or_else(|| refused("choose a file to import"))?;
    String::from_utf8(file.data.to_vec()).map_err(|_| refused("the file is not UTF-8 text"))
}

/// `POST /policies/import`: imports the uploaded file's documents as drafts, all or nothing,
/// and lists them; when one is refused, its path and why (422), and nothing imported.
pub(crate) async fn import(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", "/policies/import".to_owned()).await?;
    let caller = match visitor.writer() {
        Ok(caller) => caller,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let limit = state.body_limit;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Ok(WebError::BadRequest(format!(
            "the upload is larger than {} KiB: split the documents over several files",
            limit / 1024
        ))
        .in_layout(chrome, htmx));
    };
    let outcome = match uploaded(&headers, &bytes) {
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(value) => {
                let change = caller.change(state.clock.now());
                match import_drafts(&state.store, &change, &value).await {
                    Ok(stored) => Ok(stored),
                    Err(ImportRefused::Document(e)) => Err((e.path, e.message)),
                    Err(ImportRefused::Store(StoreError::Invalid { path, message })) => {
                        Err((path, message))
                    }
                    Err(ImportRefused::Store(e)) => match FormErrors::refusal(e, &[], None) {
                        Refusal::Page(e) => return Ok(e.in_layout(chrome, htmx)),
                        Refusal::Form(errors) => {
                            Err((String::new(), errors.general().unwrap_or("").to_owned()))
                        }
                    },
                }
            }
            Err(e) => Err((
                String::new(),
                format!(
                    "the file is not JSON: {}",
                    charter_core::parse::json_error(&e)
                ),
            )),
        },
        Err(refused) => Err(refused),
    };
    let (status, page) = match outcome {
        Ok(stored) => (
            StatusCode::CREATED,
            ImportPage {
                chrome,
                error: None,
                imported: stored.iter().map(Row::of).collect(),
                limit_kib: limit / 1024,
            },
        ),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ImportPage {
                chrome,
                error: Some(error),
                imported: Vec::new(),
                limit_kib: limit / 1024,
            },
        ),
    };
    Ok(render::respond(status, htmx, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(scope: &str, tenant: &str, agent: &str) -> NewPolicy {
        NewPolicy {
            name: " Guard ".into(),
            scope: scope.into(),
            tenant: tenant.into(),
            agent: agent.into(),
            ..NewPolicy::default()
        }
    }

    #[test]
    fn the_form_is_the_json_the_api_takes() {
        let json = definition_json(&form("agent", "", "acme/support"));
        assert_eq!(
            json,
            json!({"name": "Guard", "description": "",
                   "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"}})
        );
        let json = definition_json(&form("tenant", "acme", "globex/x"));
        assert_eq!(
            json["scope"],
            json!({"type": "tenant", "tenant_id": "acme"})
        );
        assert_eq!(
            definition_json(&form("galaxy", "", ""))["scope"],
            json!({"type": "galaxy"})
        );
    }

    #[test]
    fn a_path_lands_beside_its_field() {
        assert_eq!(field_of("name", "tenant"), Some("name"));
        assert_eq!(field_of("scope.type", "galaxy"), Some("scope"));
        assert_eq!(field_of("scope.tenant_id", "tenant"), Some("tenant"));
        // An agent's tenant comes from the agent picker.
        assert_eq!(field_of("scope.tenant_id", "agent"), Some("agent"));
        assert_eq!(field_of("scope.agent_id", "agent"), Some("agent"));
        assert_eq!(field_of("rules[0]", "agent"), None);
        let errors = at("rules[0]", "bad".into(), "agent");
        assert_eq!(errors.general(), Some("rules[0]: bad"));
    }
}
