//! A rule's form ⇄ the rule's JSON, as `POST /v1/policies/{id}/rules` takes it.
//!
//! The form holds what was typed, as text, so a refused form shows again exactly as sent. It is
//! turned into the JSON the API takes and parsed by core's own `Rule::parse`: the page accepts
//! and refuses what the API does. How text is read:
//!
//! - a list box (tools, resources, labels, channels, phrases, regexes, match tools): one entry a
//!   line, each line trimmed, blank lines skipped; an optional list left empty is omitted;
//! - a number box (`limit`, `max_chars`): a JSON number when it reads as one, else the text (so
//!   the parser names the field and what it expected); `max_usd` is sent as text (decimal);
//! - checkboxes (operations, kinds, PII detectors): the checked names; none checked omits the
//!   field (its default: every operation, every kind, no PII check);
//! - a condition's value (see [`read_value`]): none for an empty box; for the string ops the
//!   text as typed (a JSON-quoted string is unquoted: `""`, `" x"`); for `in` / `not_in` a JSON
//!   array, or comma-separated items read one by one; for the others a JSON literal when the
//!   text is one (`3`, `true`, `null`, `"42"`), else the text as a string;
//! - `json_schema`: JSON text.

use std::collections::BTreeMap;

use charter_core::RuleType;
use charter_core::rule::{MAX_CONDITIONS, MAX_WINDOWS, Op};
use serde_json::{Map, Value};

use crate::web::forms::FormErrors;

/// A condition of a tool rule, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConditionRow {
    /// The argument path.
    pub(crate) arg: String,
    /// The op's name.
    pub(crate) op: String,
    /// The value, as typed (see [`read_value`]).
    pub(crate) value: String,
}

/// A window of a time rule, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WindowRow {
    /// The checked days (`mon`…).
    pub(crate) days: Vec<String>,
    /// The start, `HH:MM`.
    pub(crate) from: String,
    /// The end, `HH:MM`.
    pub(crate) to: String,
}

/// Which list of windows of a time rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Windows {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
}

impl Windows {
    /// The field's name in JSON and in the form.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Windows::Allow => "allow",
            Windows::Deny => "deny",
        }
    }
}

/// What the button that sent the form asks for: saving, or another row shown or removed (the
/// rows are edited by the server, so they work without script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Parse and store the rule.
    Save,
    /// One more empty condition.
    AddCondition,
    /// Without condition `n`.
    RemoveCondition(usize),
    /// One more empty window in a list.
    AddWindow(Windows),
    /// Without window `n` of a list.
    RemoveWindow(Windows, usize),
}

/// A rule's form, as typed: every field of every type (only the type's own are accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleForm {
    /// The rule's type (a hidden field).
    pub(crate) rule_type: RuleType,
    /// The policy's revision when the form was opened (a hidden field): the `If-Match`.
    pub(crate) revision: String,
    /// The stored id of the rule being edited (from the URL, never from the form); `None`: a
    /// new rule.
    pub(crate) editing: Option<String>,
    pub(crate) id: String,
    pub(crate) description: String,
    /// `deny` or `allow` (tool, `data_access`).
    pub(crate) effect: String,
    pub(crate) tools: String,
    pub(crate) when: Vec<ConditionRow>,
    pub(crate) resources: String,
    pub(crate) operations: Vec<String>,
    pub(crate) labels: String,
    pub(crate) limit: String,
    pub(crate) window: String,
    /// `run`, `agent` or `tenant` (rate, cost).
    pub(crate) per: String,
    pub(crate) match_kinds: Vec<String>,
    pub(crate) match_tools: String,
    pub(crate) max_usd: String,
    pub(crate) period: String,
    /// An IANA zone (cost, time); empty: UTC.
    pub(crate) timezone: String,
    pub(crate) max_run_duration: String,
    pub(crate) allow: Vec<WindowRow>,
    pub(crate) deny: Vec<WindowRow>,
    pub(crate) channels: String,
    pub(crate) deny_phrases: String,
    pub(crate) deny_regex: String,
    pub(crate) pii: Vec<String>,
    pub(crate) max_chars: String,
    pub(crate) json_schema: String,
}

