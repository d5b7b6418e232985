//! A rule as a sentence a person reads: "block `gmail.send_email` when `args.to` does not end
//! with `@acme.com`". Written once for every edge that shows rules (the CLI's `policy show`, the
//! workspace): a [`Sentence`] is words and code spans, so each edge renders the spans its own
//! way (backticks in a terminal, `<code>` on a page) without parsing text back.
//!
//! The rule types are destructured whole, so a new field fails to compile here until it is
//! described. Sentences see the parsed rule, with the defaults the engine applies (`per: run`,
//! `timezone: UTC`).

use std::fmt;

use serde_json::Value;

use crate::calendar::{Period, Window};
use crate::rule::{
    Condition, CostRule, DataAccessRule, Effect, Op, OutputRule, RateMatch, RateRule, RuleKind,
    TimeRule, ToolRule,
};

/// A part of a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Words.
    Text(String),
    /// A name or value as written in the policy (a tool glob, an argument, a literal).
    Code(String),
}

/// A rule as words and code spans. `Display` writes code spans between backticks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sentence(Vec<Piece>);

impl Sentence {
    /// What `kind` does, as a sentence.
    #[must_use]
    pub fn of(kind: &RuleKind) -> Sentence {
        match kind {
            RuleKind::Tool(rule) => tool(rule),
            RuleKind::DataAccess(rule) => data_access(rule),
            RuleKind::Rate(rule) => rate(rule),
            RuleKind::Cost(rule) => cost(rule),
            RuleKind::Time(rule) => time(rule),
            RuleKind::Output(rule) => output(rule),
        }
    }

    /// The sentence's parts, in order (adjacent words joined).
    #[must_use]
    pub fn pieces(&self) -> &[Piece] {
        &self.0
    }

    fn text(mut self, text: &str) -> Sentence {
        if let Some(Piece::Text(last)) = self.0.last_mut() {
            last.push_str(text);
        } else if !text.is_empty() {
            self.0.push(Piece::Text(text.to_owned()));
        }
        self
    }

    fn code(mut self, code: &str) -> Sentence {
        self.0.push(Piece::Code(code.to_owned()));
        self
    }

    fn then(self, other: Sentence) -> Sentence {
        other.0.into_iter().fold(self, |s, piece| match piece {
            Piece::Text(text) => s.text(&text),
            Piece::Code(code) => s.code(&code),
        })
    }
}

impl fmt::Display for Sentence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => f.write_str(text)?,
                Piece::Code(code) => write!(f, "`{code}`")?,
            }
        }
        Ok(())
    }
}

fn words(text: &str) -> Sentence {
    Sentence::default().text(text)
}

fn code(text: &str) -> Sentence {
    Sentence::default().code(text)
}

/// `a`, `a or b`, `a, b or c`.
fn either(items: impl IntoIterator<Item = Sentence>) -> Sentence {
    let items: Vec<Sentence> = items.into_iter().collect();
    let last = items.len().saturating_sub(1);
    items
        .into_iter()
        .enumerate()
        .fold(Sentence::default(), |out, (i, item)| {
            let out = match i {
                0 => out,
                i if i == last => out.text(" or "),
                _ => out.text(", "),
            };
            out.then(item)
        })
}

