//! The Audit Log: entries in the order the store keeps them (chain by chain, oldest first),
//! filtered by action, policy, lineage, actor and time (all kept in the URL), paged by the
//! store's cursor, each with its details made readable (an edit's before and after, field by
//! field); and Verify, which recomputes the hash chains.
//!
//! Verify is a GET: it changes nothing, so it needs no CSRF token, can be linked to and
//! reloaded, and is what the API does too (`GET /v1/audit/verify`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use charter_core::{LineageId, PolicyId};
use charter_store::{AuditEntry, AuditFilter, Verification};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::policies::{encode, when};
use crate::state::AppState;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// Entries per page.
const PAGE: u32 = 50;

/// The actions an entry can record (api-v1.md), offered by the action filter.
const ACTIONS: [&str; 13] = [
    "policy.created",
    "policy.updated",
    "policy.validated",
    "policy.activated",
    "policy.deprecated",
    "policy.cloned",
    "policy.imported",
    "policy.exported",
    "policy.deleted",
    "agent.created",
    "key.created",
    "key.revoked",
    "tenant.created",
];

/// The log's query, as sent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    action: Option<String>,
    policy_id: Option<String>,
    lineage_id: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    cursor: Option<String>,
}

/// The filters, parsed; each kept as typed for the form and the links.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Filters {
    action: String,
    policy_id: String,
    lineage_id: String,
    actor: String,
    /// As typed (`2026-12-01`, `2026-12-01T09:30` or RFC 3339).
    since: String,
    since_at: Option<Timestamp>,
}

/// Empty text is no filter.
fn given(text: Option<String>) -> String {
    text.map(|t| t.trim().to_owned()).unwrap_or_default()
}

/// A time as the filter takes it: RFC 3339, or a date or date and time read as UTC (what a
/// `datetime-local` input sends).
fn parse_since(text: &str) -> Option<Timestamp> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Some(at);
    }
    let civil = text.parse::<jiff::civil::DateTime>().ok().or_else(|| {
        text.parse::<jiff::civil::Date>()
            .ok()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    })?;
    jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()
}

impl Filters {
    fn parse(query: AuditQuery) -> Result<(Filters, Option<String>), WebError> {
        let f = Filters {
            action: given(query.action),
            policy_id: given(query.policy_id),
            lineage_id: given(query.lineage_id),
            actor: given(query.actor),
            since: given(query.since),
            since_at: None,
        };
        if !f.action.is_empty() && !ACTIONS.contains(&f.action.as_str()) {
            return Err(WebError::BadRequest(format!(
                "action: `{}` is not an action the log records",
                f.action
            )));
        }
        if !f.policy_id.is_empty() && PolicyId::new(f.policy_id.as_str()).is_err() {
            return Err(WebError::BadRequest("policy_id: not a policy id".into()));
        }
        if !f.lineage_id.is_empty() && LineageId::new(f.lineage_id.as_str()).is_err() {
            return Err(WebError::BadRequest("lineage_id: not a lineage id".into()));
        }
        // A key id has the shape every id has.
        if !f.actor.is_empty() && PolicyId::new(f.actor.as_str()).is_err() {
            return Err(WebError::BadRequest("actor: not a key id".into()));
        }
        let since_at = if f.since.is_empty() {
            None
        } else {
            Some(parse_since(&f.since).ok_or_else(|| {
                WebError::BadRequest(
                    "since: a time is RFC 3339 (2026-12-01T09:30:00Z), or a date and time in UTC (2026-12-01T09:30)".into(),
                )
            })?)
        };
        let cursor = query.cursor.filter(|c| !c.is_empty());
        Ok((Filters { since_at, ..f }, cursor))
    }

    /// The log's URL with these filters, at `cursor`.
    fn href(&self, cursor: Option<&str>) -> String {
        let params: Vec<String> = [
            ("action", self.action.as_str()),
            ("policy_id", self.policy_id.as_str()),
            ("lineage_id", self.lineage_id.as_str()),
            ("actor", self.actor.as_str()),
            ("since", self.since.as_str()),
            ("cursor", cursor.unwrap_or("")),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
        if params.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{}", params.join("&"))
        }
    }

