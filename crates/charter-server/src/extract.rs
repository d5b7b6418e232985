//! Request extractors: the authenticated caller, a strictly parsed JSON body, revision
//! preconditions. Outside input is turned into typed values here, once.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use charter_store::{Actor, ApiKey, Change, KeyScope, Principal};
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(ApiError::unauthenticated)?;
        let secret = bearer_secret(header).ok_or_else(ApiError::unauthenticated)?;
        let key = state
            .store
            .authenticate(secret)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        state.usage.count(&key.id, state.clock.now());
        Caller::of(key)
    }
}

/// The key of an `Authorization` header's value, `Bearer <key>`; `None` for any other scheme.
/// The scheme is case-insensitive (RFC 7235); the key is taken exactly as sent.
pub(crate) fn bearer_secret(header: &str) -> Option<&str> {
    let (scheme, secret) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(secret)
}

impl Caller {
    /// The caller a live key makes: its principal is the platform, or the key's tenant. The
    /// API (from `Authorization`) and the workspace (from a session's key, reloaded on every
    /// request) both build their caller here, so the authority is the same.
    pub(crate) fn of(key: ApiKey) -> Result<Caller, ApiError> {
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

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Read)?;
        Ok(Reader(caller))
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Write)?;
        Ok(Writer(caller))
    }
}

/// A caller whose key has the `execute` scope (runs and checks).
#[derive(Debug, Clone)]
pub(crate) struct Executor(pub(crate) Caller);

impl FromRequestParts<AppState> for Executor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Execute)?;
        Ok(Executor(caller))
    }
}

/// A JSON body within the body limit (413 beyond it), parsed as JSON (400 otherwise); the
/// handler then parses it strictly into its typed request.
#[derive(Debug, Clone)]
pub(crate) struct JsonBody(pub(crate) Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.body_limit;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::too_large(limit))?;
        if bytes.is_empty() {
            return Ok(JsonBody(Value::Object(serde_json::Map::new())));
        }
        let value = charter_core::parse::json(&bytes)?;
        Ok(JsonBody(value))
    }
}

/// The `If-Match` precondition of policy writes (RFC 9110 §13.1.1), as the revision the store
/// must find: `None` without the header or with `*` (any current policy; a missing one answers
/// 404 before any precondition), else the revision of the one strong tag that can match.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfMatch(pub(crate) Option<u32>);

/// A revision no policy has (revisions count from 1): what a list that can match nothing asks
/// of the store (weak tags, which `If-Match`'s strong comparison never matches, or tags that
/// are not a revision), so it answers 412 with the current revision as for a stale one.
const NO_REVISION: u32 = 0;

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let malformed = || {
            ApiError::invalid(
                "If-Match",
                "If-Match takes the policy's ETag, its revision in quotes (\"3\"), or *",
            )
        };
        let mut values = parts
            .headers
            .get_all(axum::http::header::IF_MATCH)
            .iter()
            .peekable();
        if values.peek().is_none() {
            return Ok(IfMatch(None));
        }
        let mut any = false;
        let mut tags = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| malformed())?;
            if text.trim_matches([' ', '\t']) == "*" {
                any = true;
            } else {
                entity_tags(text, &mut tags).ok_or_else(malformed)?;
            }
        }
        if any {
            // `*` stands alone: with tags beside it the field means nothing.
            return if tags.is_empty() {
                Ok(IfMatch(None))
            } else {
                Err(malformed())
            };
        }
        let mut revisions: Vec<u32> = tags
            .iter()
            .filter(|(weak, _)| !weak)
            .filter_map(|(_, opaque)| canonical_revision(opaque))
            .collect();
        revisions.sort_unstable();
        revisions.dedup();
        match revisions[..] {
            [] => Ok(IfMatch(Some(NO_REVISION))),
            [revision] => Ok(IfMatch(Some(revision))),
            // A policy has one revision at a time and the store checks one, atomically.
            _ => Err(ApiError::invalid(
                "If-Match",
                "If-Match takes one revision, not a list of them",
            )),
        }
    }
}