/// `item and item and ...`.
fn all(items: impl IntoIterator<Item = Sentence>, separator: &str) -> Sentence {
    items
        .into_iter()
        .enumerate()
        .fold(Sentence::default(), |out, (i, item)| {
            if i == 0 { out } else { out.text(separator) }.then(item)
        })
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn tool(rule: &ToolRule) -> Sentence {
    let ToolRule {
        effect,
        tools,
        when,
    } = rule;
    let tools = either(tools.iter().map(|t| code(t.as_str())));
    // Not `a, b and c`: a condition's own values may be listed with commas.
    let conditions = all(when.iter().map(condition), " and ");
    match (effect, when.is_empty()) {
        (Effect::Deny, true) => words("block ").then(tools),
        (Effect::Deny, false) => words("block ").then(tools).text(" when ").then(conditions),
        (Effect::Allow, true) => words("allow only ").then(tools),
        (Effect::Allow, false) => words("allow only ")
            .then(tools)
            .text(", and only when ")
            .then(conditions),
    }
}

/// A value of a condition: strings as written, anything else as JSON.
fn literal(value: &Value) -> Sentence {
    match value {
        Value::String(text) => code(text),
        other => code(&other.to_string()),
    }
}

fn condition(condition: &Condition) -> Sentence {
    let Condition { arg, op, value } = condition;
    let value = value.as_ref().unwrap_or(&Value::Null);
    let values = || match value {
        Value::Array(items) => either(items.iter().map(literal)),
        other => literal(other),
    };
    let test = match op {
        Op::Eq => words("is ").then(literal(value)),
        Op::Ne => words("is not ").then(literal(value)),
        Op::In => words("is one of ").then(values()),
        Op::NotIn => words("is none of ").then(values()),
        Op::Glob => words("matches ").then(literal(value)),
        Op::NotGlob => words("does not match ").then(literal(value)),
        Op::Regex => words("matches the regex ").then(literal(value)),
        Op::NotRegex => words("does not match the regex ").then(literal(value)),
        Op::Lt => words("is less than ").then(literal(value)),
        Op::Lte => words("is at most ").then(literal(value)),
        Op::Gt => words("is more than ").then(literal(value)),
        Op::Gte => words("is at least ").then(literal(value)),
        Op::Exists => words("is present"),
        Op::NotExists => words("is absent"),
        Op::Contains => words("contains ").then(literal(value)),
        Op::EndsWith => words("ends with ").then(literal(value)),
        Op::NotEndsWith => words("does not end with ").then(literal(value)),
    };
    code(&format!("args.{arg}")).text(" ").then(test)
}

fn data_access(rule: &DataAccessRule) -> Sentence {
    let DataAccessRule {
        effect,
        resources,
        operations,
        labels,
    } = rule;
    let resources = either(resources.iter().map(|r| code(r.as_str())));
    let operations = operations
        .as_ref()
        .map(|ops| either(ops.iter().map(|o| words(o.as_str()))));
    let labels = labels
        .as_ref()
        .map(|labels| either(labels.iter().map(|l| code(l.as_str()))));
    match effect {
        Effect::Deny => {
            let what = match operations {
                None => words("any access to ").then(resources),
                Some(ops) => ops.text(" of ").then(resources),
            };
            let block = words("block ").then(what);
            match labels {
                None => block,
                Some(labels) => block.text(" labelled ").then(labels),
            }
        }
        Effect::Allow => {
            let what = match operations {
                None => words("access only to ").then(resources),
                Some(ops) => ops.text(" only of ").then(resources),
            };
            let allow = words("allow ").then(what);
            match labels {
                None => allow,
                Some(labels) => allow.text(", with no label but ").then(labels),
            }
        }
    }
}

fn rate(rule: &RateRule) -> Sentence {
    let RateRule {
        limit,
        window,
        per,
        matcher,
    } = rule;
    let number = |one: &str, many: &str| if *limit == 1 { one } else { many }.to_owned();
    let (kinds, tools) = match matcher {
        None => (None, None),
        Some(RateMatch { kinds, tools }) => (
            kinds
                .as_ref()
                .map(|k| either(k.iter().map(|k| code(k.as_str())))),
            tools
                .as_ref()
                .map(|t| either(t.iter().map(|t| code(t.as_str())))),
        ),
    };
    let counted = match (kinds, tools) {
        (None, None) => words(&number("action", "actions")),
        (Some(kinds), None) => kinds.text(" ").text(&number("action", "actions")),
        (None, Some(tools)) => words(&number("call to", "calls to")).text(" ").then(tools),
        (Some(kinds), Some(tools)) => kinds
            .text(" ")
            .text(&number("action calling", "actions calling"))
            .text(" ")
            .then(tools),
    };
    words(&format!("at most {limit} "))
        .then(counted)
        .text(&format!(" per {window} per {}", per.as_str()))
}

fn cost(rule: &CostRule) -> Sentence {
    let CostRule {
        max_usd,
        period,
        per,
        timezone,
    } = rule;
    words(&match period {
        Period::Run => format!("halt past ${max_usd} per run"),
        _ => format!(
            "halt past ${max_usd} per {} ({timezone}) per {}",
            period.as_str(),
            per.as_str()
        ),
    })
}

const WEEK: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `mon-fri 09:00-17:00`, `sat,sun 22:00-06:00 (overnight)`.
fn window(window: &Window) -> Sentence {
    let Window { days, from, to } = window;
    let names: Vec<&str> = days.iter().map(|d| d.as_str()).collect();
    let positions: Vec<usize> = names
        .iter()
        .filter_map(|n| WEEK.iter().position(|w| w == n))
        .collect();
    let consecutive = positions.windows(2).all(|p| p[1] == p[0] + 1);
    let days = match (names.as_slice(), consecutive) {
        (all, true) if all.len() == 7 => "every day".to_owned(),
        ([first, .., last], true) if names.len() >= 3 => format!("{first}-{last}"),
        _ => names.join(","),
    };
    let overnight = if to <= from { " (overnight)" } else { "" };
    words(&format!("{days} {from}-{to}{overnight}"))
}

fn time(rule: &TimeRule) -> Sentence {
    let TimeRule {
        max_run_duration,
        allow,
        deny,
        timezone,
    } = rule;
    let windows = |list: &Vec<Window>| either(list.iter().map(window));
    let mut parts = Vec::new();
    if let Some(span) = max_run_duration {
        parts.push(words(&format!("halt runs past {span}")));
    }
    if let Some(list) = allow {
        parts.push(
            words("allow only ")
                .then(windows(list))
                .text(&format!(" ({timezone})")),
        );
    }
    if let Some(list) = deny {
        parts.push(
            words("block ")
                .then(windows(list))
                .text(&format!(" ({timezone})")),
        );
    }
    if parts.is_empty() {
        return words("no limits");
    }
    all(parts, "; ")
}

fn output(rule: &OutputRule) -> Sentence {
    let OutputRule {
        channels,
        deny_phrases,
        deny_regex,
        pii,
        max_chars,
        json_schema,
    } = rule;
    let mut tests = Vec::new();
    if let Some(phrases) = deny_phrases {
        tests.push(
            words("contain ")
                .then(either(phrases.iter().map(|p| code(p))))
                .text(" (any case)"),
        );
    }
    if let Some(patterns) = deny_regex {
        tests.push(words("match ").then(either(patterns.iter().map(|p| code(p.as_str())))));
    }
    if let Some(kinds) = pii {
        tests.push(
            words("contain PII (")
                .then(either(kinds.iter().map(|k| words(k.as_str()))))
                .text(")"),
        );
    }
    if let Some(max) = max_chars {
        tests.push(words(&format!(
            "are over {}",
            plural(*max, "character", "characters")
        )));
    }
    if json_schema.is_some() {
        tests.push(words("are not JSON valid against the rule's schema"));
    }
    let outputs = match channels {
        None => words("outputs"),
        Some(channels) => words("outputs on ").then(either(channels.iter().map(|c| code(c)))),
    };
    if tests.is_empty() {
        return words("no checks on ").then(outputs);
    }
    words("block ")
        .then(outputs)
        .text(" that ")
        .then(either(tests))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Piece, Sentence};
    use crate::Rule;

    #[track_caller]
    fn reads(value: &serde_json::Value, expected: &str) {
        let rule = Rule::parse(value).unwrap();
        assert_eq!(Sentence::of(&rule.kind).to_string(), expected);
    }

    #[test]
    fn tool_rules_read_as_sentences() {
        reads(
            &json!({"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                   "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}),
            "block `*.send_email` when `args.to` does not end with `@acme.com`",
        );
        reads(
            &json!({"id": "r2", "type": "tool", "effect": "deny", "tools": ["shell.*", "fs.delete"]}),
            "block `shell.*` or `fs.delete`",
        );
        reads(
            &json!({"id": "r3", "type": "tool", "effect": "allow", "tools": ["kb.*", "crm.read", "http.get"],
                   "when": [{"arg": "amount", "op": "lte", "value": 100},
                            {"arg": "region", "op": "in", "value": ["eu", "us"]},
                            {"arg": "token", "op": "not_exists"}]}),
            "allow only `kb.*`, `crm.read` or `http.get`, and only when `args.amount` is at most `100` and `args.region` is one of `eu` or `us` and `args.token` is absent",
        );
    }

    #[test]
    fn data_access_rules_read_as_sentences() {
        reads(
            &json!({"id": "d1", "type": "data_access", "effect": "deny", "resources": ["crm/**"],
                   "operations": ["read", "delete"], "labels": ["pii"]}),
            "block read or delete of `crm/**` labelled `pii`",
        );
        reads(
            &json!({"id": "d2", "type": "data_access", "effect": "deny", "resources": ["hr/*"]}),
            "block any access to `hr/*`",
        );
        reads(
            &json!({"id": "d3", "type": "data_access", "effect": "allow", "resources": ["files/*"],
                   "operations": ["read"], "labels": ["public", "internal"]}),
            "allow read only of `files/*`, with no label but `public` or `internal`",
        );
    }

    #[test]
    fn limits_read_as_sentences() {
        reads(
            &json!({"id": "rate", "type": "rate", "limit": 10, "window": "1m", "per": "agent"}),
            "at most 10 actions per 1m per agent",
        );
        reads(
            &json!({"id": "mail", "type": "rate", "limit": 1, "window": "1h",
                   "match": {"tools": ["*.send_email"]}}),
            "at most 1 call to `*.send_email` per 1h per run",
        );
        reads(
            &json!({"id": "kinds", "type": "rate", "limit": 5, "window": "1h",
                   "match": {"kinds": ["tool_call"], "tools": ["web.*"]}}),
            "at most 5 `tool_call` actions calling `web.*` per 1h per run",
        );
        reads(
            &json!({"id": "cost", "type": "cost", "max_usd": "50", "period": "day", "per": "tenant"}),
            "halt past $50.00 per day (UTC) per tenant",
        );
        reads(
            &json!({"id": "c2", "type": "cost", "max_usd": 0.5, "period": "run"}),
            "halt past $0.50 per run",
        );
    }

    #[test]
    fn time_and_output_rules_read_as_sentences() {
        reads(
            &json!({"id": "t1", "type": "time", "max_run_duration": "30m", "timezone": "Europe/Paris",
                   "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}],
                   "deny": [{"days": ["sat", "mon"], "from": "22:00", "to": "06:00"}]}),
            "halt runs past 30m; allow only mon-fri 09:00-17:00 (Europe/Paris); block sat,mon 22:00-06:00 (overnight) (Europe/Paris)",
        );
        reads(
            &json!({"id": "o1", "type": "output", "channels": ["chat"], "deny_phrases": ["secret"],
                   "deny_regex": ["\\d{16}"], "pii": ["email", "credit_card"], "max_chars": 2000,
                   "json_schema": {"type": "object"}}),
            "block outputs on `chat` that contain `secret` (any case), match `\\d{16}`, contain PII (email or credit_card), are over 2000 characters or are not JSON valid against the rule's schema",
        );
    }

    /// A value holding a backtick stays one code span: an edge never parses text back.
    #[test]
    fn code_spans_are_pieces_of_their_own() {
        let rule = Rule::parse(&json!({"id": "r", "type": "tool", "effect": "deny",
            "tools": ["a.b"], "when": [{"arg": "q", "op": "eq", "value": "x`y <b>"}]}))
        .unwrap();
        assert_eq!(
            Sentence::of(&rule.kind).pieces(),
            [
                Piece::Text("block ".into()),
                Piece::Code("a.b".into()),
                Piece::Text(" when ".into()),
                Piece::Code("args.q".into()),
                Piece::Text(" is ".into()),
                Piece::Code("x`y <b>".into()),
            ]
        );
    }
}
