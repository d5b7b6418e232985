//! Rules: the six constraint types of product.md §4, and their parsing with JSON paths.

mod condition;
mod cost;
mod data_access;
mod output;
mod rate;
mod time;
mod tool;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use condition::{ArgPath, Condition, MAX_ARG_PATH, MAX_IN_VALUES, Op};
pub use cost::CostRule;
pub use data_access::{DataAccessRule, Label, MAX_LABEL};
pub(crate) use output::compile_schema;
pub use output::{MAX_PHRASE, OutputRule};
pub use rate::{Per, RateMatch, RateRule};
pub use time::{MAX_WINDOWS, TimeRule};
pub use tool::{Effect, MAX_CONDITIONS, ToolRule};

use crate::ids::RuleId;
use crate::parse::{self, ParseError};

/// The most rules one policy may hold.
pub const MAX_RULES: usize = 256;
/// The most patterns (tools, resources, regexes, phrases) in one list of a rule.
pub const MAX_LIST: usize = 1024;
/// The longest rule description, in characters.
pub const MAX_DESCRIPTION: usize = 2000;

/// One rule of a policy: an id unique within the policy, an optional description, and the
/// constraint itself.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Rule {
    /// Unique within the policy; violations name it.
    pub id: RuleId,
    /// What the rule is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The constraint.
    #[serde(flatten)]
    pub kind: RuleKind,
}

/// The six rule types, tagged by `type` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleKind {
    /// Allow-lists or denies tool calls, optionally on conditions on their arguments.
    Tool(ToolRule),
    /// Allow-lists or denies access to resources.
    DataAccess(DataAccessRule),
    /// At most `limit` matching actions in any rolling window.
    Rate(RateRule),
    /// A spending cap per run or calendar period; exceeding it halts the run.
    Cost(CostRule),
    /// Run duration and time-of-day windows.
    Time(TimeRule),
    /// Checks on text about to leave the platform.
    Output(OutputRule),
}

/// A rule's type, without its fields.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleType {
    /// [`ToolRule`].
    Tool,
    /// [`DataAccessRule`].
    DataAccess,
    /// [`RateRule`].
    Rate,
    /// [`CostRule`].
    Cost,
    /// [`TimeRule`].
    Time,
    /// [`OutputRule`].
    Output,
}

impl RuleType {
    /// Every rule type.
    pub const ALL: [RuleType; 6] = [
        RuleType::Tool,
        RuleType::DataAccess,
        RuleType::Rate,
        RuleType::Cost,
        RuleType::Time,
        RuleType::Output,
    ];

