//! The web workspace: server-rendered pages at `/`, beside the API at `/v1`, in the same
//! process and over the same store.
//!
//! One authority: a page reads through the same `Store` operations as the API, with the
//! `Principal` built by the same [`Caller::of`](crate::Caller) from the session's key, which
//! is reloaded on every request (revoking it ends its sessions at once). Never the API over
//! HTTP, never a second copy of a rule.
//!
//! Every response carries a strict Content-Security-Policy (`headers`); every state-changing
//! request passes two CSRF checks (`csrf`); pages answer a full document, or only their content
//! to htmx (`render`).

mod assets;
mod auth;
pub(crate) mod csrf;
mod forms;
mod headers;
pub(crate) mod multipart;
pub(crate) mod pages;
mod render;
pub(crate) mod session;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::state::AppState;

/// The whole server: the workspace at `/` and API v1 (with `/healthz` and `/metrics`), which
/// keeps its own error format and fallback.
pub fn app(state: AppState) -> Router {
    workspace(state.clone()).merge(crate::api::router(state))
}

/// The workspace's routes, each answer carrying the security headers.
fn workspace(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/policies") }))
        .route("/sign-in", get(auth::page).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/tenant", post(auth::switch_tenant))
        .route("/policies", get(pages::policies::list))
        .route(
            "/policies/new",
            get(pages::authoring::new_form).post(pages::authoring::create),
        )
        .route(
            "/policies/import",
            get(pages::authoring::import_form).post(pages::authoring::import),
        )
        .route("/policies/{id}", get(pages::policies::show))
        .route("/policies/{id}/export", get(pages::lifecycle::export))
        .route(
            "/policies/{id}/rules/new",
            get(pages::rules::new_form).post(pages::rules::create),
        )
        .route(
            "/policies/{id}/rules/{rule_id}/edit",
            get(pages::rules::edit_form).post(pages::rules::update),
        )
        .route(
            "/policies/{id}/rules/{rule_id}/remove",
            get(pages::rules::remove_confirm).post(pages::rules::remove),
        )
        .route(
            "/policies/{id}/rules/{rule_id}/move",
            post(pages::rules::move_rule),
        )
        .route(
            "/policies/{id}/details",
            get(pages::editing::details_form).post(pages::editing::save_details),
        )
        .route(
            "/policies/{id}/definition",
            get(pages::editing::definition_form).post(pages::editing::save_definition),
        )
        .route(
            "/policies/{id}/clone",
            get(pages::cloning::clone_form).post(pages::cloning::clone),
        )
        .route(
            "/policies/{id}/validate",
            get(pages::validate::page).post(pages::validate::run),
        )
        .route(
            "/policies/{id}/{change}",
            get(pages::lifecycle::confirm).post(pages::lifecycle::act),
        )
        .route("/monitor", get(pages::monitor::page))
        .route("/monitor/stream", get(pages::monitor::stream))
        .route("/audit", get(pages::audit::list))
        .route("/audit/verify", get(pages::audit::verify))
        .route("/runs", get(pages::runs::list))
        .route("/runs/{id}", get(pages::runs::show))
        .route(
            "/agents",
            get(pages::agents::list).post(pages::agents::create),
        )
        .route("/keys", get(pages::keys::list).post(pages::keys::create))
        .route(
            "/keys/{id}/revoke",
            get(pages::keys::confirm).post(pages::keys::revoke),
        )
        .route("/docs", get(pages::reference::page))
        .route("/static/{version}/{*file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::guard,
        ))
        .layer(axum::middleware::from_fn(headers::secure))
        .with_state(state)
}
