//! Answers of the workspace: a page as a full document, or only its content for htmx (one
//! template, its `content` block rendered alone); the chrome around it (sidebar, tenant, key);
//! and the errors, as pages.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use charter_store::{Principal, StoreError};

use super::assets::{ASSETS, Assets};
use super::session::Visitor;
use crate::state::AppState;

/// A workspace page: a template extending `base.html` whose `content` block renders alone.
pub(crate) trait Page: Template {
    /// Only the `content` block: what an htmx request swaps in.
    fn content(&self) -> askama::Result<String>;
}

/// Implements [`Page`] for templates declared with `blocks = ["content"]`.
macro_rules! page {
    ($($page:ty),* $(,)?) => {
        $(impl $crate::web::render::Page for $page {
            fn content(&self) -> askama::Result<String> {
                askama::Template::render(&self.as_content())
            }
        })*
    };
}
pub(crate) use page;

/// `page` with `status`: the full document, or its content alone for htmx.
pub(crate) fn respond<P: Page>(status: StatusCode, htmx: bool, page: &P) -> Response {
    let rendered = if htmx { page.content() } else { page.render() };
    match rendered {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            WebError::Internal.into_response()
        }
    }
}

/// A tenant in the switcher.
#[derive(Clone)]
pub(crate) struct TenantChoice {
    /// Its id.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
    /// Whether the session looks at it.
    pub(crate) selected: bool,
}

/// What surrounds every page: the sidebar with the current tenant and key.
#[derive(Clone)]
pub(crate) struct Chrome {
    /// The sidebar item of this page (`policies`, `monitor`...).
    pub(crate) nav: &'static str,
    /// The key's name.
    pub(crate) key_name: String,
    /// The tenant shown: its name, or "All tenants" for a platform key looking at all.
    pub(crate) tenant_label: String,
    /// Whether the key is a platform key (which may switch tenants).
    pub(crate) platform: bool,
    /// The tenants a platform key may switch to; empty for a tenant key.
    pub(crate) tenants: Vec<TenantChoice>,
    /// The session's CSRF token, for forms and htmx's header.
    pub(crate) csrf: String,
    /// Whether the key may change things.
    pub(crate) can_write: bool,
    /// The path of this page (where the tenant switcher returns).
    pub(crate) path: String,
    /// The assets' URLs.
    pub(crate) assets: &'static Assets,
}

