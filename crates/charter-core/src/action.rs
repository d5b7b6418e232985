//! Actions: the steps a run asks about (product.md §3), parsed strictly at the edge.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::glob::normalize_resource;
use crate::money::Money;
use crate::parse::{self, ParseError};

/// The longest tool, model or channel name, in bytes.
pub const MAX_NAME: usize = 256;
/// The longest resource path, in bytes.
pub const MAX_RESOURCE: usize = 2048;
/// The most labels one data access may carry.
pub const MAX_LABELS: usize = 64;

/// The kind of an action, without its fields.
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
pub enum ActionKind {
    /// A call to a tool.
    ToolCall,
    /// A read, write or delete of a resource.
    DataAccess,
    /// Text about to leave the platform.
    Output,
    /// A call to a model.
    ModelCall,
}

impl ActionKind {
    /// Every kind.
    pub const ALL: [ActionKind; 4] = [
        ActionKind::ToolCall,
        ActionKind::DataAccess,
        ActionKind::Output,
        ActionKind::ModelCall,
    ];

    /// The kind as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::ToolCall => "tool_call",
            ActionKind::DataAccess => "data_access",
            ActionKind::Output => "output",
            ActionKind::ModelCall => "model_call",
        }
    }
}

/// What a data access does.
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
pub enum Operation {
    /// Reading.
    Read,
    /// Creating or changing.
    Write,
    /// Removing.
    Delete,
}

impl Operation {
    /// The operation as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Delete => "delete",
        }
    }
}

/// A tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The tool's name, e.g. `gmail.send_email`.
    pub tool: String,
    /// The call's arguments (`null` or absent: none).
    #[serde(default, deserialize_with = "parse::null_as_default")]
    pub args: Map<String, Value>,
}

/// A data access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataAccess {
    /// The resource path, normalised when parsed (see [`normalize_resource`]).
    pub resource: String,
    /// What the access does.
    pub operation: Operation,
    /// Labels of the data, e.g. `pii` (`null` or absent: none).
    #[serde(
        default,
        deserialize_with = "parse::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<String>,
}

/// An output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The text about to leave the platform.
    pub text: String,
    /// Where it goes (e.g. `email`, `chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// A model call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelCall {
    /// The model, e.g. `openai/gpt-4o`.
    pub model: String,
    /// Tokens sent (`null` or absent: 0).
    #[serde(default, deserialize_with = "parse::whole_count")]
    pub input_tokens: u64,
    /// Tokens received (`null` or absent: 0).
    #[serde(default, deserialize_with = "parse::whole_count")]
    pub output_tokens: u64,
}

/// The kind-specific part of an action.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionDetail {
    /// A tool call.
    ToolCall(ToolCall),
    /// A data access.
    DataAccess(DataAccess),
    /// An output.
    Output(Output),
    /// A model call.
    ModelCall(ModelCall),
}

/// One step of a run, as asked about.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Action {
    /// What the action is.
    #[serde(flatten)]
    pub detail: ActionDetail,
    /// The spend the action will incur (default 0).
    #[serde(default, skip_serializing_if = "is_free")]
    pub cost_usd: Money,
}

impl Action {
    /// An action with no cost.
    pub fn new(detail: ActionDetail) -> Action {
        Action {
            detail,
            cost_usd: Money::ZERO,
        }
    }

    /// A tool call with its arguments (`args` must be an object; anything else counts as none).
    pub fn tool_call(tool: &str, args: Value) -> Action {
        let args = match args {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Action::new(ActionDetail::ToolCall(ToolCall {
            tool: tool.to_owned(),
            args,
        }))
    }

    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        match self.detail {
            ActionDetail::ToolCall(_) => ActionKind::ToolCall,
            ActionDetail::DataAccess(_) => ActionKind::DataAccess,
            ActionDetail::Output(_) => ActionKind::Output,
            ActionDetail::ModelCall(_) => ActionKind::ModelCall,
        }
    }

    /// A short description for event lists: the tool, resource, channel or model.
    pub fn summary(&self) -> String {
        match &self.detail {
            ActionDetail::ToolCall(call) => call.tool.clone(),
            ActionDetail::DataAccess(access) => {
                format!("{} {}", access.operation.as_str(), access.resource)
            }
            ActionDetail::Output(output) => match &output.channel {
                Some(channel) => format!(
                    "output to {channel} ({} chars)",
                    output.text.chars().count()
                ),
                None => format!("output ({} chars)", output.text.chars().count()),
            },
            ActionDetail::ModelCall(call) => call.model.clone(),
        }
    }

    /// Parses an action strictly; error paths are relative to the action (`args`, `cost_usd`).
    /// `null` for an optional field is the same as leaving it out.
    pub fn parse(value: &Value) -> Result<Action, ParseError> {
        Action::from_value(value.clone())
    }

