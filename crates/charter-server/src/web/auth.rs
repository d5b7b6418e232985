//! Signing in with an API key, signing out, and a platform key's choice of tenant.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use charter_core::TenantId;
use charter_store::KeyScope;
use jiff::SignedDuration;
use serde::Deserialize;

use super::assets::{ASSETS, Assets};
use super::render::WebError;
use super::session::{self, COOKIE, LIFETIME, Visitor};
use crate::state::AppState;

/// The cookie holding the sign-in form's token (there is no session yet to hold one).
const SIGN_IN_COOKIE: &str = "charter_sign_in";

/// How long a sign-in form stays usable.
const SIGN_IN_LIFETIME: SignedDuration = SignedDuration::from_hours(1);

/// The sign-in page.
#[derive(Template, WebTemplate)]
#[template(path = "sign_in.html")]
struct SignInPage {
    /// The form's token, also in its cookie.
    csrf: String,
    /// Why the last attempt failed.
    error: Option<&'static str>,
    assets: &'static Assets,
}

/// `GET /sign-in`: the form; to the workspace when already signed in.
pub(crate) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session::load(&headers, &state).await {
        Ok(Some(_)) => return Redirect::to("/policies").into_response(),
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    sign_in_form(&headers, &state, StatusCode::OK, None)
}

/// The sign-in form with a token, reusing the one of an earlier form so that two open tabs
/// both work.
fn sign_in_form(
    headers: &HeaderMap,
    state: &AppState,
    status: StatusCode,
    error: Option<&'static str>,
) -> Response {
    let token =
        session::cookie(headers, SIGN_IN_COOKIE).map_or_else(session::random_token, str::to_owned);
    let cookie = session::set_cookie(
        SIGN_IN_COOKIE,
        Some(&token),
        "/sign-in",
        SIGN_IN_LIFETIME,
        session::over_https(headers, state),
    );
    (
        status,
        AppendHeaders([(SET_COOKIE, cookie)]),
        SignInPage {
            csrf: token,
            error,
            assets: &ASSETS,
        },
    )
        .into_response()
}

/// The sign-in form's fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInForm {
    key: String,
    csrf: String,
}

/// `POST /sign-in`: a session for a live key with the `read` scope, under a new id.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<axum::Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return WebError::BadRequest("the sign-in form takes `key` and `csrf`".into())
            .into_response();
    };
    let expected = session::cookie(&headers, SIGN_IN_COOKIE);
    if !expected.is_some_and(|t| session::same_token(t, &form.csrf)) {
        return WebError::Csrf.into_response();
    }
    let key = match state.store.authenticate(form.key.trim()).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            return sign_in_form(
                &headers,
                &state,
                StatusCode::UNAUTHORIZED,
                Some("This key is not valid, or it has been revoked."),
            );
        }
        Err(e) => return WebError::from(e).into_response(),
    };
    if !key.scopes.contains(&KeyScope::Read) {
        return sign_in_form(
            &headers,
            &state,
            StatusCode::FORBIDDEN,
            Some("This key lacks the `read` scope the workspace needs."),
        );
    }
    // A new id at every sign-in: an id planted before it (session fixation) signs nobody in.
    if let Some(old) = session::cookie(&headers, COOKIE)
        && let Err(e) = state.store.end_session(old).await
    {
        return WebError::from(e).into_response();
    }
    let now = state.clock.now();
    let Ok(expires) = now.checked_add(LIFETIME) else {
        return WebError::Internal.into_response();
    };
    let (id, csrf) = (session::random_token(), session::random_token());
    if let Err(e) = state
        .store
        .create_session(&id, &key.id, &csrf, now, expires)
        .await
    {
        return WebError::from(e).into_response();
    }
    let secure = session::over_https(&headers, &state);
    (
        AppendHeaders([
            (
                SET_COOKIE,
                session::set_cookie(COOKIE, Some(&id), "/", LIFETIME, secure),
            ),
            (
                SET_COOKIE,
                session::set_cookie(SIGN_IN_COOKIE, None, "/sign-in", LIFETIME, secure),
            ),
        ]),
        Redirect::to("/policies"),
    )
        .into_response()
}

/// `POST /sign-out`: ends the session and deletes its cookie (the form's token was checked by
/// the CSRF guard; the form has nothing else).
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    visitor: Visitor,
) -> Response {
    if let Err(e) = state.store.end_session(&visitor.session_id).await {
        return WebError::from(e).into_response();
    }
    let secure = session::over_https(&headers, &state);
    (
        AppendHeaders([(
            SET_COOKIE,
            session::set_cookie(COOKIE, None, "/", LIFETIME, secure),
        )]),
        Redirect::to("/sign-in"),
    )
        .into_response()
}

/// The tenant switcher's fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantForm {
    /// The token, checked by the CSRF guard (htmx may send it as a header instead).
    #[serde(rename = "csrf")]
    _csrf: Option<String>,
    /// A tenant's id; empty for all tenants.
    tenant: String,
    /// The page to return to.
    next: String,
}

/// Where a form may send the visitor back to: a path of this site, else the Policies list.
fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { "/policies" }
}

/// `POST /tenant`: a platform key's session looks at one tenant, or at all of them.
pub(crate) async fn switch_tenant(
    State(state): State<AppState>,
    visitor: Visitor,
    form: Result<axum::Form<TenantForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return WebError::BadRequest("the tenant switcher takes `tenant` and `next`".into())
            .into_response();
    };
    let tenant = if form.tenant.is_empty() {
        None
    } else {
        match TenantId::new(form.tenant.as_str()) {
            Ok(id) => Some(id),
            Err(e) => return WebError::BadRequest(format!("tenant: {e}")).into_response(),
        }
    };
    if let Err(e) = state
        .store
        .choose_session_tenant(
            &visitor.session_id,
            &visitor.caller.principal,
            tenant.as_ref(),
        )
        .await
    {
        return WebError::from(e).into_response();
    }
    Redirect::to(local_path(&form.next)).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_only_return_to_this_site() {
        assert_eq!(
            super::local_path("/policies?status=draft"),
            "/policies?status=draft"
        );
        assert_eq!(super::local_path("//evil.example/"), "/policies");
        assert_eq!(super::local_path("https://evil.example/"), "/policies");
        assert_eq!(super::local_path("/\\evil.example"), "/policies");
    }
}
