//! Prometheus metrics, rendered on `GET /metrics` with prometheus-client: requests and their
//! latency per method and route template, checks' decisions and latency, violations per
//! policy and rule type, the group commit's progress, the process and the build.
//!
//! A registry per server rather than a global recorder: every server (and every test router)
//! has its own, and nothing here can fail at start. `/metrics` needs no key, so every label
//! takes its values from a closed set: a method outside the standard ones is `other`, a path
//! no route matches is `unmatched`, and a violation's `policy_id` is that of a policy that
//! exists. A request cannot add series of its own making. Policies are as many as operators
//! make (the engine holds 100,000): past [`MAX_POLICY_SERIES`] policies with series of their
//! own, the others' violations count under `policy_id="other"`.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::error::ApiError;

/// The most policies whose violations are counted under their own `policy_id`.
pub(crate) const MAX_POLICY_SERIES: usize = 1_000;

/// The `what` of `charter_pruned_total`, in the order of `Pruned`'s fields.
const PRUNED: [&str; 4] = ["runs", "actions", "violations", "audit_entries"];

/// Upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// The label of a request's method: the methods RFC 9110 defines and PATCH, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The label of a decision or a violation's outcome.
fn decision_label(decision: &str) -> &'static str {
    match decision {
        "allow" => "allow",
        "block" => "block",
        "halt" => "halt",
        _ => "other",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViolationLabels {
    policy_id: String,
    rule_type: &'static str,
    decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrunedLabels {
    what: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    check_duration: Histogram,
    violations: Family<ViolationLabels, Counter>,
    pruned: Family<PrunedLabels, Counter>,
    /// The policies counted under their own id so far.
    policies: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The server's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// The two text formats `/metrics` renders, chosen by the request's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// Prometheus' classic text format (0.0.4): what a plain client gets.
    Prometheus,
    /// OpenMetrics 1.0.0 text, for a scraper that asks for it (Prometheus does).
    OpenMetrics,
}

impl Exposition {
    /// The format an `Accept` header prefers: OpenMetrics when it ranks
    /// `application/openmetrics-text` (version 1.0.0, or none given) at least as high as
    /// plain text, the classic format otherwise (also without the header).
    pub fn negotiate(accept: Option<&HeaderValue>) -> Exposition {
        let Some(accept) = accept.and_then(|a| a.to_str().ok()) else {
            return Exposition::Prometheus;
        };
        let (mut openmetrics, mut plain) = (0.0_f64, 0.0_f64);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let (mut q, mut version) = (1.0_f64, None);
            for param in parts {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                match name.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(value.trim().trim_matches('"').to_owned()),
                    _ => {}
                }
            }
            match media.as_str() {
                "application/openmetrics-text"
                    if version.as_deref().is_none_or(|v| v == "1.0.0") =>
                {
                    openmetrics = openmetrics.max(q);
                }
                "text/plain" | "text/*" | "*/*" => plain = plain.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= plain {
            Exposition::OpenMetrics
        } else {
            Exposition::Prometheus
        }
    }

    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Prometheus => prometheus_text::CONTENT_TYPE,
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

impl Metrics {
    /// A fresh registry with every metric of the server.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "charter_http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let request_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register(
            "charter_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            request_duration.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        // Every outcome is shown from the start, so a rate over it never starts from nothing.
        for decision in ["allow", "block", "halt"] {
            drop(decisions.get_or_create(&DecisionLabels { decision }));
        }
        registry.register(
            "charter_decisions",
            "Decisions of checks by outcome",
            decisions.clone(),
        );
        let check_duration = latency();
        registry.register(
            "charter_check_duration_seconds",
            "Latency of checks, record included",
            check_duration.clone(),
        );
        let violations = Family::<ViolationLabels, Counter>::default();
        registry.register(
            "charter_violations",
            "Violations of refused actions by policy, rule type and decision",
            violations.clone(),
        );
        let pruned = Family::<PrunedLabels, Counter>::default();
        for what in PRUNED {
            drop(pruned.get_or_create(&PrunedLabels { what }));
        }
        registry.register(
            "charter_pruned",
            "Rows removed by retention: runs, actions, violations, audit entries",
            pruned.clone(),
        );
        registry.register(
            "charter_build",
            "The running build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        registry.register_collector(Box::new(crate::process::Process));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                request_duration,
                decisions,
                check_duration,
                violations,
                pruned,
                policies: std::sync::Mutex::default(),
            }),
        }
    }

    fn observe(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let inner = &self.inner;
        inner
            .requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        inner
            .request_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts one decision of a check and how long the check took (evaluation, limits and the
    /// durable record).
    pub fn observe_decision(&self, outcome: &'static str, seconds: f64) {
        self.inner
            .decisions
            .get_or_create(&DecisionLabels {
                decision: decision_label(outcome),
            })
            .inc();
        self.inner.check_duration.observe(seconds);
    }

    /// Counts what a pruning pass removed.
    pub fn observe_pruned(&self, pruned: &charter_store::Pruned) {
        let counts = [
            pruned.runs,
            pruned.actions,
            pruned.violations,
            pruned.audit_entries,
        ];
        for (what, n) in PRUNED.into_iter().zip(counts) {
            self.inner
                .pruned
                .get_or_create(&PrunedLabels { what })
                .inc_by(n);
        }
    }

    /// Counts one violation of a refused action: `policy_id` of the violated policy,
    /// `rule_type` of its rule, `decision` its outcome (`block` or `halt`).
    pub fn observe_violation(&self, policy_id: &str, rule_type: &str, decision: &str) {
        let rule_type = charter_core::RuleType::from_name(rule_type)
            .map_or("other", charter_core::RuleType::as_str);
        let policy_id = match self.inner.policies.lock() {
            Ok(seen) if seen.contains(policy_id) => policy_id,
            Ok(mut seen) if seen.len() < MAX_POLICY_SERIES => {
                seen.insert(policy_id.to_owned());
                policy_id
            }
            _ => "other",
        };
        self.inner
            .violations
            .get_or_create(&ViolationLabels {
                policy_id: policy_id.to_owned(),
                rule_type,
                decision: decision_label(decision),
            })
            .inc();
    }

    /// Every metric in `exposition`'s format; `writer` is the group-commit writer's
    /// (commits, actions) so far, read at each scrape.
    pub fn render(&self, exposition: Exposition, writer: (u64, u64)) -> Result<String, fmt::Error> {
        let mut progress = Registry::default();
        progress.register(
            "charter_action_commits",
            "Group commits of checked actions",
            ConstCounter::new(writer.0),
        );
        progress.register(
            "charter_actions_committed",
            "Checked actions committed (actions / commits = the batch size)",
            ConstCounter::new(writer.1),
        );
        let mut out = String::new();
        match exposition {
            Exposition::Prometheus => {
                prometheus_text::encode(&mut out, &self.inner.registry)?;
                prometheus_text::encode(&mut out, &progress)?;
            }
            Exposition::OpenMetrics => {
                text::encode_registry(&mut out, &self.inner.registry)?;
                text::encode_registry(&mut out, &progress)?;
                text::encode_eof(&mut out)?;
            }
        }
        Ok(out)
    }

    /// The answer to `GET /metrics`: the format the request's `Accept` prefers, with its
    /// content type.
    pub(crate) fn respond(&self, headers: &HeaderMap, writer: (u64, u64)) -> Response {
        let exposition = Exposition::negotiate(headers.get(header::ACCEPT));
        match self.render(exposition, writer) {
            Ok(body) => (
                [
                    (header::CONTENT_TYPE, exposition.content_type()),
                    (header::VARY, "accept"),
                ],
                body,
            )
                .into_response(),
            Err(e) => ApiError::internal(&format!("rendering metrics: {e}")).into_response(),
        }
    }
}

/// Middleware recording each request under its method and route template (never the raw
/// path or a made-up method, so a request cannot add series).
pub(crate) async fn track(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_accept() {
        let negotiate =
            |accept: &str| Exposition::negotiate(Some(&HeaderValue::from_str(accept).unwrap()));
        assert_eq!(Exposition::negotiate(None), Exposition::Prometheus);
        assert_eq!(negotiate("*/*"), Exposition::Prometheus);
        assert_eq!(negotiate("text/plain"), Exposition::Prometheus);
        // What Prometheus 2.x and 3.x send.
        assert_eq!(
            negotiate(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            Exposition::OpenMetrics
        );
        assert_eq!(
            negotiate("application/openmetrics-text; version=0.0.1"),
            Exposition::Prometheus
        );
        assert_eq!(
            negotiate("text/plain, application/openmetrics-text;q=0.5"),
            Exposition::Prometheus
        );
        assert_eq!(
            negotiate("application/openmetrics-text;q=0"),
            Exposition::Prometheus
        );
    }

    #[test]
    fn labels_come_from_closed_sets() {
        assert_eq!(method_label(&Method::from_bytes(b"FOO").unwrap()), "other");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(decision_label("maybe"), "other");
        let metrics = Metrics::new();
        metrics.observe_violation("pol_1", "made_up", "block");
        metrics.observe_violation("pol_1", "tool", "halt");
        let text = metrics.render(Exposition::Prometheus, (0, 0)).unwrap();
        assert!(
            text.contains(
                r#"charter_violations_total{policy_id="pol_1",rule_type="other",decision="block"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"charter_violations_total{policy_id="pol_1",rule_type="tool",decision="halt"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn policies_past_the_cap_count_as_other() {
        let metrics = Metrics::new();
        for i in 0..MAX_POLICY_SERIES + 5 {
            metrics.observe_violation(&format!("pol_{i}"), "tool", "block");
        }
        metrics.observe_violation("pol_0", "tool", "block");
        let text = metrics.render(Exposition::Prometheus, (0, 0)).unwrap();
        let series = text
            .lines()
            .filter(|l| l.starts_with("charter_violations_total{"))
            .count();
        assert_eq!(series, MAX_POLICY_SERIES + 1, "{text}");
        assert!(text.contains(
            r#"charter_violations_total{policy_id="other",rule_type="tool",decision="block"} 5"#
        ));
        assert!(text.contains(
            r#"charter_violations_total{policy_id="pol_0",rule_type="tool",decision="block"} 2"#
        ));
    }
}
