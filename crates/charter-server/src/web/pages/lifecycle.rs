//! A policy's lifecycle from its page: activate, deprecate, delete and export, each
//! calling the store operation the API calls, with the session's caller (so the scope checks,
//! the tenant's bounds and the audit actor are the API's own).
//!
//! Activate, deprecate and delete first show a page of their own that says what will happen
//! (no script `confirm()`: it works without script and under the CSP); its button posts the
//! change, guarded against CSRF like every workspace POST. Export is a download; cloning has
//! its own module (`cloning`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use charter_core::PolicyDocument;
use charter_core::policy::Status;
use charter_store::Activation;
use serde::Deserialize;

use super::policies::{Row, policy_id, visible, when};
use crate::state::AppState;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// A change a policy's page confirms before making it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Activate,
    Deprecate,
    Delete,
}

impl Change {
    /// The path segment after `/policies/{id}/`.
    fn verb(self) -> &'static str {
        match self {
            Change::Activate => "activate",
            Change::Deprecate => "deprecate",
            Change::Delete => "delete",
        }
    }

    /// The status the policy must have.
    fn applies_to(self) -> Status {
        match self {
            Change::Activate | Change::Delete => Status::Draft,
            Change::Deprecate => Status::Active,
        }
    }
}

/// What the confirmation page says of the policy's validation (activation only).
struct Validation {
    /// Validated at the current revision: activation needs no force.
    current: bool,
    /// The sentence saying so.
    text: String,
}

/// The page confirming a change.
#[derive(Template)]
#[template(path = "policy_confirm.html", blocks = ["content"])]
struct ConfirmPage {
    chrome: Chrome,
    row: Row,
    verb: &'static str,
    heading: String,
    lead: &'static str,
    button: &'static str,
    danger: bool,
    validation: Option<Validation>,
}

render::page!(ConfirmPage);

/// The form of a change: its token (checked by the CSRF guard) and, for an activation, its two
/// boxes, unchecked when absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeForm {
    #[serde(default, rename = "csrf")]
    _csrf: Option<String>,
    #[serde(default)]
    force: Option<String>,
    #[serde(default)]
    supersede: Option<String>,
}

