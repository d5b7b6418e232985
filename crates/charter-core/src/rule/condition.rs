//! Conditions on tool-call arguments: `{ "arg": "to", "op": "not_ends_with", "value": "@acme.com" }`.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::glob::{Glob, GlobKind};
use crate::parse::{ParseError, kind_of};
use crate::pattern::Pattern;

/// The longest argument path, in bytes.
pub const MAX_ARG_PATH: usize = 256;
/// The most values an `in` / `not_in` list may hold.
pub const MAX_IN_VALUES: usize = 1024;

/// A comparison of a condition (product.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (values of different JSON types are unequal; numbers compare by value).
    Eq,
    /// Not equal.
    Ne,
    /// Equal to one of a list.
    In,
    /// Equal to none of a list.
    NotIn,
    /// A string matching a glob whose segments are split at `/`.
    Glob,
    /// A string not matching a glob.
    NotGlob,
    /// A string in which a regex finds a match (anywhere, unless anchored).
    Regex,
    /// A string in which a regex finds no match.
    NotRegex,
    /// A number less than the value.
    Lt,
    /// A number less than or equal to the value.
    Lte,
    /// A number greater than the value.
    Gt,
    /// A number greater than or equal to the value.
    Gte,
    /// The argument is present (takes no value).
    Exists,
    /// The argument is absent (takes no value).
    NotExists,
    /// A string containing the value.
    Contains,
    /// A string ending with the value.
    EndsWith,
    /// A string not ending with the value.
    NotEndsWith,
}

impl Op {
    /// Every op, in the order product.md §4 lists them (forms offer them in this order).
    pub const ALL: [Op; 17] = [
        Op::Eq,
        Op::Ne,
        Op::In,
        Op::NotIn,
        Op::Glob,
        Op::NotGlob,
        Op::Regex,
        Op::NotRegex,
        Op::Lt,
        Op::Lte,
        Op::Gt,
        Op::Gte,
        Op::Exists,
        Op::NotExists,
        Op::Contains,
        Op::EndsWith,
        Op::NotEndsWith,
    ];

    /// The op as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Glob => "glob",
            Op::NotGlob => "not_glob",
            Op::Regex => "regex",
            Op::NotRegex => "not_regex",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Exists => "exists",
            Op::NotExists => "not_exists",
            Op::Contains => "contains",
            Op::EndsWith => "ends_with",
            Op::NotEndsWith => "not_ends_with",
        }
    }
}

/// A dotted path into a tool call's `args` (`to`, `message.recipients.email`). Arrays met on the
/// way are walked element by element; a numeric segment indexes an array.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArgPath {
    text: String,
}

impl ArgPath {
    /// Checks and wraps a path.
    pub fn new(text: &str) -> Result<ArgPath, String> {
        if text.is_empty() {
            return Err("an argument path cannot be empty".to_owned());
        }
        if text.len() > MAX_ARG_PATH {
            return Err(format!("an argument path is at most {MAX_ARG_PATH} bytes"));
        }
        if text.split('.').any(str::is_empty) {
            return Err(format!(
                "{text:?} has an empty segment: write segments separated by single dots"
            ));
        }
        Ok(ArgPath {
            text: text.to_owned(),
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The path's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.text.split('.')
    }
}

impl fmt::Display for ArgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for ArgPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ArgPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ArgPath::new(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for ArgPath {
    fn schema_name() -> Cow<'static, str> {
        "ArgPath".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ARG_PATH,
            "description": "A dotted path into the tool call's args"
        })
    }
}

/// One condition of a tool rule. Its `value` is checked against its `op` when the rule is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Where in `args` to look.
    pub arg: ArgPath,
    /// How to compare.
    pub op: Op,
    /// What to compare with (absent for `exists` and `not_exists`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Value>,
}

/// Keeps `"value": null` as a present null (for `eq null`), unlike serde's default for `Option`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Condition {
    /// Checks that the value suits the op; paths are relative to the condition.
    pub(crate) fn check(&self) -> Result<(), ParseError> {
        let bad = |message: String| Err(ParseError::new("value", message));
        if let Some(value) = &self.value {
            crate::parse::check_depth(value, "value")?;
        }
        let op = self.op.as_str();
        match (self.op, &self.value) {
            (Op::Exists | Op::NotExists, None)
            | (Op::Eq | Op::Ne, Some(_))
            | (Op::Lt | Op::Lte | Op::Gt | Op::Gte, Some(Value::Number(_)))
            | (Op::Contains | Op::EndsWith | Op::NotEndsWith, Some(Value::String(_))) => Ok(()),
            (Op::Exists | Op::NotExists, Some(_)) => bad(format!("`{op}` takes no value")),
            (_, None) => Err(ParseError::new("value", "missing field `value`")),
            (Op::In | Op::NotIn, Some(Value::Array(values))) => {
                if values.len() > MAX_IN_VALUES {
                    return bad(format!("at most {MAX_IN_VALUES} values"));
                }
                Ok(())
            }
            (Op::In | Op::NotIn, Some(other)) => bad(format!(
                "`{op}` needs an array of values, found {}",
                kind_of(other)
            )),
            (Op::Lt | Op::Lte | Op::Gt | Op::Gte, Some(other)) => {
                bad(format!("`{op}` needs a number, found {}", kind_of(other)))
            }
            (Op::Glob | Op::NotGlob, Some(Value::String(pattern))) => {
                Glob::new(pattern, GlobKind::Path)
                    .map(drop)
                    .or_else(|e| bad(e.to_string()))
            }
            (Op::Regex | Op::NotRegex, Some(Value::String(pattern))) => {
                Pattern::new(pattern).map(drop).or_else(bad)
            }
            (_, Some(other)) => bad(format!("`{op}` needs a string, found {}", kind_of(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: &Value) -> Result<(), ParseError> {
        let c: Condition = crate::parse::from_value(value)?;
        c.check()
    }

    #[test]
    fn value_must_suit_op() {
        assert!(check(&json!({"arg": "to", "op": "exists"})).is_ok());
        assert_eq!(
            check(&json!({"arg": "to", "op": "exists", "value": 1}))
                .unwrap_err()
                .path,
            "value"
        );
        assert_eq!(
            check(&json!({"arg": "n", "op": "gt"})).unwrap_err().path,
            "value"
        );
        assert!(check(&json!({"arg": "n", "op": "gt", "value": 3})).is_ok());
        assert!(check(&json!({"arg": "n", "op": "gt", "value": "3"})).is_err());
        assert!(check(&json!({"arg": "n", "op": "in", "value": [1, "a"]})).is_ok());
        assert!(check(&json!({"arg": "n", "op": "in", "value": "a"})).is_err());
        assert!(check(&json!({"arg": "n", "op": "regex", "value": "(?=a)"})).is_err());
        assert!(check(&json!({"arg": "n", "op": "contains", "value": 1})).is_err());
        assert!(check(&json!({"arg": "n", "op": "eq", "value": null})).is_ok());
    }

    #[test]
    fn every_op_is_listed_once_under_its_json_name() {
        let names: std::collections::HashSet<&str> = Op::ALL.iter().map(|op| op.as_str()).collect();
        assert_eq!(names.len(), Op::ALL.len());
        for op in Op::ALL {
            let read: Op = serde_json::from_value(json!(op.as_str())).unwrap();
            assert_eq!(read, op);
        }
    }

    #[test]
    fn arg_paths_are_checked() {
        assert!(ArgPath::new("a.b.0").is_ok());
        assert!(ArgPath::new("a..b").is_err());
        assert!(ArgPath::new("").is_err());
        assert!(ArgPath::new(".a").is_err());
    }
}
