//! Prometheus metrics: request counts and latencies per route, rendered on `GET /metrics`.
//!
//! A small registry of its own rather than a global recorder: every server (and every test
//! router) has its own, and nothing here can fail at start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One route's requests: counts by status and the latency histogram.
#[derive(Debug, Default)]
struct RouteStats {
    statuses: BTreeMap<u16, u64>,
    latency: Histogram,
}

#[derive(Debug, Default)]
struct Registry {
    /// Method → route template → stats (nested so a request is counted without allocating).
    requests: BTreeMap<String, BTreeMap<String, RouteStats>>,
    decisions: BTreeMap<&'static str, u64>,
    decision_latency: Histogram,
}

/// The server's metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Registry>>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut registry) = self.inner.lock() else {
            return;
        };
        if !registry.requests.contains_key(method) {
            registry.requests.insert(method.to_owned(), BTreeMap::new());
        }
        let Some(routes) = registry.requests.get_mut(method) else {
            return;
        };
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteStats::default());
        }
        let Some(stats) = routes.get_mut(route) else {
            return;
        };
        *stats.statuses.entry(status).or_default() += 1;
        let histogram = &mut stats.latency;
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Counts one decision of a check and how long the check took (evaluation, limits and the
    /// durable record).
    pub fn observe_decision(&self, outcome: &'static str, seconds: f64) {
        let Ok(mut registry) = self.inner.lock() else {
            return;
        };
        *registry.decisions.entry(outcome).or_default() += 1;
        let h = &mut registry.decision_latency;
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The Prometheus text exposition of every metric; `writer` is the group-commit writer's
    /// (commits, actions) so far.
    pub fn render_with(&self, writer: (u64, u64)) -> String {
        let mut out = self.render();
        let Ok(registry) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP charter_decisions_total Decisions of checks by outcome.\n");
        out.push_str("# TYPE charter_decisions_total counter\n");
        for outcome in ["allow", "block", "halt"] {
            let n = registry.decisions.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(out, "charter_decisions_total{{decision=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP charter_check_duration_seconds Latency of checks, record included.\n");
        out.push_str("# TYPE charter_check_duration_seconds histogram\n");
        let h = &registry.decision_latency;
        for (bound, count) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "charter_check_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "charter_check_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "charter_check_duration_seconds_sum {}", h.sum);
        let _ = writeln!(out, "charter_check_duration_seconds_count {}", h.count);
        out.push_str("# HELP charter_action_commits_total Group commits of checked actions.\n");
        out.push_str("# TYPE charter_action_commits_total counter\n");
        let _ = writeln!(out, "charter_action_commits_total {}", writer.0);
        out.push_str("# HELP charter_actions_committed_total Checked actions committed (actions / commits = the batch size).\n");
        out.push_str("# TYPE charter_actions_committed_total counter\n");
        let _ = writeln!(out, "charter_actions_committed_total {}", writer.1);
        out
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(registry) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP charter_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE charter_http_requests_total counter\n");
        for (method, routes) in &registry.requests {
            for (route, stats) in routes {
                for (status, n) in &stats.statuses {
                    let _ = writeln!(
                        out,
                        "charter_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP charter_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE charter_http_request_duration_seconds histogram\n");
        let latencies = registry.requests.iter().flat_map(|(method, routes)| {
            routes
                .iter()
                .map(move |(route, stats)| (method, route, &stats.latency))
        });
        for (method, route, h) in latencies {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "charter_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "charter_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "charter_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "charter_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

/// Middleware recording each request under its route template (never the raw path, so ids do
/// not become labels).
pub(crate) async fn track(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        method.as_str(),
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}