    /// These filters with only `lineage_id` set: the version chain of one lineage.
    fn lineage_href(lineage: &str) -> String {
        Filters {
            lineage_id: lineage.to_owned(),
            ..Filters::default()
        }
        .href(None)
    }
}

/// One field of an edit: what it was and what it became.
struct FieldChange {
    field: String,
    before: String,
    after: String,
}

/// One detail of an entry: short ones inline, long ones (a whole definition) folded.
struct Detail {
    name: String,
    text: String,
    long: bool,
}

/// A value as a person reads it: text as is, a short value as one line of JSON, a long one
/// (a definition, a list of rules) as indented JSON.
fn readable(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        other => {
            let line = other.to_string();
            if line.len() <= 80 {
                line
            } else {
                serde_json::to_string_pretty(other).unwrap_or(line)
            }
        }
    }
}

/// An entry's details: the fields an edit changed (from its `before` and `after`), and the
/// rest one by one.
fn details(value: &Value) -> (Vec<FieldChange>, Vec<Detail>) {
    let Value::Object(map) = value else {
        return (Vec::new(), Vec::new());
    };
    let mut changes = Vec::new();
    if let (Some(Value::Object(before)), Some(Value::Object(after))) =
        (map.get("before"), map.get("after"))
    {
        let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
        fields.sort_unstable();
        fields.dedup();
        for field in fields {
            let (b, a) = (before.get(field), after.get(field));
            if b == a {
                continue;
            }
            if let (Some(Value::Array(b)), Some(Value::Array(a))) = (b, a)
                && field == "rules"
                && let Some(rules) = rule_changes(b, a)
            {
                changes.extend(rules);
                continue;
            }
            changes.push(FieldChange {
                field: field.clone(),
                before: b.map_or_else(|| "—".to_owned(), readable),
                after: a.map_or_else(|| "—".to_owned(), readable),
            });
        }
    }
    let rest = map
        .iter()
        .filter(|(k, _)| changes.is_empty() || !matches!(k.as_str(), "before" | "after"))
        .map(|(name, v)| {
            let text = readable(v);
            Detail {
                long: text.len() > 80 || text.contains('\n'),
                name: name.clone(),
                text,
            }
        })
        .collect();
    (changes, rest)
}

/// An edit of the rules, rule by rule (by id): the rules added, removed or changed, and a
/// line saying so when only their order changed. `None` when a rule has no id (nothing to
/// match them by: the lists are then shown whole).
fn rule_changes(before: &[Value], after: &[Value]) -> Option<Vec<FieldChange>> {
    let id = |rule: &Value| rule.get("id").and_then(Value::as_str).map(str::to_owned);
    let ids = |rules: &[Value]| rules.iter().map(id).collect::<Option<Vec<String>>>();
    let (before_ids, after_ids) = (ids(before)?, ids(after)?);
    let find = |rules: &[Value], ids: &[String], wanted: &str| {
        ids.iter()
            .position(|i| i == wanted)
            .and_then(|n| rules.get(n))
            .cloned()
    };
    let mut seen = Vec::new();
    let mut changes = Vec::new();
    for rule in before_ids.iter().chain(after_ids.iter()) {
        if seen.contains(&rule) {
            continue;
        }
        seen.push(rule);
        let (b, a) = (
            find(before, &before_ids, rule),
            find(after, &after_ids, rule),
        );
        if b != a {
            changes.push(FieldChange {
                field: format!("rule {rule}"),
                before: b.as_ref().map_or_else(|| "— (added)".to_owned(), readable),
                after: a
                    .as_ref()
                    .map_or_else(|| "— (removed)".to_owned(), readable),
            });
        }
    }
    if changes.is_empty() {
        changes.push(FieldChange {
            field: "rules".to_owned(),
            before: format!("order: {}", before_ids.join(", ")),
            after: format!("order: {}", after_ids.join(", ")),
        });
    }
    Some(changes)
}

