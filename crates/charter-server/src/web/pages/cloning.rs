//! Cloning from a policy's page: a new draft from any version, in the same scope (the next
//! version of its lineage) or in another one (version 1 of a new lineage), optionally renamed.
//!
//! The page's quick Clone button posts no fields and clones in place; the clone page offers the
//! name and the scope picker. Both call `Store::clone_policy` with the session's caller, and
//! the scope is read by core's `Scope::parse`, as `POST /v1/policies/{id}/clone` reads it.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use charter_core::{ParseError, Scope};
use charter_store::StoredPolicy;
use serde::Deserialize;

use super::authoring::{at, refusal};
use super::lifecycle::go;
use super::policies::{Row, visible};
use super::scopes::{self, Picker};
use crate::state::AppState;
use crate::web::forms::{FormErrors, Refusal};
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// The clone form; every field is optional (the quick Clone button sends none of them).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloneForm {
    /// The token, checked by the CSRF guard.
    #[serde(rename = "csrf", default)]
    _csrf: Option<String>,
    /// The clone's name; empty keeps the source's.
    #[serde(default)]
    name: Option<String>,
    /// `platform`, `tenant` or `agent`; absent keeps the source's scope.
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    agent: String,
}

/// The clone page.
#[derive(Template)]
#[template(path = "policy_clone.html", blocks = ["content"])]
struct ClonePage {
    chrome: Chrome,
    row: Row,
    /// The name in the form.
    name: String,
    picker: Picker,
    errors: FormErrors,
}

render::page!(ClonePage);

/// The clone page of `stored` with the form's choices and `errors`.
async fn clone_page(
    state: &AppState,
    visitor: &Visitor,
    chrome: Chrome,
    stored: &StoredPolicy,
    form: &CloneForm,
    errors: FormErrors,
) -> Result<ClonePage, WebError> {
    let (scope, tenant, agent) = match &form.scope {
        Some(scope) => (scope.clone(), form.tenant.clone(), form.agent.clone()),
        None => scopes::inputs(&stored.policy.definition.scope),
    };
    Ok(ClonePage {
        chrome,
        row: Row::of(stored),
        name: form
            .name
            .clone()
            .unwrap_or_else(|| stored.policy.definition.name.clone()),
        picker: Picker::load(state, visitor, &scope, &tenant, &agent).await?,
        errors,
    })
}

/// `GET /policies/{id}/clone`: the clone's name and scope, prefilled with the source's.
pub(crate) async fn clone_form(
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
        format!("/policies/{id}/clone"),
    )
    .await?;
    let page = async {
        visitor.writer()?;
        let stored = visible(&state, &visitor, &id).await?;
        let form = CloneForm::default();
        clone_page(
            &state,
            &visitor,
            chrome.clone(),
            &stored,
            &form,
            FormErrors::default(),
        )
        .await
    };
    match page.await {
        Ok(page) => Ok(render::respond(StatusCode::OK, htmx, &page)),
        Err(e) => Ok(e.in_layout(chrome, htmx)),
    }
}

/// The clone's name and scope as the form gives them: `None` keeps the source's.
fn read(form: &CloneForm) -> Result<(Option<String>, Option<Scope>), ParseError> {
    let name = form
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    let scope = form
        .scope
        .as_deref()
        .map(|scope| {
            Scope::parse(&scopes::scope_json(scope, &form.tenant, &form.agent))
                .map_err(|e| e.under("scope"))
        })
        .transpose()?;
    Ok((name, scope))
}

/// `POST /policies/{id}/clone`: clones and opens the new draft; the clone page again with its
/// errors beside their inputs (422) when refused, and nothing created.
pub(crate) async fn clone(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CloneForm>, FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(
        &state,
        &visitor,
        "policies",
        format!("/policies/{id}/clone"),
    )
    .await?;
    let found = async {
        let caller = visitor.writer()?.clone();
        Ok::<_, WebError>((caller, visible(&state, &visitor, &id).await?))
    };
    let (caller, stored) = match found.await {
        Ok(found) => found,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let Ok(Form(form)) = form else {
        return Ok(WebError::BadRequest(
            "the form takes `name`, `scope`, `tenant` and `agent`".into(),
        )
        .in_layout(chrome, htmx));
    };
    let scope = form.scope.clone().unwrap_or_default();
    let cloned = match read(&form) {
        Ok((name, new_scope)) => state
            .store
            .clone_policy(&caller.change(state.clock.now()), &id, new_scope, name)
            .await
            .map_err(|e| refusal(e, &scope)),
        Err(e) => Err(Refusal::Form(at(&e.path, e.message, &scope))),
    };
    let errors = match cloned {
        Ok(clone) => return Ok(go(htmx, &format!("/policies/{}", clone.policy.id))),
        Err(Refusal::Page(e)) => return Ok(e.in_layout(chrome, htmx)),
        Err(Refusal::Form(errors)) => errors,
    };
    match clone_page(&state, &visitor, chrome.clone(), &stored, &form, errors).await {
        Ok(page) => Ok(render::respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            htmx,
            &page,
        )),
        Err(e) => Ok(e.in_layout(chrome, htmx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fields_clone_in_place() {
        assert!(matches!(read(&CloneForm::default()), Ok((None, None))));
        let blank = CloneForm {
            name: Some("  ".into()),
            ..CloneForm::default()
        };
        assert!(matches!(read(&blank), Ok((None, None))));
    }

    #[test]
    fn a_scope_is_read_as_the_api_reads_it() {
        let form = CloneForm {
            name: Some(" Guard v2 ".into()),
            scope: Some("tenant".into()),
            tenant: "globex".into(),
            ..CloneForm::default()
        };
        let Ok((name, Some(scope))) = read(&form) else {
            panic!("a tenant scope");
        };
        assert_eq!(name.as_deref(), Some("Guard v2"));
        assert_eq!(
            scope.tenant_id().map(ToString::to_string).as_deref(),
            Some("globex")
        );
        let form = CloneForm {
            scope: Some("agent".into()),
            ..CloneForm::default()
        };
        let Err(e) = read(&form) else {
            panic!("an agent scope without an agent");
        };
        assert!(e.path.starts_with("scope."), "{}", e.path);
    }
}