    /// Parses an action from JSON text (e.g. as stored), as [`Action::parse`] does.
    pub fn from_json(text: &str) -> Result<Action, ParseError> {
        let value = serde_json::from_str(text)
            .map_err(|e| ParseError::new("", format!("malformed JSON: {e}")))?;
        Action::from_value(value)
    }

    /// Parses an owned JSON value as [`Action::parse`] does, moving its strings and arguments
    /// into the action instead of copying them (the hot path of a check).
    pub fn from_value(value: Value) -> Result<Action, ParseError> {
        let mut object = match value {
            Value::Object(object) => object,
            other => {
                return Err(ParseError::new(
                    "",
                    format!(
                        "an action must be a JSON object, found {}",
                        parse::kind_of(&other)
                    ),
                ));
            }
        };
        let kind = parse::take_tag(&mut object, "kind")?;
        let cost_usd = match object.remove("cost_usd") {
            None | Some(Value::Null) => Money::ZERO,
            Some(cost) => parse::from_owned(cost).map_err(|e| e.under("cost_usd"))?,
        };
        let rest = Value::Object(object);
        let detail = match kind.as_str() {
            "tool_call" => {
                let call: ToolCall = parse::from_owned(rest)?;
                check_name(&call.tool, "tool")?;
                ActionDetail::ToolCall(call)
            }
            "data_access" => {
                let mut access: DataAccess = parse::from_owned(rest)?;
                if access.resource.len() > MAX_RESOURCE {
                    return Err(ParseError::new(
                        "resource",
                        format!("a resource path is at most {MAX_RESOURCE} bytes"),
                    ));
                }
                access.resource = normalize_resource(&access.resource);
                if access.resource.is_empty() {
                    return Err(ParseError::new(
                        "resource",
                        "a resource path cannot be empty",
                    ));
                }
                if access.labels.len() > MAX_LABELS {
                    return Err(ParseError::new(
                        "labels",
                        format!("at most {MAX_LABELS} labels"),
                    ));
                }
                ActionDetail::DataAccess(access)
            }
            "output" => {
                let output: Output = parse::from_owned(rest)?;
                if let Some(channel) = &output.channel {
                    check_name(channel, "channel")?;
                }
                ActionDetail::Output(output)
            }
            "model_call" => {
                let call: ModelCall = parse::from_owned(rest)?;
                check_name(&call.model, "model")?;
                ActionDetail::ModelCall(call)
            }
            other => {
                return Err(ParseError::new(
                    "kind",
                    format!(
                        "unknown action kind `{other}`, expected one of tool_call, data_access, output, model_call"
                    ),
                ));
            }
        };
        refuse_nul(&detail)?;
        Ok(Action { detail, cost_usd })
    }
}

/// Refuses the NUL character in every string of an action. No tool argument, path or text an
/// agent sends needs one, and PostgreSQL cannot store it in text: accepted, it would fail the
/// commit of the check (and of the other checks committed with it) instead of this request.
fn refuse_nul(detail: &ActionDetail) -> Result<(), ParseError> {
    const MESSAGE: &str = "cannot hold the NUL character (\\u0000)";
    match detail {
        ActionDetail::ToolCall(call) => {
            for (key, value) in &call.args {
                let path = parse::join("args", key);
                if key.contains('\0') {
                    return Err(ParseError::new(path, MESSAGE));
                }
                if let Some(at) = nul_in(value, path) {
                    return Err(ParseError::new(at, MESSAGE));
                }
            }
        }
        ActionDetail::DataAccess(access) => {
            if access.resource.contains('\0') {
                return Err(ParseError::new("resource", MESSAGE));
            }
            if let Some(i) = access.labels.iter().position(|l| l.contains('\0')) {
                return Err(ParseError::new(parse::index("labels", i), MESSAGE));
            }
        }
        ActionDetail::Output(output) => {
            if output.text.contains('\0') {
                return Err(ParseError::new("text", MESSAGE));
            }
        }
        // Names are checked for every control character.
        ActionDetail::ModelCall(_) => {}
    }
    Ok(())
}

