//! Editing a draft as a whole: its details (name, description, scope) in a form, and its whole
//! definition in a JSON editor.
//!
//! Both are `PUT /v1/policies/{id}` from a page: the form becomes the JSON the API takes, core's
//! parsers read it (so the page refuses what the API refuses, and the JSON path of a refusal
//! says which input is at fault), and `Store::update_policy` writes it with the session's
//! caller. Each form carries the revision it was opened at, sent as the API's `If-Match`: a
//! draft changed meanwhile (in another tab, by another operator) is refused, not overwritten.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use charter_core::ParseError;
use charter_core::policy::{PolicyDefinition, Status};
use charter_store::{PolicyEdit, StoreError, StoredPolicy};
use serde::Deserialize;
use serde_json::Value;

use super::authoring::{at, refusal};
use super::lifecycle::go;
use super::policies::{Row, visible};
use super::scopes::{self, Picker};
use crate::api::policies::edit_of;
use crate::extract::Caller;
use crate::state::AppState;
use crate::web::forms::{FormErrors, Refusal};
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// The details form: as typed, to show again beside its errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetailsForm {
    /// The token, checked by the CSRF guard.
    #[serde(rename = "csrf", default)]
    _csrf: Option<String>,
    /// The revision the form was opened at.
    #[serde(default)]
    revision: Option<u32>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// Absent when the lineage's scope is fixed (the form then offers no scope).
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    agent: String,
}

/// The details page.
#[derive(Template)]
#[template(path = "policy_details.html", blocks = ["content"])]
struct DetailsPage {
    chrome: Chrome,
    row: Row,
    revision: u32,
    form: DetailsForm,
    /// `None` when the lineage has had an active version: its scope is fixed.
    picker: Option<Picker>,
    errors: FormErrors,
}

render::page!(DetailsPage);

/// The JSON editor's form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefinitionForm {
    /// The token, checked by the CSRF guard.
    #[serde(rename = "csrf", default)]
    _csrf: Option<String>,
    /// The revision the form was opened at.
    #[serde(default)]
    revision: Option<u32>,
    /// The whole definition, as JSON.
    #[serde(default)]
    definition: String,
}

/// The JSON editor's page.
#[derive(Template)]
#[template(path = "policy_json.html", blocks = ["content"])]
struct DefinitionPage {
    chrome: Chrome,
    row: Row,
    revision: u32,
    /// The text in the editor.
    text: String,
    /// Why the text was refused: the JSON path at fault (empty for the whole text) and what
    /// is wrong there.
    error: Option<(String, String)>,
}

render::page!(DefinitionPage);

/// The draft `id` the visitor may change, with the visitor's writing caller: a key without
/// `write` is refused, another tenant's policy is not found (as a made-up id is), and a policy
/// past draft is a page that says how to change it (clone it). Every page that edits a draft
/// (its details, its JSON, its rules) starts here.
pub(crate) async fn writable_draft(
    state: &AppState,
    visitor: &Visitor,
    id: &str,
) -> Result<(Caller, StoredPolicy), WebError> {
    let caller = visitor.writer()?.clone();
    let stored = visible(state, visitor, id).await?;
    if stored.policy.status != Status::Draft {
        return Err(WebError::BadRequest(format!(
            "this policy is {}: only a draft can be edited; clone it for a new draft",
            stored.policy.status.as_str()
        )));
    }
    Ok((caller, stored))
}

/// Whether the scope of `stored`'s lineage is fixed: one of its versions has been active.
async fn scope_fixed(
    state: &AppState,
    visitor: &Visitor,
    stored: &StoredPolicy,
) -> Result<bool, WebError> {
    let (_, versions) = state
        .store
        .versions(&visitor.caller.principal, stored.policy.id.as_str())
        .await?;
    Ok(versions.iter().any(|v| v.policy.activated_at.is_some()))
}

/// The details page of `stored` with `form` and its `errors`.
async fn details_page(
    state: &AppState,
    visitor: &Visitor,
    chrome: Chrome,
    stored: &StoredPolicy,
    form: DetailsForm,
    errors: FormErrors,
) -> Result<DetailsPage, WebError> {
    let picker = if scope_fixed(state, visitor, stored).await? {
        None
    } else {
        let scope = form.scope.as_deref().unwrap_or_default();
        Some(Picker::load(state, visitor, scope, &form.tenant, &form.agent).await?)
    };
    Ok(DetailsPage {
        chrome,
        row: Row::of(stored),
        revision: stored.policy.revision,
        form,
        picker,
        errors,
    })
}