/// The fields every rule's form has, besides its type's own.
const COMMON: [&str; 4] = ["csrf", "type", "revision", "id"];

/// The plain fields (no rows) of each type's form.
fn own_fields(rule_type: RuleType) -> &'static [&'static str] {
    match rule_type {
        RuleType::Tool => &["effect", "tools", "add_condition", "remove_condition"],
        RuleType::DataAccess => &["effect", "resources", "operations", "labels"],
        RuleType::Rate => &["limit", "window", "per", "match_kinds", "match_tools"],
        RuleType::Cost => &["max_usd", "period", "per", "timezone"],
        RuleType::Time => &[
            "max_run_duration",
            "timezone",
            "add_allow",
            "remove_allow",
            "add_deny",
            "remove_deny",
        ],
        RuleType::Output => &[
            "channels",
            "deny_phrases",
            "deny_regex",
            "pii",
            "max_chars",
            "json_schema",
        ],
    }
}

/// `list[n].field` → `(n, field)` when `name` is a row of `list`.
fn row_of<'a>(name: &'a str, list: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_prefix(list)?.strip_prefix('[')?;
    let (index, field) = rest.split_once("].")?;
    Some((index, field))
}

/// A row's index, below `max` (the rule's own limit, so a form cannot ask for a million rows).
fn index(text: &str, max: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n < max => Ok(n),
        _ => Err(format!(
            "a form row's index is a number below {max}, not `{text}`"
        )),
    }
}

impl RuleForm {
    /// An empty form of `rule_type` at the policy's `revision`, with `id` proposed.
    pub(crate) fn new(rule_type: RuleType, revision: u32, id: String) -> RuleForm {
        RuleForm {
            rule_type,
            revision: revision.to_string(),
            editing: None,
            id,
            description: String::new(),
            effect: "deny".to_owned(),
            tools: String::new(),
            when: Vec::new(),
            resources: String::new(),
            operations: Vec::new(),
            labels: String::new(),
            limit: String::new(),
            window: String::new(),
            per: "run".to_owned(),
            match_kinds: Vec::new(),
            match_tools: String::new(),
            max_usd: String::new(),
            period: "run".to_owned(),
            timezone: String::new(),
            max_run_duration: String::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            channels: String::new(),
            deny_phrases: String::new(),
            deny_regex: String::new(),
            pii: Vec::new(),
            max_chars: String::new(),
            json_schema: String::new(),
        }
    }

