//! Keys: the keys the visitor's key sees (never their values) with their usage, creating one
//! (its value shown once, on the answer to the form), and revoking one after a confirmation
//! page. Creation goes through the API's own `api::keys::create` (a key grants only scopes it
//! holds; a tenant key makes keys of its tenant), revocation through the store's
//! `revoke_key` with the API's `Change`; revoking the session's own key ends the session.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use charter_core::TenantId;
use charter_store::{ApiKey, KeyScope, Principal};
use serde::Deserialize;

use super::policies::when;
use crate::answers::CreatedKey;
use crate::extract::Caller;
use crate::state::AppState;
use crate::web::forms::{FormErrors, Refusal};
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// Every scope, in the order the form offers them.
const SCOPES: [KeyScope; 3] = [KeyScope::Read, KeyScope::Write, KeyScope::Execute];

/// A key as listed.
struct Row {
    id: String,
    name: String,
    scopes: String,
    /// Its tenant's id, or `Platform`.
    tenant: String,
    last4: String,
    calls: u64,
    last_used: Option<String>,
    created: String,
    revoked: Option<String>,
    /// Whether the session signed in with it.
    current: bool,
}

impl Row {
    fn of(key: &ApiKey, current: &str) -> Row {
        Row {
            id: key.id.clone(),
            name: key.name.clone(),
            scopes: key
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            tenant: key
                .tenant_id
                .clone()
                .unwrap_or_else(|| "Platform".to_owned()),
            last4: key.last4.clone(),
            calls: key.calls,
            last_used: key.last_used_at.map(when),
            created: when(key.created_at),
            revoked: key.revoked_at.map(when),
            current: key.id == current,
        }
    }
}

/// A scope the form offers: only those the visitor's key holds, since it can grant no other.
struct ScopeChoice {
    name: &'static str,
    checked: bool,
}

/// What the creation form holds, as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    /// The token, checked by the CSRF guard.
    #[serde(rename = "csrf", default)]
    _csrf: Option<String>,
    #[serde(default)]
    name: String,
    /// A platform key's choice: a tenant's id, or empty for a platform key. Named as the
    /// store names the field, so its refusals land next to it.
    #[serde(default)]
    tenant_id: Option<String>,
    scope_read: Option<String>,
    scope_write: Option<String>,
    scope_execute: Option<String>,
}

impl NewKey {
    /// The scopes ticked.
    fn scopes(&self) -> Vec<KeyScope> {
        [
            (KeyScope::Read, &self.scope_read),
            (KeyScope::Write, &self.scope_write),
            (KeyScope::Execute, &self.scope_execute),
        ]
        .into_iter()
        .filter(|(_, ticked)| ticked.is_some())
        .map(|(scope, _)| scope)
        .collect()
    }
}

/// The Keys page.
#[derive(Template)]
#[template(path = "keys.html", blocks = ["content"])]
struct KeysPage {
    chrome: Chrome,
    rows: Vec<Row>,
    /// The tenant whose keys are listed; `None`: every key the visitor's key sees.
    tenant: Option<String>,
    scopes: Vec<ScopeChoice>,
    /// The tenant chosen in the form (a platform key's), empty for a platform key.
    form_tenant: String,
    form_name: String,
    errors: FormErrors,
}

render::page!(KeysPage);

/// The page listing the keys `visitor` sees, with the creation form as `form` left it.
async fn page(
    state: &AppState,
    visitor: &Visitor,
    chrome: Chrome,
    form: &NewKey,
    errors: FormErrors,
) -> Result<KeysPage, (WebError, Chrome)> {
    let keys = match state.store.list_keys(&visitor.caller.principal).await {
        Ok(keys) => keys,
        Err(e) => return Err((WebError::from(e), chrome)),
    };
    // A platform key looking at one tenant lists that tenant's keys.
    let tenant = visitor.tenant_in_view();
    let rows = keys
        .iter()
        .filter(|k| tenant.is_none() || k.tenant_id == tenant)
        .map(|k| Row::of(k, &visitor.caller.key.id))
        .collect();
    let ticked = form.scopes();
    let fresh = ticked.is_empty() && errors.general().is_none() && form.name.is_empty();
    let scopes = SCOPES
        .into_iter()
        .filter(|s| visitor.caller.key.scopes.contains(s))
        .map(|s| ScopeChoice {
            name: s.as_str(),
            // A new form offers `read`; a refused one keeps what was ticked.
            checked: if fresh {
                s == KeyScope::Read
            } else {
                ticked.contains(&s)
            },
        })
        .collect();
    let form_tenant = match &form.tenant_id {
        Some(t) => t.clone(),
        None => visitor.tenant.clone().unwrap_or_default(),
    };
    Ok(KeysPage {
        chrome,
        rows,
        tenant,
        scopes,
        form_tenant,
        form_name: form.name.clone(),
        errors,
    })
}