/// An entry as shown.
struct Row {
    seq: u64,
    at: String,
    /// Its chain: a tenant's id, or `platform`.
    chain: String,
    actor_name: String,
    actor_id: String,
    actor_href: String,
    action: String,
    policy_id: Option<String>,
    version: Option<u32>,
    lineage_id: Option<String>,
    lineage_href: String,
    changes: Vec<FieldChange>,
    details: Vec<Detail>,
}

impl Row {
    fn of(entry: AuditEntry) -> Row {
        let (changes, details) = details(&entry.details);
        Row {
            seq: entry.seq,
            at: when(entry.at),
            chain: entry.tenant_id.unwrap_or_else(|| "platform".to_owned()),
            actor_href: Filters {
                actor: entry.actor.key_id.clone(),
                ..Filters::default()
            }
            .href(None),
            actor_name: entry.actor.name,
            actor_id: entry.actor.key_id,
            action: entry.action,
            policy_id: entry.policy_id,
            version: entry.version,
            lineage_href: entry
                .lineage_id
                .as_deref()
                .map(Filters::lineage_href)
                .unwrap_or_default(),
            lineage_id: entry.lineage_id,
            changes,
            details,
        }
    }
}

/// The Audit Log.
#[derive(Template)]
#[template(path = "audit.html", blocks = ["content"])]
struct AuditPage {
    chrome: Chrome,
    filters: Filters,
    actions: &'static [&'static str],
    rows: Vec<Row>,
    /// The next page's URL.
    next: Option<String>,
    /// Whether this is a later page (a link back to the first).
    paged: bool,
    /// Whether any filter narrows the log.
    filtered: bool,
    /// The chain shown: a tenant's, or every chain the key reads.
    chains: String,
}

render::page!(AuditPage);

/// The chain the visitor looks at: a tenant key's own (the store sees to that), a platform
/// key's chosen tenant, or every chain.
fn chain_of(visitor: &Visitor) -> Option<String> {
    if visitor.caller.principal.tenant().is_some() {
        None
    } else {
        visitor.tenant.clone()
    }
}

/// `GET /audit`.
pub(crate) async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let path = uri
        .path_and_query()
        .map_or_else(|| "/audit".to_owned(), ToString::to_string);
    let chrome = Chrome::load(&state, &visitor, "audit", path).await?;
    let parsed = match query {
        Ok(Query(query)) => Filters::parse(query),
        Err(e) => Err(WebError::BadRequest(e.body_text())),
    };
    let (filters, cursor) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let nonempty = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
    let filter = AuditFilter {
        tenant_id: chain_of(&visitor),
        policy_id: nonempty(&filters.policy_id),
        lineage_id: nonempty(&filters.lineage_id),
        action: nonempty(&filters.action),
        actor: nonempty(&filters.actor),
        since: filters.since_at,
    };
    let page = match state
        .store
        .audit(&visitor.caller.principal, &filter, cursor.as_deref(), PAGE)
        .await
    {
        Ok(page) => page,
        Err(e) => return Ok(WebError::from(e).in_layout(chrome, htmx)),
    };
    let chains = match visitor.tenant_in_view() {
        Some(t) => format!("the audit chain of {t}"),
        None => "every audit chain (the platform's and each tenant's)".to_owned(),
    };
    // The address htmx pushes: the filters as parsed, without the form's empty fields.
    let canonical = filters.href(cursor.as_deref());
    let page = AuditPage {
        chrome,
        next: page.next_cursor.as_deref().map(|c| filters.href(Some(c))),
        paged: cursor.is_some(),
        filtered: filters != Filters::default(),
        rows: page.items.into_iter().map(Row::of).collect(),
        actions: &ACTIONS,
        filters,
        chains,
    };
    let mut response = render::respond(StatusCode::OK, htmx, &page);
    if htmx && let Ok(url) = HeaderValue::from_str(&canonical) {
        response.headers_mut().insert("hx-push-url", url);
    }
    Ok(response)
}