    /// Reads a submitted form (its decoded `name=value` pairs, in order): the form and what its
    /// button asks. A field the type's form does not have is refused, as the API refuses
    /// unknown fields.
    pub(crate) fn read(pairs: &[(String, String)]) -> Result<(RuleForm, Intent), String> {
        let type_name = pairs
            .iter()
            .find(|(name, _)| name == "type")
            .map(|(_, value)| value.as_str())
            .ok_or("the form has no rule `type`")?;
        let rule_type = RuleType::from_name(type_name)
            .ok_or_else(|| format!("`{type_name}` is not a rule type"))?;
        let mut form = RuleForm::new(rule_type, 0, String::new());
        form.effect.clear();
        form.per.clear();
        form.period.clear();
        let mut intent = Intent::Save;
        let mut when: BTreeMap<usize, ConditionRow> = BTreeMap::new();
        let mut allow: BTreeMap<usize, WindowRow> = BTreeMap::new();
        let mut deny: BTreeMap<usize, WindowRow> = BTreeMap::new();
        let own = own_fields(rule_type);
        for (name, value) in pairs {
            let name = name.as_str();
            let value = value.clone();
            if rule_type == RuleType::Tool
                && let Some((n, field)) = row_of(name, "when")
            {
                let row = when.entry(index(n, MAX_CONDITIONS)?).or_default();
                match field {
                    "arg" => row.arg = value,
                    "op" => row.op = value,
                    "value" => row.value = value,
                    _ => return Err(format!("the form has no field `{name}`")),
                }
                continue;
            }
            if rule_type == RuleType::Time {
                let rows = row_of(name, "allow")
                    .map(|r| (r, &mut allow))
                    .or_else(|| row_of(name, "deny").map(|r| (r, &mut deny)));
                if let Some(((n, field), rows)) = rows {
                    let row = rows.entry(index(n, MAX_WINDOWS)?).or_default();
                    match field {
                        "days" => row.days.push(value),
                        "from" => row.from = value,
                        "to" => row.to = value,
                        _ => return Err(format!("the form has no field `{name}`")),
                    }
                    continue;
                }
            }
            if !COMMON.contains(&name) && name != "description" && !own.contains(&name) {
                return Err(format!(
                    "a {} rule's form has no field `{name}`",
                    rule_type.as_str()
                ));
            }
            match name {
                "revision" => form.revision = value,
                "id" => form.id = value,
                "description" => form.description = value,
                "effect" => form.effect = value,
                "tools" => form.tools = value,
                "resources" => form.resources = value,
                "operations" => form.operations.push(value),
                "labels" => form.labels = value,
                "limit" => form.limit = value,
                "window" => form.window = value,
                "per" => form.per = value,
                "match_kinds" => form.match_kinds.push(value),
                "match_tools" => form.match_tools = value,
                "max_usd" => form.max_usd = value,
                "period" => form.period = value,
                "timezone" => form.timezone = value,
                "max_run_duration" => form.max_run_duration = value,
                "channels" => form.channels = value,
                "deny_phrases" => form.deny_phrases = value,
                "deny_regex" => form.deny_regex = value,
                "pii" => form.pii.push(value),
                "max_chars" => form.max_chars = value,
                "json_schema" => form.json_schema = value,
                "add_condition" => intent = Intent::AddCondition,
                "remove_condition" => {
                    intent = Intent::RemoveCondition(index(&value, MAX_CONDITIONS)?);
                }
                "add_allow" => intent = Intent::AddWindow(Windows::Allow),
                "add_deny" => intent = Intent::AddWindow(Windows::Deny),
                "remove_allow" => {
                    intent = Intent::RemoveWindow(Windows::Allow, index(&value, MAX_WINDOWS)?);
                }
                "remove_deny" => {
                    intent = Intent::RemoveWindow(Windows::Deny, index(&value, MAX_WINDOWS)?);
                }
                // `csrf` (checked by the guard) and `type` (read above).
                _ => {}
            }
        }
        form.when = when.into_values().collect();
        form.allow = allow.into_values().collect();
        form.deny = deny.into_values().collect();
        Ok((form, intent))
    }

    /// Shows one more row or one fewer, as the form's button asked.
    pub(crate) fn apply(&mut self, intent: Intent) {
        match intent {
            Intent::Save => {}
            Intent::AddCondition => {
                if self.when.len() < MAX_CONDITIONS {
                    self.when.push(ConditionRow {
                        op: Op::Eq.as_str().to_owned(),
                        ..ConditionRow::default()
                    });
                }
            }
            Intent::RemoveCondition(n) => {
                if n < self.when.len() {
                    self.when.remove(n);
                }
            }
            Intent::AddWindow(list) => {
                let rows = self.windows_mut(list);
                if rows.len() < MAX_WINDOWS {
                    rows.push(WindowRow::default());
                }
            }
            Intent::RemoveWindow(list, n) => {
                let rows = self.windows_mut(list);
                if n < rows.len() {
                    rows.remove(n);
                }
            }
        }
    }