/// Appends the entity tags of one `If-Match` line (`"3"`, `W/"3"`, comma-separated) to `tags`
/// as (weak, opaque tag); `None` when the line is not such a list.
fn entity_tags<'a>(text: &'a str, tags: &mut Vec<(bool, &'a str)>) -> Option<()> {
    let before = tags.len();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        // A list may hold empty elements (RFC 9110 §5.6.1).
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let (weak, tag) = match rest.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, rest),
        };
        let tag = tag.strip_prefix('"')?;
        let end = tag.find('"')?;
        let opaque = &tag[..end];
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        {
            return None;
        }
        tags.push((weak, opaque));
        rest = tag[end + 1..].trim_start_matches([' ', '\t']);
        if !rest.is_empty() {
            rest = rest.strip_prefix(',')?;
        }
    }
    (tags.len() > before).then_some(())
}

/// The revision an opaque tag names, when it is one exactly as an `ETag` shows it (strong
/// comparison is by text: `"03"` is not revision 3).
fn canonical_revision(opaque: &str) -> Option<u32> {
    let digits = opaque.bytes().all(|b| b.is_ascii_digit());
    let canonical = opaque == "0" || !opaque.starts_with('0');
    if digits && canonical && !opaque.is_empty() {
        opaque.parse().ok()
    } else {
        None
    }
}

/// Query parameters parsed strictly; a bad one is a 400 in the API's error format.
///
/// Before serde sees them, every value must be text (well-formed percent-encoding, UTF-8, no
/// control characters) and every parameter naming an id (`*_id`, `actor`) must have an id's
/// shape, so nothing a database cannot hold, or no id can be, reaches a query.
#[derive(Debug, Clone)]
pub(crate) struct Params<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Params)
    }
}

/// A query string read as [`Params`] reads it: the workspace parses its own queries with it,
/// so a value the API refuses is refused there too, with the same words.
pub(crate) fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    check_query(query)?;
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::invalid("query", "not a query string"))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        let text = e.body_text();
        // Name the parameter when serde does: the path of a value it could not read
        // (`since: failed to parse ...`), or an unknown or missing field.
        let at_path = text
            .split_once("query string: ")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(name, _)| name)
            .filter(|name| is_name(name))
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

/// Whether a parameter's name can be shown in `details.path` as it is.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether a query parameter names an id, which has a fixed shape (`actor` is a key's id).
fn names_an_id(name: &str) -> bool {
    name.ends_with("_id") || name == "actor"
}

/// The longest query value, in characters (decoded). Ids, times, cursors and vocabularies are
/// far shorter; the free-text filters (`q` on policy names, audit's `action`) match nothing
/// longer than a name.
pub(crate) const MAX_QUERY_VALUE: usize = 1024;

/// Refuses a query string holding a value that is not text, longer than [`MAX_QUERY_VALUE`], or
/// an id parameter whose value no id can have (400 at `query.<name>`).
fn check_query(query: &str) -> Result<(), ApiError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let path = match decode(name, true) {
            Some(name) if is_name(&name) => format!("query.{name}"),
            _ => "query".to_owned(),
        };
        let Some(value) = decode(value, true) else {
            return Err(ApiError::invalid(
                &path,
                "a query value is percent-encoded UTF-8",
            ));
        };
        if value.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                &path,
                "a query value cannot hold control characters",
            ));
        }
        if value.chars().count() > MAX_QUERY_VALUE {
            return Err(ApiError::invalid(
                &path,
                format!("a query value is at most {MAX_QUERY_VALUE} characters"),
            ));
        }
        if path.strip_prefix("query.").is_some_and(names_an_id)
            && let Err(e) = id_shape(&value)
        {
            return Err(ApiError::invalid(&path, e.to_string()));
        }
    }
    Ok(())
}

/// Whether `text` has the shape every id shares (1 to 128 of `[A-Za-z0-9_.:-]`, charter-core's
/// ids): what is outside it names nothing, whichever kind of id is meant.
fn id_shape(text: &str) -> Result<(), charter_core::ids::IdError> {
    charter_core::RuleId::new(text).map(drop)
}

/// Strict percent-decoding of a path segment or a query name or value (`+` is a space in a
/// query): `None` for a `%` not followed by two hex digits, or bytes that are not UTF-8.
pub(crate) fn decode(raw: &str, plus_is_space: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let digit = |h: u8| char::from(h).to_digit(16);
                out.push(u8::try_from(digit(hex[0])? * 16 + digit(hex[1])?).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The query of a route that takes no parameters: any parameter is refused.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoQuery {}

/// Path parameters. A segment that cannot name anything (bad percent-encoding, not UTF-8, not
/// an id's shape: NUL and other control characters, non-ASCII, longer than any id) answers
/// the 404 the store gives for an id that does not exist, before anything reads it.
#[derive(Debug, Clone)]
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        check_path(parts)?;
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
    }
}