/// `GET /policies/{id}/{activate|deprecate|delete}`: what the change does, and its button.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let path = format!("/policies/{id}/{verb}");
    let chrome = Chrome::load(&state, &visitor, "policies", path).await?;
    let change = match verb.as_str() {
        "activate" => Change::Activate,
        "deprecate" => Change::Deprecate,
        "delete" => Change::Delete,
        _ => return Ok(WebError::NotFound.in_layout(chrome, htmx)),
    };
    if let Err(e) = visitor.writer() {
        return Ok(e.in_layout(chrome, htmx));
    }
    let stored = match visible(&state, &visitor, &id).await {
        Ok(stored) => stored,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    if stored.policy.status != change.applies_to() {
        let message = format!(
            "this policy is {}: only a {} policy can be {}d",
            stored.policy.status.as_str(),
            change.applies_to().as_str(),
            change.verb(),
        );
        return Ok(WebError::BadRequest(message).in_layout(chrome, htmx));
    }
    let validation = if change == Change::Activate {
        let latest = state
            .store
            .latest_validation(&visitor.caller.principal, &id)
            .await?;
        Some(match latest {
            Some((revision, at, _)) if revision == stored.policy.revision => Validation {
                current: true,
                text: format!("Validated at this revision on {}.", when(at)),
            },
            Some((revision, at, _)) => Validation {
                current: false,
                text: format!(
                    "Last validated at revision {revision} on {}; it has changed since \
                     (revision {}). Validate it again, or activate it anyway.",
                    when(at),
                    stored.policy.revision
                ),
            },
            None => Validation {
                current: false,
                text: "Never validated: replay recent runs against it first, or activate it \
                       anyway."
                    .to_owned(),
            },
        })
    } else {
        None
    };
    let row = Row::of(&stored);
    let (heading, lead, button, danger) = match change {
        Change::Activate => (
            format!("Activate “{}”?", row.name),
            "From now on every run that starts in its scope pins it, and it cannot be edited \
             any more (clone it to change it). Runs already running keep the rules they started \
             with.",
            "Activate",
            false,
        ),
        Change::Deprecate => (
            format!("Deprecate “{}”?", row.name),
            "Runs that start from now on no longer pin it; runs already running keep it until \
             they end. A deprecated policy cannot be activated again: clone it for a new draft.",
            "Deprecate",
            true,
        ),
        Change::Delete => (
            format!("Delete the draft “{}”?", row.name),
            "The draft is removed; the audit log keeps its full definition. It cannot be undone.",
            "Delete draft",
            true,
        ),
    };
    let page = ConfirmPage {
        chrome,
        row,
        verb: change.verb(),
        heading,
        lead,
        button,
        danger,
        validation,
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// Where a change leaves the visitor: a redirect, as htmx follows it (`HX-Redirect`) or a
/// browser does.
pub(crate) fn go(htmx: bool, to: &str) -> Response {
    match (htmx, HeaderValue::from_str(to)) {
        (true, Ok(to)) => (StatusCode::OK, [("hx-redirect", to)]).into_response(),
        _ => Redirect::to(to).into_response(),
    }
}

/// `POST /policies/{id}/{activate|deprecate|delete}`: makes the change, then opens the policy
/// (the list after a delete).
pub(crate) async fn act(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<ChangeForm>,
) -> Result<Response, WebError> {
    let how = Activation {
        force: form.force.is_some(),
        supersede: form.supersede.is_some(),
    };
    let target = id.clone();
    change(
        &state,
        &visitor,
        &headers,
        &target,
        |state, caller| async move {
            let change = caller.change(state.clock.now());
            let store = &state.store;
            match verb.as_str() {
                "activate" => store
                    .activate(&change, &id, how, None)
                    .await
                    .map(|_| format!("/policies/{id}")),
                "deprecate" => store
                    .deprecate(&change, &id)
                    .await
                    .map(|_| format!("/policies/{id}")),
                "delete" => store
                    .delete_policy(&change, &id, None)
                    .await
                    .map(|()| "/policies".to_owned()),
                _ => Err(charter_store::StoreError::NotFound {
                    what: format!("/policies/{id}/{verb}"),
                }),
            }
        },
    )
    .await
}

/// Makes a change with the visitor's writing caller, then goes where it says; a refusal
/// (wrong status, no `write` scope, another tenant's policy) is a page that says why, and
/// nothing changed.
async fn change<F, Fut>(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    id: &str,
    make: F,
) -> Result<Response, WebError>
where
    F: FnOnce(AppState, crate::extract::Caller) -> Fut,
    Fut: Future<Output = Result<String, charter_store::StoreError>>,
{
    let htmx = is_htmx(headers);
    let chrome = Chrome::load(state, visitor, "policies", format!("/policies/{id}")).await?;
    let caller = match visitor.writer() {
        Ok(caller) => caller.clone(),
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    if let Err(e) = policy_id(id) {
        return Ok(e.in_layout(chrome, htmx));
    }
    match make(state.clone(), caller).await {
        Ok(to) => Ok(go(htmx, &to)),
        Err(e) => Ok(WebError::from(e).in_layout(chrome, htmx)),
    }
}

/// `GET /policies/{id}/export`: the policy as a portable document, downloaded (recorded in the
/// audit log as `policy.exported`, as the API's export is).
pub(crate) async fn export(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    if let Err(e) = policy_id(&id) {
        let chrome = Chrome::load(&state, &visitor, "policies", format!("/policies/{id}")).await?;
        return Ok(e.in_layout(chrome, htmx));
    }
    let now = state.clock.now();
    let stored = match state
        .store
        .record_export(&visitor.caller.change(now), &id)
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            let chrome =
                Chrome::load(&state, &visitor, "policies", format!("/policies/{id}")).await?;
            return Ok(WebError::from(e).in_layout(chrome, htmx));
        }
    };
    let document = PolicyDocument::export(&stored.policy, now);
    let body = serde_json::to_string_pretty(&document).map_err(|e| {
        tracing::error!(error = %e, "serializing an export");
        WebError::Internal
    })?;
    // The id alone names the file: it is safe in a header whatever the policy's name holds.
    let disposition = format!("attachment; filename=\"{}.json\"", stored.policy.id);
    let disposition = HeaderValue::from_str(&disposition).map_err(|_| WebError::Internal)?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