impl Chrome {
    /// The chrome of `visitor`'s page `nav` at `path`: the tenants come from the store with the
    /// key's own principal, so a tenant key sees its own tenant only.
    pub(crate) async fn load(
        state: &AppState,
        visitor: &Visitor,
        nav: &'static str,
        path: String,
    ) -> Result<Chrome, WebError> {
        let principal = &visitor.caller.principal;
        let tenants = state.store.list_tenants(principal).await?;
        let platform = *principal == Principal::Platform;
        let tenant_label = match (principal, &visitor.tenant) {
            (Principal::Tenant(own), _) => tenants
                .iter()
                .find(|t| t.id == own.as_str())
                .map_or_else(|| own.to_string(), |t| t.name.clone()),
            (Principal::Platform, Some(chosen)) => tenants
                .iter()
                .find(|t| &t.id == chosen)
                .map_or_else(|| chosen.clone(), |t| t.name.clone()),
            (Principal::Platform, None) => "All tenants".to_owned(),
        };
        let choices = if platform {
            tenants
                .into_iter()
                .map(|t| TenantChoice {
                    selected: visitor.tenant.as_deref() == Some(t.id.as_str()),
                    id: t.id,
                    name: t.name,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Chrome {
            nav,
            key_name: visitor.caller.key.name.clone(),
            tenant_label,
            platform,
            tenants: choices,
            csrf: visitor.csrf.clone(),
            can_write: visitor.can_write(),
            path,
            assets: &ASSETS,
        })
    }
}

/// An error shown inside the workspace's layout.
#[derive(Template)]
#[template(path = "error.html", blocks = ["content"])]
pub(crate) struct ErrorPage {
    /// The chrome.
    pub(crate) chrome: Chrome,
    /// The heading.
    pub(crate) title: &'static str,
    /// What happened.
    pub(crate) message: String,
}

page!(ErrorPage);

/// An error with no session to show the layout for.
#[derive(Template, WebTemplate)]
#[template(path = "bare_error.html")]
struct BareError {
    title: &'static str,
    message: String,
    assets: &'static Assets,
}

/// What a form or button sent with an old revision of a draft is told.
pub(crate) const STALE: &str = "This draft changed since you opened this page: nothing was changed. \
     Reload the page to see the changes, then make yours again.";

/// Why a workspace request fails.
#[derive(Debug)]
pub(crate) enum WebError {
    /// Not signed in (or no longer): to the sign-in page.
    SignIn {
        /// Whether htmx asked, which gets `HX-Redirect` rather than a redirect it would swap in.
        htmx: bool,
    },
    /// A state-changing request from another site, or without the session's token: 403,
    /// nothing changed.
    Csrf,
    /// The key may not do this.
    Forbidden(String),
    /// Nothing here, or nothing this key may see: the same answer for both.
    NotFound,
    /// Outside input that cannot be read.
    BadRequest(String),
    /// The policy changed since the page that sent the form was opened (its revision is no
    /// longer the policy's): 409, nothing changed.
    Stale,
    /// The database cannot be reached or lacks room just now (logged where it happened): 503,
    /// nothing changed.
    Unavailable,
    /// Something failed on the server (logged where it happened).
    Internal,
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        match e {
            StoreError::NotFound { .. } => WebError::NotFound,
            StoreError::Forbidden(message) => WebError::Forbidden(message),
            StoreError::RevisionMismatch { .. } => WebError::Stale,
            StoreError::Invalid { path, message } => {
                WebError::BadRequest(format!("{path}: {message}"))
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause, "database unavailable in the workspace");
                WebError::Unavailable
            }
            StoreError::Backend(cause) => {
                tracing::error!(cause, "store failure in the workspace");
                WebError::Internal
            }
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

impl WebError {
    /// Status, heading and message of the error page.
    fn parts(self) -> (StatusCode, &'static str, String) {
        match self {
            WebError::SignIn { .. } => (
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "Sign in to continue.".into(),
            ),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "This request did not come from a page of this workspace, or its form has \
                 expired. Nothing was changed: reload the page and try again."
                    .into(),
            ),
            WebError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message),
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or nothing this key may see.".into(),
            ),
            WebError::BadRequest(message) => (StatusCode::BAD_REQUEST, "Bad request", message),
            WebError::Stale => (StatusCode::CONFLICT, "Changed meanwhile", STALE.into()),
            WebError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
                "Charter cannot reach its database just now. Nothing was changed: try again in \
                 a few seconds."
                    .into(),
            ),
            WebError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not answer; the cause is in its log.".into(),
            ),
        }
    }

    /// The error as a page inside the layout.
    pub(crate) fn in_layout(self, chrome: Chrome, htmx: bool) -> Response {
        if let WebError::SignIn { .. } = self {
            return self.into_response();
        }
        let (status, title, message) = self.parts();
        respond(
            status,
            htmx,
            &ErrorPage {
                chrome,
                title,
                message,
            },
        )
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::SignIn { htmx } = self {
            return if htmx {
                (
                    StatusCode::UNAUTHORIZED,
                    [("hx-redirect", HeaderValue::from_static("/sign-in"))],
                )
                    .into_response()
            } else {
                Redirect::to("/sign-in").into_response()
            };
        }
        let (status, title, message) = self.parts();
        (
            status,
            BareError {
                title,
                message,
                assets: &ASSETS,
            },
        )
            .into_response()
    }
}
