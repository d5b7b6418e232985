//! A draft's rules from its page: add one (a form per rule type), edit, remove (after a page
//! that says what goes) and move up or down.
//!
//! One authority: a form is turned into the JSON `POST /v1/policies/{id}/rules` takes and
//! parsed by core's `Rule::parse`, then written by the store operation the API calls
//! (`add_rule`, `remove_rule`, `update_policy` with the new order), with the session's caller.
//! Every form carries the policy's revision as it was when the page was opened, passed as the
//! `If-Match` revision: a form sent after the draft changed is refused and changes nothing.
//! Only a draft's page offers these, only to a key with `write`; the handlers check both again.

mod errors;
mod form;

use askama::Template;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use charter_core::action::{ActionKind, Operation};
use charter_core::calendar::{Period, Weekday};
use charter_core::pii::PiiKind;
use charter_core::rule::{Effect, MAX_CONDITIONS, MAX_WINDOWS, Op, Per, check_unique_ids};
use charter_core::{Rule, RuleId, RuleType};
use charter_store::{PolicyEdit, StoreError, StoredPolicy};
use serde::Deserialize;

use self::form::{Intent, RuleForm, Windows};
use super::editing::writable_draft;
use super::lifecycle::go;
use super::policies::{Row, RuleLine};
use crate::extract::Caller;
use crate::state::AppState;
use crate::web::forms::{FormErrors, Refusal};
use crate::web::render::{self, Chrome, WebError};
use crate::web::session::{Visitor, is_htmx};

/// A choice of a select, a radio group or a set of checkboxes.
struct Choice {
    value: &'static str,
    checked: bool,
}

/// `all` as choices, those in `chosen` checked.
fn choices(all: impl IntoIterator<Item = &'static str>, chosen: &[String]) -> Vec<Choice> {
    all.into_iter()
        .map(|value| Choice {
            value,
            checked: chosen.iter().any(|c| c == value),
        })
        .collect()
}

/// A condition row as the form shows it: its inputs' names are built from its index.
struct ConditionView {
    index: usize,
    arg: String,
    value: String,
    ops: Vec<Choice>,
    arg_error: Option<String>,
    op_error: Option<String>,
    value_error: Option<String>,
}

/// A window row as the form shows it.
struct WindowView {
    index: usize,
    days: Vec<Choice>,
    from: String,
    to: String,
    days_error: Option<String>,
    from_error: Option<String>,
    to_error: Option<String>,
}

/// A list of windows (`allow` or `deny`) as the form shows it.
struct WindowList {
    name: &'static str,
    legend: &'static str,
    rows: Vec<WindowView>,
    error: Option<String>,
    full: bool,
}

/// A rule's form, to add or edit a rule.
#[derive(Template)]
#[template(path = "rule_form.html", blocks = ["content"])]
struct FormPage {
    chrome: Chrome,
    row: Row,
    heading: String,
    /// Where the form posts.
    action: String,
    kind: &'static str,
    form: RuleForm,
    errors: FormErrors,
    effects: Vec<Choice>,
    pers: Vec<Choice>,
    periods: Vec<Choice>,
    operations: Vec<Choice>,
    kinds: Vec<Choice>,
    detectors: Vec<Choice>,
    conditions: Vec<ConditionView>,
    conditions_full: bool,
    windows: Vec<WindowList>,
}

render::page!(FormPage);

/// The error of a built input name, owned for the template.
fn error_of(errors: &FormErrors, name: &str) -> Option<String> {
    errors.get(name).map(str::to_owned)
}

