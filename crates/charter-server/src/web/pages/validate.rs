//! Validate from a policy's page: the range to replay (how far back, how many runs), then the
//! report: totals, blocks per rule, samples linked to their runs, new blocks against those
//! already blocked, actions that could not be replayed. The replay is `crate::validation`'s,
//! the same as `POST /v1/policies/{id}/validate`, and stores the report against the revision
//! (what activation without force needs).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use charter_core::engine::Outcome;
use charter_core::replay::ReplayReport;
use serde::Deserialize;

use super::policies::{Row, policy_id, visible, when};
use crate::state::AppState;
use crate::validation::{self, MAX_RUNS, Range};
use crate::web::forms::FormErrors;
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// The spans offered, the default first after none.
const LOOKBACKS: [(&str, &str); 5] = [
    ("1h", "the last hour"),
    ("24h", "the last 24 hours"),
    ("7d", "the last 7 days"),
    ("30d", "the last 30 days"),
    ("90d", "the last 90 days"),
];

/// The form as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateForm {
    #[serde(default, rename = "csrf")]
    _csrf: Option<String>,
    #[serde(default)]
    lookback: Option<String>,
    #[serde(default)]
    max_runs: Option<String>,
}

/// A choice of the span select.
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// A sample of the report, as a row.
struct SampleRow {
    at: String,
    agent: String,
    run: String,
    rule: String,
    halt: bool,
    matching: String,
    already: bool,
}

/// The report, as the page shows it.
struct ReportView {
    since: String,
    until: String,
    capped: bool,
    totals: ReplayReport,
    by_rule: Vec<(String, u64)>,
    samples: Vec<SampleRow>,
}

impl ReportView {
    fn of(report: crate::answers::ValidationReport) -> ReportView {
        let totals = report.report;
        ReportView {
            since: when(report.range.since),
            until: when(report.range.until),
            capped: report.runs_capped,
            by_rule: totals
                .by_rule
                .iter()
                .map(|r| (r.rule_id.to_string(), r.blocked))
                .collect(),
            samples: totals
                .samples
                .iter()
                .map(|s| SampleRow {
                    at: when(s.at),
                    agent: s.agent_id.clone(),
                    run: s.run_id.clone(),
                    rule: s.rule_id.to_string(),
                    halt: s.decision == Outcome::Halt,
                    matching: s.matching_input.clone().unwrap_or_default(),
                    already: s.already_blocked,
                })
                .collect(),
            totals,
        }
    }
}

/// The page: the form, and a report once one was made.
#[derive(Template)]
#[template(path = "policy_validate.html", blocks = ["content"])]
struct ValidatePage {
    chrome: Chrome,
    row: Row,
    revision: u32,
    last: Option<String>,
    choices: Vec<Choice>,
    max_runs: String,
    errors: FormErrors,
    report: Option<ReportView>,
}

render::page!(ValidatePage);

fn choices(selected: &str) -> Vec<Choice> {
    LOOKBACKS
        .iter()
        .map(|&(value, label)| Choice {
            value,
            label,
            selected: value == selected,
        })
        .collect()
}

/// What the policy's latest stored validation says, in a sentence.
fn last_validation(
    revision: u32,
    latest: Option<(u32, jiff::Timestamp, serde_json::Value)>,
) -> Option<String> {
    let (at_revision, at, report) = latest?;
    let count = |name: &str| report[name].as_u64().unwrap_or(0);
    let stale = if at_revision == revision {
        String::new()
    } else {
        format!(" (revision {at_revision}; the policy has changed since)")
    };
    Some(format!(
        "Last validated on {}{stale}: would block {} of {} actions in {} of {} runs.",
        when(at),
        count("actions_blocked"),
        count("actions_scanned"),
        count("runs_blocked"),
        count("runs_scanned"),
    ))
}

/// What a request shows besides the policy: its status, the form as sent, and the errors or the
/// report.
struct Shown {
    status: StatusCode,
    lookback: &'static str,
    max_runs: String,
    errors: FormErrors,
    report: Option<ReportView>,
}