/// `GET /policies/{id}/details`: the draft's name, description and scope in a form.
pub(crate) async fn details_form(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(
        &state,
        &visitor,
        "policies",
        format!("/policies/{id}/details"),
    )
    .await?;
    let (_, stored) = match writable_draft(&state, &visitor, &id).await {
        Ok(found) => found,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let definition = &stored.policy.definition;
    let (scope, tenant, agent) = scopes::inputs(&definition.scope);
    let form = DetailsForm {
        name: definition.name.clone(),
        description: definition.description.clone(),
        scope: Some(scope),
        tenant,
        agent,
        ..DetailsForm::default()
    };
    let page = details_page(
        &state,
        &visitor,
        chrome.clone(),
        &stored,
        form,
        FormErrors::default(),
    );
    match page.await {
        Ok(page) => Ok(render::respond(StatusCode::OK, htmx, &page)),
        Err(e) => Ok(e.in_layout(chrome, htmx)),
    }
}

/// The edit the details form describes, read by the parsers `PUT /v1/policies/{id}` uses.
fn read_details(form: &DetailsForm) -> Result<PolicyEdit, ParseError> {
    let scope = form
        .scope
        .as_ref()
        .map(|scope| scopes::scope_json(scope, &form.tenant, &form.agent));
    edit_of(
        Some(form.name.trim().to_owned()),
        Some(form.description.trim().to_owned()),
        scope.as_ref(),
        None,
    )
}

/// `POST /policies/{id}/details`: saves the details and opens the draft; the form again with
/// its errors beside their inputs (422) when refused, and nothing changed.
pub(crate) async fn save_details(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<DetailsForm>, FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(
        &state,
        &visitor,
        "policies",
        format!("/policies/{id}/details"),
    )
    .await?;
    let (caller, stored) = match writable_draft(&state, &visitor, &id).await {
        Ok(found) => found,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let Ok(Form(form)) = form else {
        return Ok(WebError::BadRequest(
            "the form takes `revision`, `name`, `description`, `scope`, `tenant` and `agent`"
                .into(),
        )
        .in_layout(chrome, htmx));
    };
    let scope = form.scope.clone().unwrap_or_default();
    let saved = match read_details(&form) {
        Ok(edit) => {
            let change = caller.change(state.clock.now());
            state
                .store
                .update_policy(&change, &id, edit, form.revision)
                .await
                .map_err(|e| refusal(e, &scope))
        }
        Err(e) => Err(Refusal::Form(at(&e.path, e.message, &scope))),
    };
    let errors = match saved {
        Ok(_) => return Ok(go(htmx, &format!("/policies/{id}"))),
        Err(Refusal::Page(e)) => return Ok(e.in_layout(chrome, htmx)),
        Err(Refusal::Form(errors)) => errors,
    };
    match details_page(&state, &visitor, chrome.clone(), &stored, form, errors).await {
        Ok(page) => Ok(render::respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            htmx,
            &page,
        )),
        Err(e) => Ok(e.in_layout(chrome, htmx)),
    }
}

/// The definition the JSON editor opens with: what `PUT /v1/policies/{id}` takes.
fn definition_text(definition: &PolicyDefinition) -> Result<String, WebError> {
    serde_json::to_string_pretty(definition).map_err(|e| {
        tracing::error!(error = %e, "serializing a definition");
        WebError::Internal
    })
}

/// `GET /policies/{id}/definition`: the draft's whole definition in a JSON editor.
pub(crate) async fn definition_form(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(
        &state,
        &visitor,
        "policies",
        format!("/policies/{id}/definition"),
    )
    .await?;
    let page = match writable_draft(&state, &visitor, &id).await {
        Ok((_, stored)) => match definition_text(&stored.policy.definition) {
            Ok(text) => DefinitionPage {
                chrome,
                row: Row::of(&stored),
                revision: stored.policy.revision,
                text,
                error: None,
            },
            Err(e) => return Ok(e.in_layout(chrome, htmx)),
        },
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// Why the editor's `text` cannot be saved, as `(path, message)`: not JSON, or refused by the
/// parser the API uses; `Ok` is the edit to make.
fn read_definition(text: &str) -> Result<PolicyEdit, (String, String)> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            String::new(),
            format!(
                "not JSON at line {}, column {}: {}",
                e.line(),
                e.column(),
                charter_core::parse::json_error(&e)
            ),
        )
    })?;
    let definition = PolicyDefinition::parse(&value).map_err(|e| (e.path, e.message))?;
    Ok(PolicyEdit {
        name: Some(definition.name),
        description: Some(definition.description),
        scope: Some(definition.scope),
        rules: Some(definition.rules),
    })
}