impl FormPage {
    fn new(chrome: Chrome, stored: &StoredPolicy, form: RuleForm, errors: FormErrors) -> Self {
        let policy_id = stored.policy.id.to_string();
        let (heading, action) = match editing(&form) {
            Some(rule_id) => (
                format!("Edit rule {rule_id}"),
                format!("/policies/{policy_id}/rules/{rule_id}/edit"),
            ),
            None => (
                format!("Add {} rule", with_article(label(form.rule_type))),
                format!("/policies/{policy_id}/rules/new"),
            ),
        };
        let conditions = form
            .when
            .iter()
            .enumerate()
            .map(|(index, c)| ConditionView {
                index,
                arg: c.arg.clone(),
                value: c.value.clone(),
                ops: choices(Op::ALL.map(Op::as_str), std::slice::from_ref(&c.op)),
                arg_error: error_of(&errors, &format!("when[{index}].arg")),
                op_error: error_of(&errors, &format!("when[{index}].op")),
                value_error: error_of(&errors, &format!("when[{index}].value")),
            })
            .collect();
        let windows = [
            (Windows::Allow, "Allowed windows", &form.allow),
            (Windows::Deny, "Denied windows", &form.deny),
        ]
        .into_iter()
        .map(|(list, legend, rows)| {
            let name = list.name();
            WindowList {
                name,
                legend,
                rows: rows
                    .iter()
                    .enumerate()
                    .map(|(index, w)| WindowView {
                        index,
                        days: choices(Weekday::ALL.map(Weekday::as_str), &w.days),
                        from: w.from.clone(),
                        to: w.to.clone(),
                        days_error: error_of(&errors, &format!("{name}[{index}].days")),
                        from_error: error_of(&errors, &format!("{name}[{index}].from")),
                        to_error: error_of(&errors, &format!("{name}[{index}].to")),
                    })
                    .collect(),
                error: error_of(&errors, name),
                full: rows.len() >= MAX_WINDOWS,
            }
        })
        .collect();
        FormPage {
            chrome,
            row: Row::of(stored),
            heading,
            action,
            kind: form.rule_type.as_str(),
            effects: choices(
                Effect::ALL.map(Effect::as_str),
                std::slice::from_ref(&form.effect),
            ),
            pers: choices(Per::ALL.map(Per::as_str), std::slice::from_ref(&form.per)),
            periods: choices(
                Period::ALL.map(Period::as_str),
                std::slice::from_ref(&form.period),
            ),
            operations: choices(Operation::ALL.map(Operation::as_str), &form.operations),
            kinds: choices(ActionKind::ALL.map(ActionKind::as_str), &form.match_kinds),
            detectors: choices(PiiKind::ALL.map(PiiKind::as_str), &form.pii),
            conditions,
            conditions_full: form.when.len() >= MAX_CONDITIONS,
            windows,
            form,
            errors,
        }
    }
}

/// The rule a form edits: its id as stored, carried in a hidden field (`None`: a new rule).
fn editing(form: &RuleForm) -> Option<&str> {
    form.editing.as_deref()
}

/// A rule type in words.
fn label(rule_type: RuleType) -> &'static str {
    match rule_type {
        RuleType::Tool => "tool",
        RuleType::DataAccess => "data access",
        RuleType::Rate => "rate",
        RuleType::Cost => "cost",
        RuleType::Time => "time",
        RuleType::Output => "output",
    }
}

/// `words` after "a", or "an" before a vowel ("an output rule").
fn with_article(words: &str) -> String {
    let article = if words.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {words}")
}

/// What each rule type does, as the type chooser says it.
fn summary(rule_type: RuleType) -> &'static str {
    match rule_type {
        RuleType::Tool => "Deny tool calls, or allow only some, optionally on their arguments.",
        RuleType::DataAccess => "Deny reads, writes or deletes of resources, or allow only some.",
        RuleType::Rate => "At most so many actions in any rolling window.",
        RuleType::Cost => "A spending cap per run or calendar period; exceeding it halts the run.",
        RuleType::Time => "A longest run, and the hours of the week when agents may act.",
        RuleType::Output => "Phrases, patterns, personal data, length or a JSON Schema on output.",
    }
}