/// The result of Verify.
#[derive(Template)]
#[template(path = "audit_verify.html", blocks = ["content"])]
struct VerifyPage {
    chrome: Chrome,
    chains: String,
    /// Entries checked, when every one checked out.
    entries: Option<u64>,
    /// The chain and entry where it breaks.
    broken: Option<(String, u64)>,
}

render::page!(VerifyPage);

/// `GET /audit/verify`: recomputes the hash chains the visitor reads (`Store::verify_audit`,
/// as `GET /v1/audit/verify`) and names the first bad entry.
pub(crate) async fn verify(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "audit", uri.path().to_owned()).await?;
    let chain = chain_of(&visitor);
    let result = match state
        .store
        .verify_audit(&visitor.caller.principal, chain.as_deref())
        .await
    {
        Ok(result) => result,
        Err(e) => return Ok(WebError::from(e).in_layout(chrome, htmx)),
    };
    let (entries, broken) = match result {
        Verification::Ok { entries, .. } => (Some(entries), None),
        Verification::Broken {
            tenant_id,
            first_bad_seq,
            ..
        } => (
            None,
            Some((
                tenant_id.unwrap_or_else(|| "platform".to_owned()),
                first_bad_seq,
            )),
        ),
    };
    let chains = match visitor.tenant_in_view() {
        Some(t) => format!("the audit chain of {t}"),
        None => "every audit chain".to_owned(),
    };
    let page = VerifyPage {
        chrome,
        chains,
        entries,
        broken,
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters_are_checked_and_kept_in_links() {
        let query = AuditQuery {
            action: Some("policy.updated".into()),
            since: Some("2026-12-01T09:30".into()),
            cursor: Some("3~acme".into()),
            ..AuditQuery::default()
        };
        let (f, cursor) = Filters::parse(query).unwrap();
        assert_eq!(cursor.as_deref(), Some("3~acme"));
        assert_eq!(f.since_at, "2026-12-01T09:30:00Z".parse().ok());
        assert_eq!(
            f.href(Some("9~acme")),
            "/audit?action=policy.updated&since=2026-12-01T09%3A30&cursor=9~acme"
        );
        assert_eq!(
            parse_since("2026-12-01"),
            "2026-12-01T00:00:00Z".parse().ok()
        );
        for bad in [
            AuditQuery {
                action: Some("policy.eaten".into()),
                ..AuditQuery::default()
            },
            AuditQuery {
                since: Some("yesterday".into()),
                ..AuditQuery::default()
            },
            AuditQuery {
                actor: Some("<script>".into()),
                ..AuditQuery::default()
            },
        ] {
            assert!(Filters::parse(bad).is_err());
        }
    }

    #[test]
    fn an_edit_reads_field_by_field() {
        let (changes, rest) = details(&json!({
            "revision": 2,
            "before": {"name": "a", "rules": [], "description": "same"},
            "after": {"name": "b", "rules": [{"id": "r1"}], "description": "same"},
        }));
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["name", "rule r1"]);
        assert_eq!(
            (changes[0].before.as_str(), changes[0].after.as_str()),
            ("a", "b")
        );
        assert_eq!(rest.len(), 1);
        assert_eq!(
            (rest[0].name.as_str(), rest[0].text.as_str()),
            ("revision", "2")
        );
        let (changes, _) = details(&json!({
            "before": {"rules": [{"id": "r1", "limit": 1}, {"id": "r2"}]},
            "after": {"rules": [{"id": "r2"}, {"id": "r1", "limit": 2}, {"id": "r3"}]},
        }));
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["rule r1", "rule r3"]);
        assert_eq!(changes[0].before, r#"{"id":"r1","limit":1}"#);
        assert_eq!(changes[1].before, "— (added)");
        let (changes, _) = details(&json!({
            "before": {"rules": [{"id": "r1"}, {"id": "r2"}]},
            "after": {"rules": [{"id": "r2"}, {"id": "r1"}]},
        }));
        assert_eq!(changes[0].after, "order: r2, r1");
        let (changes, rest) = details(&json!({"agent_id": "bot", "owner": null}));
        assert!(changes.is_empty());
        assert_eq!(rest[1].text, "—");
    }
}
