//! Sessions: the cookie, and the signed-in visitor each request is made by.
//!
//! The cookie holds a random session id (256 bits); the store keeps only its SHA-256, the
//! key's id and the CSRF token. Every request reloads the session with its key, so a revoked
//! key or an expired session signs the visitor out at once.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use charter_store::KeyScope;
use jiff::SignedDuration;

use super::render::WebError;
use crate::extract::Caller;
use crate::state::AppState;

/// The session cookie.
pub(crate) const COOKIE: &str = "charter_session";

/// How long a session lasts, however active: a working day.
pub(crate) const LIFETIME: SignedDuration = SignedDuration::from_hours(12);

/// Someone signed in: the API's own caller, built from the session's key as stored now.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    /// The key's caller: the same principal the API gives the key.
    pub(crate) caller: Caller,
    /// The session id from the cookie.
    pub(crate) session_id: String,
    /// The tenant a platform key chose to look at; `None`: all tenants (and always for a
    /// tenant key).
    pub(crate) tenant: Option<String>,
    /// The session's synchronizer token.
    pub(crate) csrf: String,
}

impl Visitor {
    /// The caller, when its key may change things: the API's own check
    /// ([`Caller::require`] of `write`), so the pages and the API refuse the same keys. Every
    /// workspace handler that changes something asks for it first; a refusal changes nothing.
    pub(crate) fn writer(&self) -> Result<&Caller, WebError> {
        self.caller
            .require(KeyScope::Write)
            .map(|()| &self.caller)
            .map_err(|_| {
                WebError::Forbidden(
                    "this key lacks the `write` scope: it may look, not change anything".into(),
                )
            })
    }

    /// The tenant the pages act on: a tenant key's own, or the one a platform key chose in the
    /// switcher; `None` for a platform key looking at all tenants.
    pub(crate) fn tenant_in_view(&self) -> Option<String> {
        match self.caller.principal.tenant() {
            Some(own) => Some(own.to_string()),
            None => self.tenant.clone(),
        }
    }

    /// Whether the key may change things: templates show write controls only then (through
    /// `Chrome::can_write`). The same check as [`Visitor::writer`], never a copy of it.
    pub(crate) fn can_write(&self) -> bool {
        self.writer().is_ok()
    }
}

/// A fresh random token: 256 bits from the OS, as 64 hex digits (session ids, CSRF tokens).
pub(crate) fn random_token() -> String {
    use rand::RngExt as _;
    let bytes: [u8; 32] = rand::rng().random();
    hex(&bytes)
}

/// Bytes as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether `text` has the shape of a [`random_token`]: anything else is no token at all.
pub(crate) fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares two tokens in time that does not depend on where they differ.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The value of cookie `name`, when the request carries one with a token's shape.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|value| is_token(value))
}

/// Whether the request came over https: the server is told so (`secure_cookies`), or a proxy
/// that terminated TLS says so.
pub(crate) fn over_https(headers: &HeaderMap, state: &AppState) -> bool {
    state.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: `HttpOnly` and `SameSite=Strict` always, `Secure` over https; `value`
/// `None` deletes the cookie.
pub(crate) fn set_cookie(
    name: &str,
    value: Option<&str>,
    path: &str,
    max_age: SignedDuration,
    secure: bool,
) -> String {
    let (value, age) = match value {
        Some(v) => (v, max_age.as_secs()),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={age}; HttpOnly; SameSite=Strict{secure}")
}

/// The visitor whose session cookie the request carries: `None` without a cookie, or when the
/// session is unknown, expired, or its key revoked.
pub(crate) async fn load(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<Visitor>, WebError> {
    let Some(session_id) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    let Some(session) = state.store.session(session_id, state.clock.now()).await? else {
        return Ok(None);
    };
    let caller = Caller::of(session.key).map_err(|_| WebError::Internal)?;
    Ok(Some(Visitor {
        caller,
        session_id: session_id.to_owned(),
        tenant: session.tenant_id,
        csrf: session.csrf_token,
    }))
}

/// Whether the request was made by htmx (it then wants a fragment, or `HX-Redirect`).
pub(crate) fn is_htmx(headers: &HeaderMap) -> bool {
    headers
        .get("hx-request")
        .is_some_and(|v| v.as_bytes() == b"true")
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        // The CSRF guard has loaded the session of a state-changing request already.
        let visitor = match parts.extensions.get::<Visitor>() {
            Some(visitor) => visitor.clone(),
            None => load(&parts.headers, state).await?.ok_or(WebError::SignIn {
                htmx: is_htmx(&parts.headers),
            })?,
        };
        if !visitor.caller.key.scopes.contains(&KeyScope::Read) {
            return Err(WebError::Forbidden(
                "this key lacks the `read` scope the workspace needs".into(),
            ));
        }
        state.usage.count(&visitor.caller.key.id, state.clock.now());
        Ok(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert!(is_token(&a) && is_token(&b));
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..63]));
        assert!(!is_token("ABC"));
    }

    #[test]
    fn cookies_are_read_by_name_and_shape() {
        let token = random_token();
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("other=1; {COOKIE}={token}").parse().unwrap(),
        );
        assert_eq!(cookie(&headers, COOKIE), Some(token.as_str()));
        headers.insert(
            axum::http::header::COOKIE,
            format!("{COOKIE}=../etc").parse().unwrap(),
        );
        assert_eq!(cookie(&headers, COOKIE), None);
    }
}