/// The page choosing a new rule's type.
#[derive(Template)]
#[template(path = "rule_type.html", blocks = ["content"])]
struct TypePage {
    chrome: Chrome,
    row: Row,
    /// `(type, label, summary)`.
    types: Vec<(&'static str, &'static str, &'static str)>,
}

render::page!(TypePage);

/// The page confirming a rule's removal.
#[derive(Template)]
#[template(path = "rule_remove.html", blocks = ["content"])]
struct RemovePage {
    chrome: Chrome,
    row: Row,
    rule: RuleLine,
    revision: u32,
}

render::page!(RemovePage);

/// The position of rule `rule_id` in `stored`: an unknown rule is not found.
fn position(stored: &StoredPolicy, rule_id: &str) -> Result<usize, WebError> {
    stored
        .policy
        .definition
        .rules
        .iter()
        .position(|r| r.id.as_str() == rule_id)
        .ok_or(WebError::NotFound)
}

/// The first of `r1`, `r2`… no rule of `stored` has.
fn next_id(stored: &StoredPolicy) -> String {
    let rules = &stored.policy.definition.rules;
    // Among n rules one of r1..=r(n+1) is free.
    (1..=rules.len() + 1)
        .map(|n| format!("r{n}"))
        .find(|id| rules.iter().all(|r| r.id.as_str() != id))
        .unwrap_or_default()
}

/// The query of `GET /policies/{id}/rules/new`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewQuery {
    #[serde(rename = "type")]
    rule_type: Option<String>,
}

