//! Agents: a tenant's agents, and registering one. Both go through the store with the
//! visitor's principal and, to register, the same `Change` (actor, time) the API builds, so the
//! audit log records the key that did it.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use charter_core::{AgentId, TenantId};
use charter_store::Agent;
use serde::Deserialize;

use super::policies::when;
use crate::extract::Caller;
use crate::state::AppState;
use crate::web::forms::{FormErrors, Refusal};
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// An agent as listed.
struct Row {
    id: String,
    name: String,
    owner: String,
    created: String,
}

impl Row {
    fn of(agent: Agent) -> Row {
        Row {
            created: when(agent.created_at),
            id: agent.id,
            name: agent.name,
            owner: agent.owner.unwrap_or_default(),
        }
    }
}

/// What the registration form holds: as typed, to show again beside its errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAgent {
    /// The token, checked by the CSRF guard.
    #[serde(rename = "csrf", default)]
    _csrf: Option<String>,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
}

/// The Agents page.
#[derive(Template)]
#[template(path = "agents.html", blocks = ["content"])]
struct AgentsPage {
    chrome: Chrome,
    /// The tenant whose agents these are; `None`: a platform key looking at all tenants.
    tenant: Option<String>,
    rows: Vec<Row>,
    form: NewAgent,
    errors: FormErrors,
    /// The agent just registered.
    created: Option<String>,
}

render::page!(AgentsPage);

/// The page of `visitor`'s tenant, with `form` and its `errors`.
async fn page(
    state: &AppState,
    visitor: &Visitor,
    chrome: Chrome,
    form: NewAgent,
    errors: FormErrors,
    created: Option<String>,
) -> Result<AgentsPage, (WebError, Chrome)> {
    let tenant = visitor.tenant_in_view();
    let rows = match &tenant {
        Some(tenant) => match state
            .store
            .list_agents(&visitor.caller.principal, tenant)
            .await
        {
            Ok(agents) => agents.into_iter().map(Row::of).collect(),
            Err(e) => return Err((WebError::from(e), chrome)),
        },
        None => Vec::new(),
    };
    Ok(AgentsPage {
        chrome,
        tenant,
        rows,
        form,
        errors,
        created,
    })
}

/// `GET /agents`.
pub(crate) async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "agents", uri.path().to_owned()).await?;
    Ok(
        match page(
            &state,
            &visitor,
            chrome,
            NewAgent::default(),
            FormErrors::default(),
            None,
        )
        .await
        {
            Ok(page) => render::respond(StatusCode::OK, htmx, &page),
            Err((e, chrome)) => e.in_layout(chrome, htmx),
        },
    )
}

/// Registers the agent `form` describes in `tenant`, by `caller` (the API's `Change`).
async fn register(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    form: &NewAgent,
) -> Result<Agent, Refusal> {
    let id = AgentId::new(form.id.trim())
        .map_err(|e| Refusal::Form(FormErrors::one("id", e.to_string())))?;
    let owner = Some(form.owner.trim()).filter(|o| !o.is_empty());
    state
        .store
        .create_agent(
            &caller.change(state.clock.now()),
            tenant,
            &id,
            form.name.trim(),
            owner,
        )
        .await
        .map_err(|e| FormErrors::refusal(e, &["id", "name", "owner"], Some("id")))
}

/// `POST /agents`: registers an agent in the tenant in view; the form again with its errors
/// beside their fields (422) when the id, name or owner is refused.
pub(crate) async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    form: Result<axum::Form<NewAgent>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "agents", "/agents".to_owned()).await?;
    let caller = match visitor.writer() {
        Ok(caller) => caller,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let Ok(axum::Form(form)) = form else {
        return Ok(
            WebError::BadRequest("the form takes `id`, `name` and `owner`".into())
                .in_layout(chrome, htmx),
        );
    };
    let Some(tenant) = visitor.tenant_in_view() else {
        return Ok(WebError::BadRequest(
            "choose a tenant in the switcher first: an agent belongs to one tenant".into(),
        )
        .in_layout(chrome, htmx));
    };
    let Ok(tenant) = TenantId::new(tenant) else {
        return Ok(WebError::NotFound.in_layout(chrome, htmx));
    };
    let errors = match register(&state, caller, &tenant, &form).await {
        Ok(agent) if htmx => {
            // htmx swaps the list in place, with the new agent, and the address says /agents.
            return Ok(
                match page(
                    &state,
                    &visitor,
                    chrome,
                    NewAgent::default(),
                    FormErrors::default(),
                    Some(agent.id),
                )
                .await
                {
                    Ok(page) => {
                        let mut response = render::respond(StatusCode::OK, htmx, &page);
                        response
                            .headers_mut()
                            .insert("hx-push-url", HeaderValue::from_static("/agents"));
                        response
                    }
                    Err((e, chrome)) => e.in_layout(chrome, htmx),
                },
            );
        }
        Ok(_) => return Ok(Redirect::to("/agents").into_response()),
        Err(Refusal::Page(e)) => return Ok(e.in_layout(chrome, htmx)),
        Err(Refusal::Form(errors)) => errors,
    };
    Ok(
        match page(&state, &visitor, chrome, form, errors, None).await {
            Ok(page) => render::respond(StatusCode::UNPROCESSABLE_ENTITY, htmx, &page),
            Err((e, chrome)) => e.in_layout(chrome, htmx),
        },
    )
}