    fn windows_mut(&mut self, list: Windows) -> &mut Vec<WindowRow> {
        match list {
            Windows::Allow => &mut self.allow,
            Windows::Deny => &mut self.deny,
        }
    }

    /// Drops the rows left wholly empty (an added row never filled in is no condition), so the
    /// rows shown again after a refusal are the rows the parser's paths count.
    pub(crate) fn drop_empty_rows(&mut self) {
        self.when
            .retain(|c| !(c.arg.trim().is_empty() && c.value.trim().is_empty()));
        for rows in [&mut self.allow, &mut self.deny] {
            rows.retain(|w| {
                !(w.days.is_empty() && w.from.trim().is_empty() && w.to.trim().is_empty())
            });
        }
    }

    /// The rule as the JSON the API takes, or what the form itself cannot read (a schema or a
    /// value list that is not JSON), beside its field.
    pub(crate) fn to_json(&self) -> Result<Value, FormErrors> {
        let mut rule = Map::new();
        rule.insert("type".into(), self.rule_type.as_str().into());
        rule.insert("id".into(), self.id.trim().into());
        optional_text(&mut rule, "description", &self.description);
        match self.rule_type {
            RuleType::Tool => {
                rule.insert("effect".into(), self.effect.trim().into());
                rule.insert("tools".into(), lines(&self.tools));
                if !self.when.is_empty() {
                    let mut when = Vec::new();
                    for (i, row) in self.when.iter().enumerate() {
                        let mut condition = Map::new();
                        condition.insert("arg".into(), row.arg.trim().into());
                        condition.insert("op".into(), row.op.trim().into());
                        if let Some(value) = read_value(row.op.trim(), &row.value)
                            .map_err(|m| FormErrors::one(format!("when[{i}].value"), m))?
                        {
                            condition.insert("value".into(), value);
                        }
                        when.push(Value::Object(condition));
                    }
                    rule.insert("when".into(), Value::Array(when));
                }
            }
            RuleType::DataAccess => {
                rule.insert("effect".into(), self.effect.trim().into());
                rule.insert("resources".into(), lines(&self.resources));
                optional_names(&mut rule, "operations", &self.operations);
                optional_lines(&mut rule, "labels", &self.labels);
            }
            RuleType::Rate => {
                optional_number(&mut rule, "limit", &self.limit);
                optional_text(&mut rule, "window", &self.window);
                optional_text(&mut rule, "per", &self.per);
                let mut matcher = Map::new();
                optional_names(&mut matcher, "kinds", &self.match_kinds);
                optional_lines(&mut matcher, "tools", &self.match_tools);
                if !matcher.is_empty() {
                    rule.insert("match".into(), Value::Object(matcher));
                }
            }
            RuleType::Cost => {
                optional_text(&mut rule, "max_usd", &self.max_usd);
                optional_text(&mut rule, "period", &self.period);
                optional_text(&mut rule, "per", &self.per);
                optional_text(&mut rule, "timezone", &self.timezone);
            }
            RuleType::Time => {
                optional_text(&mut rule, "max_run_duration", &self.max_run_duration);
                for (name, rows) in [("allow", &self.allow), ("deny", &self.deny)] {
                    if !rows.is_empty() {
                        let windows = rows.iter().map(window_json).collect();
                        rule.insert(name.into(), Value::Array(windows));
                    }
                }
                optional_text(&mut rule, "timezone", &self.timezone);
            }
            RuleType::Output => {
                optional_lines(&mut rule, "channels", &self.channels);
                optional_lines(&mut rule, "deny_phrases", &self.deny_phrases);
                optional_lines(&mut rule, "deny_regex", &self.deny_regex);
                optional_names(&mut rule, "pii", &self.pii);
                optional_number(&mut rule, "max_chars", &self.max_chars);
                let schema = self.json_schema.trim();
                if !schema.is_empty() {
                    let schema: Value = serde_json::from_str(schema).map_err(|e| {
                        FormErrors::one(
                            "json_schema",
                            format!("this is not JSON: {}", charter_core::parse::json_error(&e)),
                        )
                    })?;
                    rule.insert("json_schema".into(), schema);
                }
            }
        }
        Ok(Value::Object(rule))
    }