/// The path of the first string (or object key) holding NUL in `value`, found at `path`.
fn nul_in(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, parse::index(&path, i))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let inner = parse::join(&path, key);
            if key.contains('\0') {
                Some(inner)
            } else {
                nul_in(item, inner)
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_free(cost: &Money) -> bool {
    cost.is_zero()
}

/// Checks a tool, model or channel name: 1–256 bytes, no control characters.
fn check_name(name: &str, field: &str) -> Result<(), ParseError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(ParseError::new(
            field,
            format!("must be 1 to {MAX_NAME} bytes"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ParseError::new(field, "cannot hold control characters"));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Action::from_value(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_each_kind() {
        let a = Action::parse(&json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": "a@b.c"}, "cost_usd": "0.02"})).unwrap();
        assert_eq!(a.kind(), ActionKind::ToolCall);
        assert_eq!(a.cost_usd.micros(), 20_000);
        let a = Action::parse(&json!({"kind": "data_access", "resource": "crm//customers/./42", "operation": "read", "labels": ["pii"]})).unwrap();
        let ActionDetail::DataAccess(access) = &a.detail else {
            panic!()
        };
        assert_eq!(access.resource, "crm/customers/42");
        assert!(Action::parse(&json!({"kind": "output", "text": "hi"})).is_ok());
        assert!(
            Action::parse(
                &json!({"kind": "model_call", "model": "openai/gpt-4o", "input_tokens": 10})
            )
            .is_ok()
        );
    }

    /// Token counts are JSON Schema integers, which `3.0` is; a fraction or a sign is refused.
    #[test]
    fn token_counts_are_whole_numbers() {
        let call = |tokens: Value| {
            Action::parse(&json!({"kind": "model_call", "model": "m", "output_tokens": tokens}))
        };
        let a = call(json!(27345.0)).unwrap();
        let ActionDetail::ModelCall(model) = &a.detail else {
            panic!()
        };
        assert_eq!(model.output_tokens, 27_345);
        assert!(call(json!(null)).is_ok());
        for bad in [json!(1.5), json!(-1), json!(-1.0), json!(1e300), json!("3")] {
            let e = call(bad.clone()).unwrap_err();
            assert_eq!(e.path, "output_tokens", "{bad}");
        }
    }

    #[test]
    fn names_bad_fields() {
        let e = Action::parse(&json!({"kind": "tool_call", "tool": "x", "argz": {}})).unwrap_err();
        assert_eq!(e.path, "argz");
        let e = Action::parse(&json!({"kind": "tool_call", "tool": "x", "cost_usd": "-1"}))
            .unwrap_err();
        assert_eq!(e.path, "cost_usd");
        let e = Action::parse(&json!({"kind": "teleport"})).unwrap_err();
        assert_eq!(e.path, "kind");
        let e = Action::parse(&json!({"tool": "x"})).unwrap_err();
        assert_eq!(e.path, "kind");
        let e = Action::parse(&json!({"kind": "data_access", "resource": "a", "operation": "eat"}))
            .unwrap_err();
        assert_eq!(e.path, "operation");
        let e = Action::parse(&json!({"kind": "tool_call", "tool": ""})).unwrap_err();
        assert_eq!(e.path, "tool");
        let e = Action::parse(&json!({"kind": "tool_call", "tool": "t", "args": []})).unwrap_err();
        assert_eq!(e.path, "args");
    }

    #[test]
    fn refuses_nul_wherever_it_is() {
        let cases = [
            (
                json!({"kind": "tool_call", "tool": "t", "args": {"to": "a\u{0}b"}}),
                "args.to",
            ),
            (
                json!({"kind": "tool_call", "tool": "t", "args": {"x": {"list": [1, "ok", "\u{0}"]}}}),
                "args.x.list[2]",
            ),
            (
                json!({"kind": "tool_call", "tool": "t", "args": {"k\u{0}": 1}}),
                "args.k\u{0}",
            ),
            (json!({"kind": "tool_call", "tool": "t\u{0}"}), "tool"),
            (
                json!({"kind": "data_access", "resource": "a/\u{0}", "operation": "read"}),
                "resource",
            ),
            (
                json!({"kind": "data_access", "resource": "a", "operation": "read", "labels": ["pii", "x\u{0}"]}),
                "labels[1]",
            ),
            (json!({"kind": "output", "text": "hi\u{0}"}), "text"),
            (
                json!({"kind": "output", "text": "hi", "channel": "\u{0}"}),
                "channel",
            ),
            (json!({"kind": "model_call", "model": "m\u{0}"}), "model"),
        ];
        for (action, path) in cases {
            let e = Action::parse(&action).unwrap_err();
            assert_eq!(e.path, path, "{action}");
        }
        // Other control characters are ordinary text.
        assert!(Action::parse(&json!({"kind": "output", "text": "a\nb\tc"})).is_ok());
    }

    #[test]
    fn round_trips_through_json() {
        let a = Action::parse(
            &json!({"kind": "output", "text": "hi", "channel": "email", "cost_usd": 1.5}),
        )
        .unwrap();
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v,
            json!({"kind": "output", "text": "hi", "channel": "email", "cost_usd": "1.50"})
        );
        assert_eq!(Action::parse(&v).unwrap(), a);
    }
}