/// `POST /policies/{id}/definition`: replaces the draft's whole definition and opens it; the
/// editor again with the path at fault and why (422) when refused, and nothing changed.
pub(crate) async fn save_definition(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<DefinitionForm>, FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(
        &state,
        &visitor,
        "policies",
        format!("/policies/{id}/definition"),
    )
    .await?;
    let (caller, stored) = match writable_draft(&state, &visitor, &id).await {
        Ok(found) => found,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let Ok(Form(form)) = form else {
        return Ok(
            WebError::BadRequest("the form takes `revision` and `definition`".into())
                .in_layout(chrome, htmx),
        );
    };
    let saved = match read_definition(&form.definition) {
        Ok(edit) => {
            let change = caller.change(state.clock.now());
            match state
                .store
                .update_policy(&change, &id, edit, form.revision)
                .await
            {
                Ok(_) => Ok(()),
                Err(StoreError::Invalid { path, message }) => Err((path, message)),
                Err(e) => match FormErrors::refusal(e, &[], None) {
                    Refusal::Page(e) => return Ok(e.in_layout(chrome, htmx)),
                    Refusal::Form(errors) => {
                        Err((String::new(), errors.general().unwrap_or("").to_owned()))
                    }
                },
            }
        }
        Err(refused) => Err(refused),
    };
    match saved {
        Ok(()) => Ok(go(htmx, &format!("/policies/{id}"))),
        Err(error) => {
            let page = DefinitionPage {
                chrome,
                row: Row::of(&stored),
                revision: stored.policy.revision,
                text: form.definition,
                error: Some(error),
            };
            Ok(render::respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                htmx,
                &page,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_details_are_read_as_the_api_reads_them() {
        let form = DetailsForm {
            name: " Guard ".into(),
            description: "why".into(),
            scope: Some("agent".into()),
            agent: "acme/support".into(),
            ..DetailsForm::default()
        };
        let Ok(edit) = read_details(&form) else {
            panic!("a valid form");
        };
        assert_eq!(edit.name.as_deref(), Some("Guard"));
        assert!(matches!(
            edit.scope,
            Some(charter_core::Scope::Agent { .. })
        ));
        assert!(edit.rules.is_none());
        // A fixed scope is not offered, so not sent, so not changed.
        let form = DetailsForm {
            name: "Guard".into(),
            ..DetailsForm::default()
        };
        assert!(read_details(&form).is_ok_and(|edit| edit.scope.is_none()));
        let form = DetailsForm {
            name: "Guard".into(),
            scope: Some("agent".into()),
            ..DetailsForm::default()
        };
        let Err(e) = read_details(&form) else {
            panic!("an agent scope without an agent");
        };
        assert!(at(&e.path, e.message, "agent").get("agent").is_some());
    }

    #[test]
    fn the_editor_names_what_it_cannot_read() {
        let Err((path, message)) = read_definition("{\"name\": ") else {
            panic!("not JSON");
        };
        assert_eq!(path, "");
        assert!(message.starts_with("not JSON at line 1"), "{message}");
        let text = r#"{"name": "G", "scope": {"type": "platform"},
                       "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["x"],
                                  "when": [{"arg": "to", "op": "sounds_like", "value": 1}]}]}"#;
        let Err((path, _)) = read_definition(text) else {
            panic!("a bad op");
        };
        assert_eq!(path, "rules[0].when[0].op");
        let ok = r#"{"name": "G", "scope": {"type": "platform"}}"#;
        let Ok(edit) = read_definition(ok) else {
            panic!("a whole definition");
        };
        assert_eq!(edit.rules.map(|r| r.len()), Some(0));
    }
}
