//! Request extractors: the authenticated caller, a strictly parsed JSON body, revision
//! preconditions. Outside input is turned into typed values here, once.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use charter_store::{Actor, ApiKey, Change, KeyScope, Principal, Store};
use jiff::Timestamp;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;

/// The key a request authenticated with, and what it may do.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key.
    pub key: ApiKey,
    /// Whose authority: the platform or one tenant.
    pub principal: Principal,
}

impl Caller {
    /// Refuses (403) a key without `scope`.
    pub fn require(&self, scope: KeyScope) -> Result<(), ApiError> {
        if self.key.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    /// A change made by this caller at `at`.
    pub fn change(&self, at: Timestamp) -> Change {
        Change {
            principal: self.principal.clone(),
            actor: Actor {
                key_id: self.key.id.clone(),
                name: self.key.name.clone(),
            },
            at,
        }
    }
}

impl<S: Store + Clone> FromRequestParts<AppState<S>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(ApiError::unauthenticated)?;
        // The scheme is case-insensitive (RFC 7235); the key is taken exactly as sent.
        let (scheme, secret) = header
            .split_once(' ')
            .ok_or_else(ApiError::unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthenticated());
        }
        let key = state
            .store
            .authenticate(secret)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        state.usage.count(&key.id, state.clock.now());
        let principal = match &key.tenant_id {
            None => Principal::Platform,
            Some(t) => Principal::Tenant(
                charter_core::TenantId::new(t.as_str())
                    .map_err(|e| ApiError::internal(&format!("stored key tenant: {e}")))?,
            ),
        };
        Ok(Caller { key, principal })
    }
}

/// A caller whose key has the `read` scope (checked before anything else of the request).
#[derive(Debug, Clone)]
pub(crate) struct Reader(pub(crate) Caller);

/// A caller whose key has the `write` scope (checked before the body is read).
#[derive(Debug, Clone)]
pub(crate) struct Writer(pub(crate) Caller);

impl<S: Store + Clone> FromRequestParts<AppState<S>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Read)?;
        Ok(Reader(caller))
    }
}

impl<S: Store + Clone> FromRequestParts<AppState<S>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Write)?;
        Ok(Writer(caller))
    }
}

/// A caller whose key has the `execute` scope (runs and checks).
#[derive(Debug, Clone)]
pub(crate) struct Executor(pub(crate) Caller);

impl<S: Store + Clone> FromRequestParts<AppState<S>> for Executor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Execute)?;
        Ok(Executor(caller))
    }
}

/// A JSON body within the body limit (413 beyond it), parsed as JSON (400 otherwise); the
/// handler then parses it strictly into its typed request.
#[derive(Debug, Clone)]
pub(crate) struct JsonBody(pub(crate) Value);

impl<S: Store + Clone> FromRequest<AppState<S>> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        let limit = state.body_limit;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::too_large(limit))?;
        if bytes.is_empty() {
            return Ok(JsonBody(Value::Object(serde_json::Map::new())));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid("", format!("malformed JSON: {e}")))?;
        Ok(JsonBody(value))
    }
}

/// The `If-Match: "<revision>"` precondition of policy writes, if given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfMatch(pub(crate) Option<u32>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = header.to_str().unwrap_or_default().trim();
        let text = text.trim_start_matches("W/").trim_matches('"');
        text.parse::<u32>()
            .map(|r| IfMatch(Some(r)))
            .map_err(|_| ApiError::invalid("If-Match", "If-Match takes a revision: \"3\""))
    }
}

/// Query parameters parsed strictly; a bad one is a 400 in the API's error format.
#[derive(Debug, Clone)]
pub(crate) struct Params<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| {
                let text = e.body_text();
                // Name the parameter when serde does: the path of a value it could not read
                // (`since: failed to parse ...`), or an unknown or missing field.
                let at_path = text
                    .split_once("query string: ")
                    .and_then(|(_, rest)| rest.split_once(": "))
                    .map(|(name, _)| name)
                    .filter(|name| {
                        !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    })
                    .map(str::to_owned);
                let field = at_path.or_else(|| {
                    ["unknown field `", "missing field `", "field `"]
                        .iter()
                        .find_map(|lead| {
                            let rest = &text[text.find(lead)? + lead.len()..];
                            rest.find('`').map(|end| rest[..end].to_owned())
                        })
                });
                match field {
                    Some(field) => ApiError::invalid(&format!("query.{field}"), text),
                    None => ApiError::invalid("query", text),
                }
            })
    }
}

/// The query of a route that takes no parameters: any parameter is refused.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoQuery {}

/// Path parameters; a segment that cannot be read (bad percent-encoding) is a 400 in the API's
/// error format.
#[derive(Debug, Clone)]
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
    }
}