/// `GET /keys`.
pub(crate) async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "keys", uri.path().to_owned()).await?;
    Ok(
        match page(
            &state,
            &visitor,
            chrome,
            &NewKey::default(),
            FormErrors::default(),
        )
        .await
        {
            Ok(page) => render::respond(StatusCode::OK, htmx, &page),
            Err((e, chrome)) => e.in_layout(chrome, htmx),
        },
    )
}

/// The answer to a created key: its value, this once.
#[derive(Template)]
#[template(path = "key_created.html", blocks = ["content"])]
struct CreatedPage {
    chrome: Chrome,
    row: Row,
    /// The key's value: in this answer only, never stored (only its hash).
    value: String,
}

render::page!(CreatedPage);

/// Creates the key `form` describes, by `caller`, through the API's own `api::keys::create`.
async fn make(
    state: &AppState,
    visitor: &Visitor,
    caller: &Caller,
    form: &NewKey,
) -> Result<CreatedKey, Refusal> {
    // Only a platform key chooses; a tenant key's keys are of its tenant, whatever was sent.
    let tenant = match (&visitor.caller.principal, form.tenant_id.as_deref()) {
        (Principal::Platform, Some(t)) if !t.is_empty() => Some(
            TenantId::new(t)
                .map_err(|e| Refusal::Form(FormErrors::one("tenant_id", e.to_string())))?,
        ),
        _ => None,
    };
    crate::api::keys::create(state, caller, form.name.trim(), tenant, &form.scopes())
        .await
        .map_err(|e| FormErrors::refusal(e, &["name", "tenant_id", "scopes"], None))
}

/// `POST /keys`: creates a key and shows its value once; the form again with its errors
/// beside their fields (422) when refused.
pub(crate) async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    form: Result<axum::Form<NewKey>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "keys", "/keys".to_owned()).await?;
    let caller = match visitor.writer() {
        Ok(caller) => caller,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let Ok(axum::Form(form)) = form else {
        return Ok(WebError::BadRequest(
            "the form takes `name`, `tenant_id` and `scope_read`, `scope_write`, `scope_execute`"
                .into(),
        )
        .in_layout(chrome, htmx));
    };
    let errors = match make(&state, &visitor, caller, &form).await {
        Ok(created) => {
            let page = CreatedPage {
                row: Row::of(&created.api_key, &visitor.caller.key.id),
                value: created.key,
                chrome,
            };
            return Ok(render::respond(StatusCode::OK, htmx, &page));
        }
        Err(Refusal::Page(e)) => return Ok(e.in_layout(chrome, htmx)),
        Err(Refusal::Form(errors)) => errors,
    };
    Ok(match page(&state, &visitor, chrome, &form, errors).await {
        Ok(page) => render::respond(StatusCode::UNPROCESSABLE_ENTITY, htmx, &page),
        Err((e, chrome)) => e.in_layout(chrome, htmx),
    })
}

/// The confirmation asked before a key is revoked.
#[derive(Template)]
#[template(path = "key_revoke.html", blocks = ["content"])]
struct RevokePage {
    chrome: Chrome,
    row: Row,
}

render::page!(RevokePage);

/// The key `id` among those `visitor` sees: another tenant's is not found, as a made-up id.
async fn visible_key(state: &AppState, visitor: &Visitor, id: &str) -> Result<ApiKey, WebError> {
    state
        .store
        .list_keys(&visitor.caller.principal)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(WebError::NotFound)
}

/// `GET /keys/{id}/revoke`: what is about to be revoked, and the button that does it. A page
/// of its own rather than a script's `confirm()`: it works without script and under the CSP.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "keys", format!("/keys/{id}/revoke")).await?;
    if let Err(e) = visitor.writer() {
        return Ok(e.in_layout(chrome, htmx));
    }
    let key = match visible_key(&state, &visitor, &id).await {
        Ok(key) => key,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    if key.revoked_at.is_some() {
        return Ok(
            WebError::BadRequest(format!("key {id} is already revoked")).in_layout(chrome, htmx)
        );
    }
    let page = RevokePage {
        row: Row::of(&key, &visitor.caller.key.id),
        chrome,
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// `POST /keys/{id}/revoke`: revokes the key at once. Its sessions end with it (every request
/// reloads the session's key, live keys only): revoking the session's own key signs the
/// visitor out.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "keys", "/keys".to_owned()).await?;
    let caller = match visitor.writer() {
        Ok(caller) => caller,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    if let Err(e) = state
        .store
        .revoke_key(&caller.change(state.clock.now()), &id)
        .await
    {
        return Ok(WebError::from(e).in_layout(chrome, htmx));
    }
    let next = if id == visitor.caller.key.id {
        "/sign-in"
    } else {
        "/keys"
    };
    Ok(if htmx {
        (
            StatusCode::OK,
            [("hx-redirect", HeaderValue::from_static(next))],
        )
            .into_response()
    } else {
        Redirect::to(next).into_response()
    })
}