/// `GET /policies/{id}/rules/new[?type=…]`: the type chooser, or the type's empty form.
pub(crate) async fn new_form(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<NewQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", format!("/policies/{id}")).await?;
    let stored = match writable_draft(&state, &visitor, &id).await {
        Ok((_, stored)) => stored,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let rule_type = match query {
        Ok(Query(NewQuery { rule_type: None })) => {
            let page = TypePage {
                chrome,
                row: Row::of(&stored),
                types: RuleType::ALL
                    .into_iter()
                    .map(|t| (t.as_str(), label(t), summary(t)))
                    .collect(),
            };
            return Ok(render::respond(StatusCode::OK, htmx, &page));
        }
        Ok(Query(NewQuery {
            rule_type: Some(name),
        })) => RuleType::from_name(&name),
        Err(_) => None,
    };
    let Some(rule_type) = rule_type else {
        let message = "type: one of tool, data_access, rate, cost, time, output".to_owned();
        return Ok(WebError::BadRequest(message).in_layout(chrome, htmx));
    };
    let form = RuleForm::new(rule_type, stored.policy.revision, next_id(&stored));
    let page = FormPage::new(chrome, &stored, form, FormErrors::default());
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// `GET /policies/{id}/rules/{rule_id}/edit`: the rule's form, filled in from the stored rule.
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((id, rule_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", format!("/policies/{id}")).await?;
    let found = writable_draft(&state, &visitor, &id)
        .await
        .and_then(|(_, stored)| position(&stored, &rule_id).map(|at| (stored, at)));
    let (stored, at) = match found {
        Ok(found) => found,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let rule = &stored.policy.definition.rules[at];
    let Ok(json) = serde_json::to_value(rule) else {
        return Ok(WebError::Internal.in_layout(chrome, htmx));
    };
    let mut form = RuleForm::of(&json, rule.rule_type(), stored.policy.revision);
    form.editing = Some(rule.id.to_string());
    let page = FormPage::new(chrome, &stored, form, FormErrors::default());
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// The decoded `name=value` pairs of a URL-encoded form body, in order.
fn pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((
                crate::extract::decode(name, true)?,
                crate::extract::decode(value, true)?,
            ))
        })
        .collect()
}

/// `POST /policies/{id}/rules/new`: adds the rule and opens the policy.
pub(crate) async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    submit(&state, &visitor, &headers, &id, None, &body).await
}

/// `POST /policies/{id}/rules/{rule_id}/edit`: replaces the rule in its place.
pub(crate) async fn update(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((id, rule_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    submit(&state, &visitor, &headers, &id, Some(&rule_id), &body).await
}

/// A rule's form sent: a row added or removed (the form again, 200), or the rule saved (to the
/// policy's page), or refused (the form again with its errors, 422, nothing changed).
async fn submit(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    id: &str,
    rule_id: Option<&str>,
    body: &[u8],
) -> Result<Response, WebError> {
    let htmx = is_htmx(headers);
    let chrome = Chrome::load(state, visitor, "policies", format!("/policies/{id}")).await?;
    let (caller, stored) = match writable_draft(state, visitor, id).await {
        Ok(found) => found,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let at = match rule_id.map(|r| position(&stored, r)).transpose() {
        Ok(at) => at,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let read = pairs(body)
        .ok_or_else(|| "the form is not URL-encoded UTF-8".to_owned())
        .and_then(|pairs| RuleForm::read(&pairs));
    let (mut form, intent) = match read {
        Ok(read) => read,
        Err(message) => return Ok(WebError::BadRequest(message).in_layout(chrome, htmx)),
    };
    form.editing = rule_id.map(str::to_owned);
    if intent != Intent::Save {
        form.apply(intent);
        let page = FormPage::new(chrome, &stored, form, FormErrors::default());
        return Ok(render::respond(StatusCode::OK, htmx, &page));
    }
    form.drop_empty_rows();
    match save(state, &caller, &stored, &form, at).await {
        Ok(()) => Ok(go(htmx, &format!("/policies/{id}"))),
        Err(Refusal::Page(e)) => Ok(e.in_layout(chrome, htmx)),
        Err(Refusal::Form(errors)) => {
            let page = FormPage::new(chrome, &stored, form, errors);
            Ok(render::respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                htmx,
                &page,
            ))
        }
    }
}

/// The revision a form or button was sent at.
fn revision(text: &str) -> Result<u32, WebError> {
    text.trim().parse().map_err(|_| {
        WebError::BadRequest("the form's `revision` is not a revision: reload the page".into())
    })
}

/// Parses the rule `form` describes and stores it: appended (`at` is `None`) or in place of
/// rule `at`, at the form's revision.
async fn save(
    state: &AppState,
    caller: &Caller,
    stored: &StoredPolicy,
    form: &RuleForm,
    at: Option<usize>,
) -> Result<(), Refusal> {
    let revision = revision(&form.revision).map_err(Refusal::Page)?;
    let json = form.to_json().map_err(Refusal::Form)?;
    let rule = Rule::parse(&json).map_err(|e| Refusal::Form(errors::at(&e.path, e.message)))?;
    let change = caller.change(state.clock.now());
    let id = stored.policy.id.to_string();
    let rules = &stored.policy.definition.rules;
    let written = match at {
        None => {
            // The store refuses a duplicate as a conflict of the policy; the form says it
            // beside the id.
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(Refusal::Form(FormErrors::one(
                    "id",
                    format!("rule id `{}` is already used in this policy", rule.id),
                )));
            }
            state
                .store
                .add_rule(&change, &id, rule, Some(revision))
                .await
        }
        Some(at) => {
            let mut rules = rules.clone();
            if let Some(slot) = rules.get_mut(at) {
                *slot = rule;
            }
            check_unique_ids(&rules, "rules")
                .map_err(|e| Refusal::Form(errors::at(&e.path, e.message)))?;
            let edit = PolicyEdit {
                rules: Some(rules),
                ..PolicyEdit::default()
            };
            state
                .store
                .update_policy(&change, &id, edit, Some(revision))
                .await
        }
    };
    // A stale revision is told above the form by `FormErrors::refusal`, as every editing
    // form tells it.
    written.map(drop).map_err(|e| match e {
        StoreError::Invalid { path, message } => Refusal::Form(errors::at(&path, message)),
        StoreError::NotFound { .. } => Refusal::Page(WebError::NotFound),
        other => FormErrors::refusal(other, &[], None),
    })
}

/// `GET /policies/{id}/rules/{rule_id}/remove`: what goes, and the button.
pub(crate) async fn remove_confirm(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((id, rule_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", format!("/policies/{id}")).await?;
    let found = writable_draft(&state, &visitor, &id)
        .await
        .and_then(|(_, stored)| position(&stored, &rule_id).map(|at| (stored, at)));
    let (stored, at) = match found {
        Ok(found) => found,
        Err(e) => return Ok(e.in_layout(chrome, htmx)),
    };
    let page = RemovePage {
        chrome,
        row: Row::of(&stored),
        rule: RuleLine::of(&stored.policy.definition.rules[at]),
        revision: stored.policy.revision,
    };
    Ok(render::respond(StatusCode::OK, htmx, &page))
}

/// The form of a removal: its token (checked by the CSRF guard) and the revision it was shown
/// at.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveForm {
    #[serde(default, rename = "csrf")]
    _csrf: Option<String>,
    #[serde(default)]
    revision: String,
}

/// `POST /policies/{id}/rules/{rule_id}/remove`: removes the rule and opens the policy.
pub(crate) async fn remove(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((id, rule_id)): Path<(String, String)>,
    form: Result<Form<RemoveForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", format!("/policies/{id}")).await?;
    let done = async {
        let (caller, stored) = writable_draft(&state, &visitor, &id).await?;
        position(&stored, &rule_id)?;
        let Ok(Form(form)) = form else {
            return Err(WebError::BadRequest(
                "the form takes `revision` only".into(),
            ));
        };
        let revision = revision(&form.revision)?;
        let rule_id = RuleId::new(rule_id.as_str()).map_err(|_| WebError::NotFound)?;
        let change = caller.change(state.clock.now());
        state
            .store
            .remove_rule(&change, &id, &rule_id, Some(revision))
            .await?;
        Ok(())
    };
    match done.await {
        Ok(()) => Ok(go(htmx, &format!("/policies/{id}"))),
        Err(e) => Ok(e.in_layout(chrome, htmx)),
    }
}

/// The form of a move: its token, the revision, and `up` or `down`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveForm {
    #[serde(default, rename = "csrf")]
    _csrf: Option<String>,
    #[serde(default)]
    revision: String,
    #[serde(default)]
    direction: String,
}

/// `POST /policies/{id}/rules/{rule_id}/move`: moves the rule one place up or down (the order
/// is the policy's; `update_policy` writes the reordered list).
pub(crate) async fn move_rule(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((id, rule_id)): Path<(String, String)>,
    form: Result<Form<MoveForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let htmx = is_htmx(&headers);
    let chrome = Chrome::load(&state, &visitor, "policies", format!("/policies/{id}")).await?;
    let done = async {
        let (caller, stored) = writable_draft(&state, &visitor, &id).await?;
        let at = position(&stored, &rule_id)?;
        let Ok(Form(form)) = form else {
            return Err(WebError::BadRequest(
                "the form takes `revision` and `direction` only".into(),
            ));
        };
        let revision = revision(&form.revision)?;
        let mut rules = stored.policy.definition.rules.clone();
        let to = match form.direction.as_str() {
            "up" => at.checked_sub(1),
            "down" => Some(at + 1).filter(|to| *to < rules.len()),
            _ => {
                return Err(WebError::BadRequest("direction: `up` or `down`".to_owned()));
            }
        };
        let Some(to) = to else {
            return Err(WebError::BadRequest(format!(
                "rule {rule_id} is already {}",
                if at == 0 { "first" } else { "last" }
            )));
        };
        rules.swap(at, to);
        let edit = PolicyEdit {
            rules: Some(rules),
            ..PolicyEdit::default()
        };
        let change = caller.change(state.clock.now());
        state
            .store
            .update_policy(&change, &id, edit, Some(revision))
            .await?;
        Ok(())
    };
    match done.await {
        Ok(()) => Ok(go(htmx, &format!("/policies/{id}"))),
        Err(e) => Ok(e.in_layout(chrome, htmx)),
    }
}