    /// The form of a stored rule (its JSON, as the API answers it), to edit it.
    pub(crate) fn of(rule: &Value, rule_type: RuleType, revision: u32) -> RuleForm {
        let mut form = RuleForm::new(rule_type, revision, text(rule, "id"));
        form.description = text(rule, "description");
        form.effect = text(rule, "effect");
        form.tools = joined(rule, "tools");
        form.when = list(rule, "when")
            .iter()
            .map(|c| {
                let op = text(c, "op");
                ConditionRow {
                    arg: text(c, "arg"),
                    value: c
                        .get("value")
                        .map(|v| value_text(&op, v))
                        .unwrap_or_default(),
                    op,
                }
            })
            .collect();
        form.resources = joined(rule, "resources");
        form.operations = names(rule, "operations");
        form.labels = joined(rule, "labels");
        form.limit = text(rule, "limit");
        form.window = text(rule, "window");
        form.per = text(rule, "per");
        if let Some(matcher) = rule.get("match") {
            form.match_kinds = names(matcher, "kinds");
            form.match_tools = joined(matcher, "tools");
        }
        form.max_usd = text(rule, "max_usd");
        form.period = text(rule, "period");
        form.timezone = text(rule, "timezone");
        form.max_run_duration = text(rule, "max_run_duration");
        let windows = |name: &str| {
            list(rule, name)
                .iter()
                .map(|w| WindowRow {
                    days: names(w, "days"),
                    from: text(w, "from"),
                    to: text(w, "to"),
                })
                .collect()
        };
        form.allow = windows("allow");
        form.deny = windows("deny");
        form.channels = joined(rule, "channels");
        form.deny_phrases = joined(rule, "deny_phrases");
        form.deny_regex = joined(rule, "deny_regex");
        form.pii = names(rule, "pii");
        form.max_chars = text(rule, "max_chars");
        form.json_schema = rule
            .get("json_schema")
            .and_then(|s| serde_json::to_string_pretty(s).ok())
            .unwrap_or_default();
        form
    }
}

/// A window's JSON; an empty `from` or `to` is left out, so the parser names it as missing.
fn window_json(row: &WindowRow) -> Value {
    let mut window = Map::new();
    window.insert(
        "days".into(),
        Value::Array(row.days.iter().map(|d| d.as_str().into()).collect()),
    );
    optional_text(&mut window, "from", &row.from);
    optional_text(&mut window, "to", &row.to);
    Value::Object(window)
}

/// `text` trimmed at `name`, unless empty.
fn optional_text(object: &mut Map<String, Value>, name: &str, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        object.insert(name.into(), text.into());
    }
}

/// A number box at `name`, unless empty: a JSON number when it reads as one, else the text,
/// which the parser refuses naming the field and the type it expected.
fn optional_number(object: &mut Map<String, Value>, name: &str, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let value = match serde_json::from_str::<Value>(text) {
        Ok(number @ Value::Number(_)) => number,
        _ => text.into(),
    };
    object.insert(name.into(), value);
}

/// One entry a line: trimmed, blank lines skipped.
fn lines(text: &str) -> Value {
    Value::Array(
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(Value::from)
            .collect(),
    )
}

/// A list box at `name`, unless it has no entries.
fn optional_lines(object: &mut Map<String, Value>, name: &str, text: &str) {
    if let Value::Array(entries) = lines(text)
        && !entries.is_empty()
    {
        object.insert(name.into(), Value::Array(entries));
    }
}

/// Checked boxes at `name`, unless none is checked.
fn optional_names(object: &mut Map<String, Value>, name: &str, checked: &[String]) {
    if !checked.is_empty() {
        let names = checked.iter().map(|n| Value::from(n.as_str())).collect();
        object.insert(name.into(), Value::Array(names));
    }
}

