//! The server's parsers of outside input, reachable by the fuzz targets in `fuzz/` (feature
//! `fuzzing`, never a default one). Each function only calls the real parser, with what it
//! needs around it (a caller, a header map): no parsing of its own, so what a fuzzer finds
//! here is a finding in the server.

use axum::http::{HeaderMap, HeaderValue, header};
use charter_store::{ApiKey, ImportedRun, KeyScope};
use jiff::Timestamp;

use crate::extract::{Caller, parse_query};

/// Reads `query` as each route and page that takes a query reads it (`Params`, the
/// workspace's `parse_query`), the Monitor's filters on to the store's filter; how many of
/// the readings accepted it.
pub fn api_query(query: &str) -> usize {
    use crate::api::{audit, monitor, policies, runs};
    use crate::web::pages;
    let monitor = parse_query::<monitor::Filters>(query).and_then(|f| f.filter());
    [
        parse_query::<crate::extract::NoQuery>(query).is_ok(),
        parse_query::<policies::ListQuery>(query).is_ok(),
        parse_query::<runs::ListQuery>(query).is_ok(),
        parse_query::<audit::AuditQuery>(query).is_ok(),
        parse_query::<audit::VerifyQuery>(query).is_ok(),
        monitor.is_ok(),
        parse_query::<pages::policies::ListQuery>(query).is_ok(),
        parse_query::<pages::runs::ListQuery>(query).is_ok(),
        parse_query::<pages::runs::RunQuery>(query).is_ok(),
        parse_query::<pages::audit::AuditQuery>(query).is_ok(),
    ]
    .into_iter()
    .filter(|accepted| *accepted)
    .count()
}

/// The Monitor page's reading of its query string at `now`: the address of the page it
/// shows (its fields and cursor, as its links carry them), or what it refuses.
pub fn monitor_query(raw: &str, now: Timestamp) -> Result<String, String> {
    use crate::web::pages::monitor::query::MonitorQuery;
    MonitorQuery::parse(raw, now)
        .map(|q| q.href("/monitor", q.cursor.as_deref()))
        .map_err(|refused| refused.problem)
}

/// One line of an NDJSON run import (`POST /v1/runs/import`), as a tenant key (`tenant`
/// `Some`) or a platform key sends it.
pub fn run_import_line(line: &[u8], tenant: Option<&str>) -> Result<ImportedRun, String> {
    let key = ApiKey {
        id: "key_fuzz".into(),
        name: "fuzz".into(),
        tenant_id: tenant.map(str::to_owned),
        scopes: vec![KeyScope::Read, KeyScope::Write, KeyScope::Execute],
        last4: "fuzz".into(),
        calls: 0,
        last_used_at: None,
        created_at: Timestamp::UNIX_EPOCH,
        revoked_at: None,
    };
    let caller = Caller::of(key).map_err(|e| e.in_words())?;
    crate::api::run_import::read_run(line, 1, &caller).map_err(|e| e.in_words())
}

/// The key an `Authorization` header's value carries (`Bearer <key>`).
pub fn bearer_secret(header: &str) -> Option<&str> {
    crate::extract::bearer_secret(header)
}

/// The revision an `If-Match` header (each of `values` one field line) asks for: `None` for
/// none or `*`, or what it refuses. `None` if a value is not a header value at all.
pub fn if_match(values: &[&str]) -> Option<Result<Option<u32>, String>> {
    use axum::extract::FromRequestParts as _;
    use futures_util::FutureExt as _;
    let mut request = axum::http::Request::builder();
    for value in values {
        request = request.header(header::IF_MATCH, HeaderValue::from_str(value).ok()?);
    }
    let (mut parts, ()) = request.body(()).ok()?.into_parts();
    // The extractor awaits nothing: it is ready on its first poll.
    let read = crate::extract::IfMatch::from_request_parts(&mut parts, &()).now_or_never()?;
    Some(read.map(|m| m.0).map_err(|e| e.in_words()))
}

/// The workspace's session cookie in a `Cookie` header's value, when it has a token's shape.
pub fn session_cookie(cookie: &str) -> Option<String> {
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, HeaderValue::from_str(cookie).ok()?);
    crate::web::session::cookie(&headers, crate::web::session::COOKIE).map(str::to_owned)
}

/// A workspace form's multipart body under `content_type`: each part's name, file name and
/// length; `None` when it is not multipart or not well formed.
pub fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, Option<String>, usize)>> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).ok()?,
    );
    let boundary = crate::web::multipart::boundary(&headers)?;
    let parts = crate::web::multipart::parts(body, &boundary)?;
    Some(
        parts
            .into_iter()
            .map(|p| (p.name, p.filename, p.data.len()))
            .collect(),
    )
}

/// The CSRF token field of a URL-encoded form body.
pub fn csrf_form_field(body: &[u8]) -> Option<String> {
    crate::web::csrf::form_field(body)
}