impl Shown {
    /// The form as sent (a span not offered shows the default), with `errors` (422).
    fn refused(lookback: &str, max_runs: String, errors: FormErrors) -> Shown {
        Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            lookback: offered(lookback),
            max_runs,
            errors,
            report: None,
        }
    }
}

/// `lookback` if the form offers it, else the default.
fn offered(lookback: &str) -> &'static str {
    LOOKBACKS
        .iter()
        .find(|(value, _)| *value == lookback)
        .map_or(validation::DEFAULT_LOOKBACK, |(value, _)| value)
}

/// The page for `id` showing `shown`; for a key with `write` only (a validation is recorded).
async fn respond(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    id: &str,
    shown: Shown,
) -> Result<Response, WebError> {
    let htmx = is_htmx(headers);
    let chrome = Chrome::load(
        state,
        visitor,
        "policies",
        format!("/policies/{id}/validate"),
    )
    .await?;
    if let Err(e) = visitor.writer() {
        return Ok(e.in_layout(chrome, htmx));
    }
    let stored = match visible(state, visitor, id).await {
        Ok(stored) => stored,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let latest = state
        .store
        .latest_validation(&visitor.caller.principal, id)
        .await?;
    let page = ValidatePage {
        row: Row::of(&stored),
        revision: stored.policy.revision,
        last: last_validation(stored.policy.revision, latest),
        choices: choices(shown.lookback),
        max_runs: shown.max_runs,
        errors: shown.errors,
        report: shown.report,
        chrome,
    };
    Ok(render::respond(shown.status, htmx, &page))
}

/// `e` as a page of the validation of `id`.
async fn refused(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    id: &str,
    e: WebError,
) -> Result<Response, WebError> {
    let path = format!("/policies/{id}/validate");
    let chrome = Chrome::load(state, visitor, "policies", path).await?;
    Ok(e.in_layout(chrome, is_htmx(headers)))
}

/// `GET /policies/{id}/validate`: the form.
pub(crate) async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let shown = Shown {
        status: StatusCode::OK,
        lookback: validation::DEFAULT_LOOKBACK,
        max_runs: MAX_RUNS.to_string(),
        errors: FormErrors::default(),
        report: None,
    };
    respond(&state, &visitor, &headers, &id, shown).await
}

/// `POST /policies/{id}/validate`: replays, records and shows the report; a bad range is shown
/// beside its field (422) and replays nothing.
pub(crate) async fn run(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ValidateForm>,
) -> Result<Response, WebError> {
    let lookback = form
        .lookback
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| validation::DEFAULT_LOOKBACK.to_owned());
    let runs_text = form.max_runs.unwrap_or_default();
    let max_runs = match runs_text.trim() {
        "" => None,
        text => {
            let Ok(n) = text.parse::<u64>() else {
                let errors =
                    FormErrors::one("max_runs", format!("a whole number, 1 to {MAX_RUNS}"));
                let shown = Shown::refused(&lookback, runs_text, errors);
                return respond(&state, &visitor, &headers, &id, shown).await;
            };
            Some(n)
        }
    };
    let range = match Range::read(state.clock.now(), Some(&lookback), None, None, max_runs) {
        Ok(range) => range,
        Err(bad) => {
            let errors = FormErrors::one(bad.field, bad.message);
            let shown = Shown::refused(&lookback, runs_text, errors);
            return respond(&state, &visitor, &headers, &id, shown).await;
        }
    };
    let caller = match visitor.writer() {
        Ok(caller) => caller.clone(),
        Err(e) => return refused(&state, &visitor, &headers, &id, e).await,
    };
    if let Err(e) = policy_id(&id) {
        return refused(&state, &visitor, &headers, &id, e).await;
    }
    let report = match validation::run(&state, &caller, &id, range).await {
        Ok(report) => ReportView::of(report),
        Err(e) => return refused(&state, &visitor, &headers, &id, WebError::from(e)).await,
    };
    let shown = Shown {
        status: StatusCode::OK,
        lookback: offered(&lookback),
        max_runs: runs_text,
        errors: FormErrors::default(),
        report: Some(report),
    };
    respond(&state, &visitor, &headers, &id, shown).await
}
