//! The Monitor's query: what the filter form sends, read at the edge into the API's own
//! filters ([`crate::api::monitor::Filters`]), so a value the API refuses is refused here with
//! the same words, and no filter rule exists twice.
//!
//! What the workspace adds before the API's reading: an empty field is no filter (a GET form
//! sends every field), a time without an offset is UTC (what a `datetime-local` input sends;
//! the pages show UTC), and `range` (`1h`, `24h`, `7d`, `30d`) stands for a `since` that
//! far before now.

use charter_core::calendar::Span;
use charter_store::ViolationFilter;
use jiff::Timestamp;

use crate::api::monitor::Filters;
use crate::extract::{decode, parse_query};
use crate::web::pages::policies::encode;

/// The ranges the form offers, with their labels.
pub(super) const RANGES: &[(&str, &str)] = &[
    ("", "All time"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
];

/// The Monitor's query, read.
#[derive(Debug, Default)]
pub(crate) struct MonitorQuery {
    /// The form's fields as sent (decoded, empty ones left out), without the cursor: what the
    /// form shows again and what its links carry.
    pub(crate) fields: Vec<(String, String)>,
    /// The store's filter (the session's tenant is added by the caller).
    pub(crate) filter: ViolationFilter,
    /// Where the page starts.
    pub(crate) cursor: Option<String>,
    /// The range chosen (`""`: none).
    pub(crate) range: String,
}

/// A query the Monitor cannot use: what the page shows.
#[derive(Debug)]
pub(crate) struct Refused {
    /// The fields as sent, for the form (no filter).
    pub(crate) shown: MonitorQuery,
    /// What is wrong with them.
    pub(crate) problem: String,
}

impl MonitorQuery {
    /// Reads `raw` (a query string as sent) at `now`.
    pub(crate) fn parse(raw: &str, now: Timestamp) -> Result<MonitorQuery, Box<Refused>> {
        let mut fields = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(name), Some(value)) = (decode(name, true), decode(value, true)) else {
                let problem = "the address holds text that is not percent-encoded UTF-8";
                return Err(Box::new(Refused {
                    shown: MonitorQuery::default(),
                    problem: problem.into(),
                }));
            };
            let value = value.trim().to_owned();
            if !value.is_empty() {
                fields.push((name, value));
            }
        }
        let range = fields
            .iter()
            .find(|(n, _)| n == "range")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        match read(&fields, &range, now) {
            Ok((filter, cursor)) => {
                fields.retain(|(n, _)| n != "cursor");
                Ok(MonitorQuery {
                    fields,
                    filter,
                    cursor,
                    range,
                })
            }
            Err(problem) => {
                fields.retain(|(n, _)| n != "cursor");
                let shown = MonitorQuery {
                    fields,
                    range,
                    ..MonitorQuery::default()
                };
                Err(Box::new(Refused { shown, problem }))
            }
        }
    }

    /// A field's value as sent, or `""`.
    pub(crate) fn field(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `path` with these filters and `cursor`.
    pub(crate) fn href(&self, path: &str, cursor: Option<&str>) -> String {
        let mut params: Vec<String> = self
            .fields
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect();
        if let Some(cursor) = cursor {
            params.push(format!("cursor={}", encode(cursor)));
        }
        if params.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", params.join("&"))
        }
    }

    /// Whether any filter narrows the events.
    pub(crate) fn filtered(&self) -> bool {
        !self.fields.is_empty()
    }
}

/// The store's filter and the cursor of `fields` (decoded, none empty), read by the API's own
/// parsing after what only the form needs: times without offset, `range`.
fn read(
    fields: &[(String, String)],
    range: &str,
    now: Timestamp,
) -> Result<(ViolationFilter, Option<String>), String> {
    let mut api = Vec::new();
    for (name, value) in fields {
        match name.as_str() {
            "range" => {}
            "since" | "until" => api.push((name.clone(), utc(value))),
            // The page's own length: the API's `limit`, `bucket` mean nothing here.
            "limit" | "bucket" => return Err(format!("{name}: the Monitor takes no `{name}`")),
            _ => api.push((name.clone(), value.clone())),
        }
    }
    if !range.is_empty() && !fields.iter().any(|(n, _)| n == "since") {
        let span = RANGES
            .iter()
            .skip(1)
            .find(|(r, _)| *r == range)
            .and_then(|(r, _)| Span::parse(r).ok())
            .ok_or_else(|| format!("range: `{range}` is none of 1h, 24h, 7d, 30d"))?;
        let back = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
        let since = Timestamp::from_millisecond(now.as_millisecond().saturating_sub(back))
            .map_err(|e| format!("range: {e}"))?;
        api.push(("since".into(), since.to_string()));
    }
    let query = api
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let filters: Filters = parse_query(&query).map_err(|e| e.in_words())?;
    let filter = filters.filter().map_err(|e| e.in_words())?;
    Ok((filter, filters.cursor))
}

/// A time as a `datetime-local` input sends it (no offset) is UTC; anything else is passed on
/// as sent, for the API's reading to accept or refuse.
pub(crate) fn utc(value: &str) -> String {
    match value.parse::<jiff::civil::DateTime>() {
        Ok(civil) if value.parse::<Timestamp>().is_err() => jiff::tz::TimeZone::UTC
            .to_timestamp(civil)
            .map_or_else(|_| value.to_owned(), |at| at.to_string()),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-06T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn empty_fields_are_no_filter_and_links_keep_the_rest() {
        let q = MonitorQuery::parse("policy_id=pol_1&agent_id=&decision=halt&cursor=abc", now())
            .unwrap();
        assert_eq!(q.filter.policy_id.as_deref(), Some("pol_1"));
        assert_eq!(q.filter.agent_id, None);
        assert_eq!(q.filter.decision.as_deref(), Some("halt"));
        assert_eq!(q.cursor.as_deref(), Some("abc"));
        assert_eq!(
            q.href("/monitor", Some("c d")),
            "/monitor?policy_id=pol_1&decision=halt&cursor=c%20d"
        );
        assert!(q.filtered());
        assert!(!MonitorQuery::parse("", now()).unwrap().filtered());
    }

    #[test]
    fn times_without_offset_are_utc_and_ranges_end_now() {
        let q = MonitorQuery::parse("since=2026-12-01T10%3A30", now()).unwrap();
        assert_eq!(
            q.filter.since,
            Some("2026-12-01T10:30:00Z".parse().unwrap())
        );
        let q = MonitorQuery::parse("range=24h", now()).unwrap();
        assert_eq!(
            q.filter.since,
            Some("2026-12-05T12:00:00Z".parse().unwrap())
        );
        assert_eq!(q.range, "24h");
    }

    #[test]
    fn bad_values_are_named() {
        for (query, field) in [
            ("decision=allow", "decision"),
            ("rule_type=nope", "rule_type"),
            ("since=yesterday", "since"),
            ("range=2y", "range"),
            ("policy_id=%3Cscript%3E", "policy_id"),
            ("colour=red", "colour"),
            ("limit=5", "limit"),
        ] {
            let refused = MonitorQuery::parse(query, now()).unwrap_err();
            let e = refused.problem;
            assert!(
                refused.shown.filtered(),
                "{query}: the form keeps what was sent"
            );
            assert!(e.contains(field), "{query}: {e}");
        }
    }
}