    /// The type as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Tool => "tool",
            RuleType::DataAccess => "data_access",
            RuleType::Rate => "rate",
            RuleType::Cost => "cost",
            RuleType::Time => "time",
            RuleType::Output => "output",
        }
    }

    /// Reads a type from its JSON name.
    pub fn from_name(name: &str) -> Option<RuleType> {
        RuleType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for RuleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Rule {
    /// The rule's type.
    pub fn rule_type(&self) -> RuleType {
        match self.kind {
            RuleKind::Tool(_) => RuleType::Tool,
            RuleKind::DataAccess(_) => RuleType::DataAccess,
            RuleKind::Rate(_) => RuleType::Rate,
            RuleKind::Cost(_) => RuleType::Cost,
            RuleKind::Time(_) => RuleType::Time,
            RuleKind::Output(_) => RuleType::Output,
        }
    }

    /// The earliest instant whose recorded actions this rule's counters may still read at
    /// `now`, or `None` when they read none: what retention must keep for it. A counter of an
    /// agent or tenant is seeded from history the first time it is claimed (rolling windows
    /// from two windows back, as much as a counter keeps: [`crate::limits::ClaimWindow::buckets`];
    /// calendar periods from the start of the period containing `now`). A run's own counters
    /// are never seeded, and the other rule types count nothing.
    pub fn history_from(&self, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
        match &self.kind {
            RuleKind::Rate(rate) if rate.per != Per::Run => {
                let kept = i64::try_from(rate.window.as_millis())
                    .unwrap_or(i64::MAX)
                    .saturating_mul(2);
                let from = now.as_millisecond().saturating_sub(kept);
                Some(jiff::Timestamp::from_millisecond(from).unwrap_or(jiff::Timestamp::MIN))
            }
            RuleKind::Cost(cost) if cost.per != Per::Run => {
                crate::calendar::period_bounds(now, cost.period, &cost.timezone)
                    .map(|(start, _)| start)
            }
            _ => None,
        }
    }

    /// Parses one rule strictly: unknown fields, wrong types and values out of range are errors
    /// whose path is relative to the rule (`when[0].op`).
    pub fn parse(value: &Value) -> Result<Rule, ParseError> {
        let mut object = parse::object(value, "a rule")?;
        let type_name = parse::take_tag(&mut object, "type")?;
        let id: RuleId = match object.remove("id") {
            Some(id) => parse::from_value(&id).map_err(|e| e.under("id"))?,
            None => return Err(ParseError::new("id", "missing field `id`")),
        };
        let description: Option<String> = match object.remove("description") {
            Some(d) => parse::from_value(&d).map_err(|e| e.under("description"))?,
            None => None,
        };
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
        {
            return Err(ParseError::new(
                "description",
                format!("a description is at most {MAX_DESCRIPTION} characters"),
            ));
        }
        let rest = Value::Object(object);
        let Some(rule_type) = RuleType::from_name(&type_name) else {
            return Err(ParseError::new(
                "type",
                format!(
                    "unknown rule type `{type_name}`, expected one of tool, data_access, rate, cost, time, output"
                ),
            ));
        };
        let kind = match rule_type {
            RuleType::Tool => RuleKind::Tool(checked(&rest, ToolRule::check)?),
            RuleType::DataAccess => RuleKind::DataAccess(checked(&rest, DataAccessRule::check)?),
            RuleType::Rate => RuleKind::Rate(checked(&rest, RateRule::check)?),
            RuleType::Cost => RuleKind::Cost(checked(&rest, CostRule::check)?),
            RuleType::Time => RuleKind::Time(checked(&rest, TimeRule::check)?),
            RuleType::Output => RuleKind::Output(checked(&rest, OutputRule::check)?),
        };
        Ok(Rule {
            id,
            description,
            kind,
        })
    }
}

/// Deserializes a rule body and runs its checks, which name paths relative to the rule.
fn checked<T: serde::de::DeserializeOwned>(
    value: &Value,
    check: fn(&T) -> Result<(), ParseError>,
) -> Result<T, ParseError> {
    let body: T = parse::from_value(value)?;
    check(&body)?;
    Ok(body)
}

/// Parses a list of rules at `path` (e.g. `rules`), checking that their ids are unique.
pub fn parse_rules(value: &Value, path: &str) -> Result<Vec<Rule>, ParseError> {
    let Value::Array(items) = value else {
        return Err(ParseError::new(
            path,
            format!(
                "expected an array of rules, found {}",
                parse::kind_of(value)
            ),
        ));
    };
    if items.len() > MAX_RULES {
        return Err(ParseError::new(
            path,
            format!("a policy holds at most {MAX_RULES} rules"),
        ));
    }
    let rules = items
        .iter()
        .enumerate()
        .map(|(i, item)| Rule::parse(item).map_err(|e| e.under(&parse::index(path, i))))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique_ids(&rules, path)?;
    Ok(rules)
}

/// Refuses two rules with one id: violations and rule removal address rules by id.
pub fn check_unique_ids(rules: &[Rule], path: &str) -> Result<(), ParseError> {
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        if !seen.insert(rule.id.as_str()) {
            return Err(ParseError::new(
                parse::join(&parse::index(path, i), "id"),
                format!("rule id `{}` is used twice in this policy", rule.id),
            ));
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Rule::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// Checks that a list given in a rule is non-empty and not too long.
pub(crate) fn check_list<T>(list: &[T], path: &str) -> Result<(), ParseError> {
    if list.is_empty() {
        return Err(ParseError::new(path, "must not be empty"));
    }
    if list.len() > MAX_LIST {
        return Err(ParseError::new(path, format!("at most {MAX_LIST} entries")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::json;

    use super::Rule;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn rule(value: &serde_json::Value) -> Rule {
        Rule::parse(value).unwrap()
    }

    #[test]
    fn history_from_covers_what_counters_read() {
        let now = at("2026-03-17T10:20:30Z");
        let rate =
            |per| rule(&json!({"id": "r", "type": "rate", "limit": 5, "window": "1h", "per": per}));
        assert_eq!(
            rate("agent").history_from(now),
            Some(at("2026-03-17T08:20:30Z"))
        );
        assert_eq!(
            rate("tenant").history_from(now),
            Some(at("2026-03-17T08:20:30Z"))
        );
        assert_eq!(rate("run").history_from(now), None);
        let cost = |period, per, zone| {
            rule(
                &json!({"id": "c", "type": "cost", "max_usd": "10", "period": period,
                        "per": per, "timezone": zone}),
            )
        };
        assert_eq!(
            cost("month", "tenant", "UTC").history_from(now),
            Some(at("2026-03-01T00:00:00Z"))
        );
        assert_eq!(
            cost("day", "agent", "America/New_York").history_from(now),
            Some(at("2026-03-17T04:00:00Z"))
        );
        assert_eq!(cost("day", "run", "UTC").history_from(now), None);
        assert_eq!(cost("run", "run", "UTC").history_from(now), None);
        let tool = rule(&json!({"id": "t", "type": "tool", "effect": "deny", "tools": ["x.*"]}));
        assert_eq!(tool.history_from(now), None);
    }
}