/// Answers 404 for the first path parameter that no resource can be named by, worded as the
/// store words a missing one (`policy <id> not found`), with the id as decoded, or as sent
/// when it cannot be decoded.
fn check_path(parts: &Parts) -> Result<(), ApiError> {
    let Some(template) = parts.extensions.get::<axum::extract::MatchedPath>() else {
        return Ok(());
    };
    // Route templates here are plain segments and `{name}`s (no wildcards), so the template
    // and the path have the same segments.
    let params: Vec<(&str, std::borrow::Cow<'_, str>, bool)> = template
        .as_str()
        .split('/')
        .zip(parts.uri.path().split('/'))
        .filter_map(|(t, raw)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some(match decode(raw, false) {
                Some(text) => {
                    let named = id_shape(&text).is_ok();
                    (name, text.into(), named)
                }
                None => (name, raw.into(), false),
            })
        })
        .collect();
    let Some((name, shown, _)) = params.iter().find(|(_, _, named)| !named) else {
        return Ok(());
    };
    let value = |of: &str| {
        params
            .iter()
            .find(|(n, _, _)| *n == of)
            .map_or("", |(_, v, _)| v.as_ref())
    };
    Err(ApiError::not_found(match *name {
        "id" => format!("policy {shown}"),
        "rule_id" => format!("rule {shown} in policy {}", value("id")),
        "run_id" => format!("run {shown}"),
        "key_id" => format!("key {shown}"),
        "tenant_id" => format!("tenant {shown}"),
        other => format!("{other} {shown}"),
    }))
}

#[cfg(test)]
mod tests {
    use axum::extract::FromRequestParts as _;

    use super::IfMatch;

    async fn if_match(values: &[&str]) -> Result<Option<u32>, u16> {
        let mut request = axum::http::Request::builder();
        for value in values {
            request = request.header("if-match", *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        IfMatch::from_request_parts(&mut parts, &())
            .await
            .map(|m| m.0)
            .map_err(|e| {
                axum::response::IntoResponse::into_response(e)
                    .status()
                    .as_u16()
            })
    }

    #[test]
    fn the_bearer_key_is_taken_exactly_as_sent() {
        use super::bearer_secret;
        assert_eq!(bearer_secret("Bearer chk_1"), Some("chk_1"));
        assert_eq!(bearer_secret("bEaReR chk_1"), Some("chk_1"));
        assert_eq!(bearer_secret("Bearer  chk_1"), Some(" chk_1"));
        assert_eq!(bearer_secret("Bearer "), Some(""));
        assert_eq!(bearer_secret("Basic chk_1"), None);
        assert_eq!(bearer_secret("Bearerchk_1"), None);
        assert_eq!(bearer_secret(""), None);
    }

    #[tokio::test]
    async fn if_match_reads_entity_tags_as_rfc_9110_does() {
        assert_eq!(if_match(&[]).await, Ok(None));
        assert_eq!(if_match(&["\"3\""]).await, Ok(Some(3)));
        assert_eq!(if_match(&[" \"3\" "]).await, Ok(Some(3)));
        assert_eq!(if_match(&["*"]).await, Ok(None));
        // Tags that can never match under strong comparison: a weak one, another text.
        assert_eq!(if_match(&["W/\"3\""]).await, Ok(Some(0)));
        assert_eq!(if_match(&["\"03\""]).await, Ok(Some(0)));
        assert_eq!(if_match(&["\"abc\""]).await, Ok(Some(0)));
        assert_eq!(if_match(&["W/\"2\", \"3\""]).await, Ok(Some(3)));
        assert_eq!(if_match(&["\"3\", \"3\"", "\"3\""]).await, Ok(Some(3)));
        assert_eq!(if_match(&["\"a,b\", \"4\""]).await, Ok(Some(4)));
        // Malformed, or more than the store can check at once.
        for bad in [
            "3",
            "\"3",
            "",
            ",",
            "\"3\" \"4\"",
            "W/3",
            "*, \"3\"",
            "\"3\",,x",
        ] {
            assert_eq!(if_match(&[bad]).await, Err(400), "{bad:?}");
        }
        assert_eq!(if_match(&["*", "\"3\""]).await, Err(400));
        assert_eq!(if_match(&["\"2\", \"3\""]).await, Err(400));
    }
}