/// Whether `op` compares with a string (its value box is read as typed).
fn string_op(op: &str) -> bool {
    [
        Op::Glob,
        Op::NotGlob,
        Op::Regex,
        Op::NotRegex,
        Op::Contains,
        Op::EndsWith,
        Op::NotEndsWith,
    ]
    .iter()
    .any(|o| o.as_str() == op)
}

/// Whether `op` compares with a list.
fn list_op(op: &str) -> bool {
    op == Op::In.as_str() || op == Op::NotIn.as_str()
}

/// A JSON literal when `text` is one, else the text as a string.
fn literal(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
}

/// A condition's value box read for `op`: `None` when empty (`exists` and `not_exists` take
/// none; the others are then refused by the parser as missing). The string ops take the text
/// as typed, or a JSON string unquoted; `in` and `not_in` a JSON array, or comma-separated
/// items each read as a literal; the others a JSON literal when the text is one, else the text.
pub(crate) fn read_value(op: &str, text: &str) -> Result<Option<Value>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    if string_op(op) {
        return Ok(Some(match serde_json::from_str::<Value>(text.trim()) {
            Ok(Value::String(s)) if text.trim().starts_with('"') => Value::String(s),
            _ => Value::from(text),
        }));
    }
    if list_op(op) {
        let trimmed = text.trim();
        if trimmed.starts_with('[') {
            return serde_json::from_str::<Value>(trimmed)
                .map(Some)
                .map_err(|e| format!("this is not a JSON array: {e}"));
        }
        let items = trimmed
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(literal)
            .collect();
        return Ok(Some(Value::Array(items)));
    }
    Ok(Some(literal(text.trim())))
}

/// How a stored condition value is shown in its box: plainly (`@acme.com`, `a, b`) when that
/// reads back as the same value, else as JSON.
pub(crate) fn value_text(op: &str, value: &Value) -> String {
    let plain = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let candidate = match value {
        Value::Array(items) if list_op(op) => {
            items.iter().map(plain).collect::<Vec<_>>().join(", ")
        }
        other => plain(other),
    };
    if read_value(op, &candidate).ok().flatten().as_ref() == Some(value) {
        candidate
    } else {
        value.to_string()
    }
}

/// A scalar field of a stored rule as text (`""` when absent).
fn text(value: &Value, name: &str) -> String {
    match value.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A list field of a stored rule.
fn list<'v>(value: &'v Value, name: &str) -> &'v [Value] {
    value
        .get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A list of names of a stored rule.
