//! CSRF protection of every state-changing request (anything but GET, HEAD, OPTIONS), in two
//! layers, before any handler runs:
//!
//! 1. Where from: a browser's `Sec-Fetch-Site` must say `same-origin`; without it (older
//!    browsers), an `Origin` must name this host.
//! 2. The session's synchronizer token: the `X-CSRF-Token` header (htmx sends it, from
//!    `hx-headers` on `<body>`) or the `csrf` field of a form. Sign-in has no session yet; its
//!    form carries the token of a short-lived cookie instead, checked by its handler.
//!
//! A refused request reaches no handler, so it changes nothing.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::render::WebError;
use super::session::{self, is_htmx};
use crate::state::AppState;

/// The form field holding the token.
pub(crate) const FIELD: &str = "csrf";

/// The header htmx sends the token in.
const HEADER: &str = "x-csrf-token";

/// Whether a request changes state: anything but the safe methods.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the browser says the request comes from a page of this origin.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Neither header: not a browser's cross-site request (browsers send `Origin` on every
        // cross-origin POST); the token decides.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
    });
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The `csrf` field of a URL-encoded form body.
pub(crate) fn form_field(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (crate::extract::decode(name, true)? == FIELD)
            .then(|| crate::extract::decode(value, true))
            .flatten()
    })
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
}

/// The guard in front of every workspace route.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !changes_state(request.method()) {
        return next.run(request).await;
    }
    if !same_origin(request.headers()) {
        return WebError::Csrf.into_response();
    }
    if request.uri().path() == "/sign-in" {
        return next.run(request).await;
    }
    let visitor = match session::load(request.headers(), &state).await {
        Ok(Some(visitor)) => visitor,
        Ok(None) => {
            return WebError::SignIn {
                htmx: is_htmx(request.headers()),
            }
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let header_token = parts
        .headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (token, body) = match header_token {
        Some(token) => (Some(token), body),
        None if is_form(&parts.headers) => {
            let Ok(bytes) = axum::body::to_bytes(body, state.body_limit).await else {
                return WebError::BadRequest(format!(
                    "the form is larger than {} bytes",
                    state.body_limit
                ))
                .into_response();
            };
            (form_field(&bytes), Body::from(bytes))
        }
        // A form with a file input (an import) sends multipart; without script, its token is a
        // field of it, found by reading the body, which the handler then reads again.
        None => match super::multipart::boundary(&parts.headers) {
            Some(boundary) => {
                let Ok(bytes) = axum::body::to_bytes(body, state.body_limit).await else {
                    return WebError::BadRequest(format!(
                        "the form is larger than {} bytes",
                        state.body_limit
                    ))
                    .into_response();
                };
                let token = super::multipart::parts(&bytes, &boundary).and_then(|fields| {
                    fields
                        .into_iter()
                        .find(|f| f.name == FIELD && f.filename.is_none())
                        .and_then(|f| String::from_utf8(f.data.to_vec()).ok())
                });
                (token, Body::from(bytes))
            }
            None => (None, body),
        },
    };
    if !token.is_some_and(|t| session::same_token(&t, &visitor.csrf)) {
        return WebError::Csrf.into_response();
    }
    parts.extensions.insert(visitor);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn origin_is_judged_by_fetch_metadata_then_origin() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "none")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[])));
    }

    #[test]
    fn the_token_is_read_from_a_form() {
        assert_eq!(form_field(b"a=1&csrf=ab%63&b=2").as_deref(), Some("abc"));
        assert_eq!(form_field(b"a=1"), None);
        assert_eq!(form_field(b"csrf=%zz"), None);
    }
}