fn names(value: &Value, name: &str) -> Vec<String> {
    list(value, name)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A list of a stored rule, one entry a line.
fn joined(value: &Value, name: &str) -> String {
    names(value, name).join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use charter_core::Rule;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_are_read_as_documented() {
        assert_eq!(read_value("exists", "").unwrap(), None);
        assert_eq!(
            read_value("ends_with", "@acme.com").unwrap(),
            Some(json!("@acme.com"))
        );
        assert_eq!(read_value("contains", "42").unwrap(), Some(json!("42")));
        assert_eq!(read_value("contains", "\" x\"").unwrap(), Some(json!(" x")));
        assert_eq!(read_value("gt", "3").unwrap(), Some(json!(3)));
        assert_eq!(read_value("eq", "true").unwrap(), Some(json!(true)));
        assert_eq!(read_value("eq", "\"42\"").unwrap(), Some(json!("42")));
        assert_eq!(read_value("eq", "hello").unwrap(), Some(json!("hello")));
        assert_eq!(
            read_value("in", "a, 2, b").unwrap(),
            Some(json!(["a", 2, "b"]))
        );
        assert_eq!(read_value("in", "[\"a,b\"]").unwrap(), Some(json!(["a,b"])));
        assert!(read_value("in", "[1,").is_err());
        for (op, value) in [
            ("in", json!(["a", 2])),
            ("in", json!(["a,b", " c"])),
            ("eq", json!("42")),
            ("eq", json!("x")),
            ("eq", json!(null)),
            ("contains", json!("")),
            ("contains", json!(" x ")),
            ("regex", json!("^\"q\"$")),
        ] {
            let shown = value_text(op, &value);
            assert_eq!(read_value(op, &shown).unwrap(), Some(value), "{op} {shown}");
        }
    }

    #[test]
    fn rows_and_buttons_are_read_and_unknown_fields_refused() {
        let (form, intent) = RuleForm::read(&pairs(&[
            ("csrf", "t"),
            ("type", "tool"),
            ("revision", "3"),
            ("id", "r1"),
            ("effect", "deny"),
            ("tools", "a\n\n b \n"),
            ("when[1].arg", "cc"),
            ("when[1].op", "exists"),
            ("when[0].arg", "to"),
            ("when[0].op", "in"),
            ("when[0].value", "a, b"),
            ("add_condition", ""),
        ]))
        .unwrap();
        assert_eq!(intent, Intent::AddCondition);
        assert_eq!(form.when.len(), 2);
        assert_eq!(form.when[0].arg, "to");
        assert_eq!(
            form.to_json().unwrap(),
            json!({"type": "tool", "id": "r1", "effect": "deny", "tools": ["a", "b"],
                   "when": [{"arg": "to", "op": "in", "value": ["a", "b"]},
                            {"arg": "cc", "op": "exists"}]})
        );
        assert!(RuleForm::read(&pairs(&[("type", "tool"), ("limit", "3")])).is_err());
        assert!(RuleForm::read(&pairs(&[("type", "tool"), ("when[99].arg", "x")])).is_err());
        assert!(RuleForm::read(&pairs(&[("type", "galaxy")])).is_err());
        assert!(RuleForm::read(&pairs(&[("id", "r1")])).is_err());
    }

    #[test]
    fn every_type_survives_the_round_trip_through_its_form() {
        for rule in [
            json!({"id": "r1", "type": "tool", "effect": "allow", "tools": ["a.*", "b"],
                   "description": "d",
                   "when": [{"arg": "to", "op": "not_in", "value": ["x", 1]},
                            {"arg": "n", "op": "gte", "value": 2.5},
                            {"arg": "s", "op": "eq", "value": "7"}]}),
            json!({"id": "r2", "type": "data_access", "effect": "deny",
                   "resources": ["files/**"], "operations": ["write", "delete"],
                   "labels": ["pii"]}),
            json!({"id": "r3", "type": "rate", "limit": 5, "window": "1h", "per": "agent",
                   "match": {"kinds": ["tool_call"], "tools": ["*.send"]}}),
            json!({"id": "r4", "type": "cost", "max_usd": "12.50", "period": "day",
                   "per": "tenant", "timezone": "Europe/Paris"}),
            json!({"id": "r5", "type": "time", "max_run_duration": "30m",
                   "allow": [{"days": ["mon", "fri"], "from": "09:00", "to": "17:00"}],
                   "deny": [{"days": ["sat"], "from": "22:00", "to": "06:00"}],
                   "timezone": "UTC"}),
            json!({"id": "r6", "type": "output", "channels": ["email"],
                   "deny_phrases": ["secret"], "deny_regex": ["(?i)key"],
                   "pii": ["email", "iban"], "max_chars": 100,
                   "json_schema": {"type": "object"}}),
        ] {
            let parsed = Rule::parse(&rule).unwrap();
            let stored = serde_json::to_value(&parsed).unwrap();
            let form = RuleForm::of(&stored, parsed.rule_type(), 1);
            let again = Rule::parse(&form.to_json().unwrap()).unwrap();
            assert_eq!(again, parsed, "{rule}");
        }
    }
}
