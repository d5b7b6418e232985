//! Actions: the steps a run asks about (product.md §3), parsed strictly at the edge.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::ArgsRead;
use crate::glob::normalize_resource;
use crate::money::Money;
use crate::parse::{self, ParseError};

/// The longest tool, model or channel name, in characters (as the OpenAPI document's
/// `maxLength` counts them).
pub const MAX_NAME: usize = 256;
/// The longest resource path, in characters.
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
    /// Every operation.
    pub const ALL: [Operation; 3] = [Operation::Read, Operation::Write, Operation::Delete];

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
        Action::from_json_reading(text, &ArgsRead::all())
    }

    /// Parses an action from JSON text as [`Action::from_json`] does, for policies that read
    /// only the arguments `args` names: a tool call whose arguments they do not read comes
    /// without them (checked all the same, so what would not parse still does not).
    pub fn from_json_reading(text: &str, args: &ArgsRead) -> Result<Action, ParseError> {
        // Validate parses every recorded action: read straight into the action's fields, the
        // text is parsed once instead of into a `Value` and again out of it. Anything that path
        // does not take (and every error) goes the way of `parse`, which decides.
        let mut direct = serde_json::Deserializer::from_str(text);
        if let Ok(fields) = Reading(args).deserialize(&mut direct)
            && direct.end().is_ok()
            && let Some(action) = fields.into_action()
        {
            return Ok(action);
        }
        let value = parse::json(text.as_bytes())?;
        let mut action = Action::from_value(value)?;
        if let ActionDetail::ToolCall(call) = &mut action.detail
            && !args.reads(&call.tool)
        {
            call.args.clear();
        }
        Ok(action)
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
            "tool_call" => ActionDetail::ToolCall(parse::from_owned(rest)?),
            "data_access" => ActionDetail::DataAccess(parse::from_owned(rest)?),
            "output" => ActionDetail::Output(parse::from_owned(rest)?),
            "model_call" => ActionDetail::ModelCall(parse::from_owned(rest)?),
            other => {
                return Err(ParseError::new(
                    "kind",
                    format!(
                        "unknown action kind `{other}`, expected one of tool_call, data_access, output, model_call"
                    ),
                ));
            }
        };
        Ok(Action {
            detail: checked(detail)?,
            cost_usd,
        })
    }
}

/// What serde cannot check of a parsed action: name lengths, resource paths (normalised here),
/// label counts, the nesting of arguments, and NUL anywhere.
fn checked(mut detail: ActionDetail) -> Result<ActionDetail, ParseError> {
    match &mut detail {
        ActionDetail::ToolCall(call) => {
            check_name(&call.tool, "tool")?;
            parse::check_object_depth(&call.args, "args")?;
        }
        ActionDetail::DataAccess(access) => {
            if longer_than(&access.resource, MAX_RESOURCE) {
                return Err(ParseError::new(
                    "resource",
                    format!("a resource path is at most {MAX_RESOURCE} characters"),
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
        }
        ActionDetail::Output(output) => {
            if let Some(channel) = &output.channel {
                check_name(channel, "channel")?;
            }
        }
        ActionDetail::ModelCall(call) => check_name(&call.model, "model")?,
    }
    refuse_nul(&detail)?;
    Ok(detail)
}

/// Every field of every kind of action, read straight from JSON text by
/// [`Action::from_json_reading`], each told apart as absent, `null` or set, so the kinds' own
/// rules (which fields each kind takes, which may be `null`) can be applied after.
#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    cost_usd: Field<Value>,
    tool: Field<String>,
    args: Field<Map<String, Value>>,
    resource: Field<String>,
    operation: Field<Operation>,
    labels: Field<Vec<String>>,
    text: Field<String>,
    channel: Field<String>,
    model: Field<String>,
    input_tokens: Field<u64>,
    output_tokens: Field<u64>,
}

/// Reads [`Fields`] from a JSON object. A tool call's arguments that the policies do not read
/// are checked as they are parsed but not built, when the tool comes first (as in stored
/// text). An unknown or repeated field is an error.
struct Reading<'r>(&'r ArgsRead);

impl<'de> DeserializeSeed<'de> for Reading<'_> {
    type Value = Fields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Fields<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Reading<'_> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an action")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
            map: &mut A,
            slot: &mut Field<T>,
        ) -> Result<(), A::Error> {
            if slot.is_there() {
                return Err(de::Error::custom("a repeated field"));
            }
            *slot = map.next_value()?;
            Ok(())
        }
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "kind" => {
                    if f.kind.is_some() {
                        return Err(de::Error::custom("a repeated field"));
                    }
                    f.kind = Some(map.next_value()?);
                }
                "cost_usd" => once(&mut map, &mut f.cost_usd)?,
                "tool" => {
                    once(&mut map, &mut f.tool)?;
                    // Arguments built before their tool was known, and not read: `from_value`
                    // checks them and leaves them out (not stored text: rare).
                    if let (Field::Set(tool), Field::Set(_)) = (&f.tool, &f.args)
                        && !self.0.reads(tool)
                    {
                        return Err(de::Error::custom("arguments before their tool"));
                    }
                }
                "args" => {
                    if matches!(&f.tool, Field::Set(tool) if !self.0.reads(tool)) {
                        let mut unread = Field::<Unread>::Absent;
                        once(&mut map, &mut unread)?;
                        if f.args.is_there() {
                            return Err(de::Error::custom("a repeated field"));
                        }
                        f.args = match unread {
                            Field::Set(Unread) => Field::Set(Map::new()),
                            Field::Null => Field::Null,
                            Field::Absent => Field::Absent,
                        };
                    } else {
                        once(&mut map, &mut f.args)?;
                    }
                }
                "resource" => once(&mut map, &mut f.resource)?,
                "operation" => once(&mut map, &mut f.operation)?,
                "labels" => once(&mut map, &mut f.labels)?,
                "text" => once(&mut map, &mut f.text)?,
                "channel" => once(&mut map, &mut f.channel)?,
                "model" => once(&mut map, &mut f.model)?,
                "input_tokens" => once(&mut map, &mut f.input_tokens)?,
                "output_tokens" => once(&mut map, &mut f.output_tokens)?,
                _ => return Err(de::Error::custom("an unknown field")),
            }
        }
        Ok(f)
    }
}

/// Arguments left out: a JSON object parsed to its end as a `Value` would be (numbers in
/// range, the same depth limits), whose keys and strings hold no NUL.
struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Unread, D::Error> {
        deserializer
            .deserialize_map(Checked { level: 1 })
            .map(|()| Unread)
    }
}

/// Any JSON value inside [`Unread`] arguments, an array or object at nesting level `level`.
#[derive(Clone, Copy)]
struct Checked {
    level: usize,
}

impl Checked {
    /// What a value inside this array or object is checked as, refused past
    /// [`parse::MAX_DEPTH`] as [`parse::check_object_depth`] refuses it.
    fn inner<E: de::Error>(self) -> Result<Checked, E> {
        if self.level > parse::MAX_DEPTH {
            return Err(E::custom("nested too deep"));
        }
        Ok(Checked {
            level: self.level + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        if text.contains('\0') {
            return Err(E::custom("NUL"));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// One of [`Fields`].
#[derive(Default)]
enum Field<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Field::Null,
            Some(value) => Field::Set(value),
        })
    }
}

impl<T> Field<T> {
    fn is_there(&self) -> bool {
        !matches!(self, Field::Absent)
    }

    /// The value, `None` when absent or `null`.
    fn value(self) -> Option<T> {
        match self {
            Field::Set(value) => Some(value),
            Field::Absent | Field::Null => None,
        }
    }
}

impl Fields<'_> {
    /// The action these fields make, or `None` when [`Action::from_value`] has to decide:
    /// a field of another kind (even `null`), a required one missing or `null`, an unknown kind
    /// or any failed check.
    fn into_action(self) -> Option<Action> {
        let others = [
            ("tool", self.tool.is_there()),
            ("args", self.args.is_there()),
            ("resource", self.resource.is_there()),
            ("operation", self.operation.is_there()),
            ("labels", self.labels.is_there()),
            ("text", self.text.is_there()),
            ("channel", self.channel.is_there()),
            ("model", self.model.is_there()),
            ("input_tokens", self.input_tokens.is_there()),
            ("output_tokens", self.output_tokens.is_there()),
        ];
        let kind = self.kind?;
        let own: &[&str] = match kind {
            "tool_call" => &["tool", "args"],
            "data_access" => &["resource", "operation", "labels"],
            "output" => &["text", "channel"],
            "model_call" => &["model", "input_tokens", "output_tokens"],
            _ => return None,
        };
        if others
            .iter()
            .any(|(name, there)| *there && !own.contains(name))
        {
            return None;
        }
        let detail = match kind {
            "tool_call" => ActionDetail::ToolCall(ToolCall {
                tool: self.tool.value()?,
                args: self.args.value().unwrap_or_default(),
            }),
            "data_access" => ActionDetail::DataAccess(DataAccess {
                resource: self.resource.value()?,
                operation: self.operation.value()?,
                labels: self.labels.value().unwrap_or_default(),
            }),
            "output" => ActionDetail::Output(Output {
                text: self.text.value()?,
                channel: self.channel.value(),
            }),
            _ => ActionDetail::ModelCall(ModelCall {
                model: self.model.value()?,
                input_tokens: self.input_tokens.value().unwrap_or_default(),
                output_tokens: self.output_tokens.value().unwrap_or_default(),
            }),
        };
        let cost_usd = match self.cost_usd.value() {
            None => Money::ZERO,
            Some(cost) => parse::from_owned(cost).ok()?,
        };
        Some(Action {
            detail: checked(detail).ok()?,
            cost_usd,
        })
    }
}

/// Refuses the NUL character in every string of an action. No tool argument, path or text an
/// agent sends needs one, and PostgreSQL cannot store it in text: accepted, it would fail the
/// commit of the check (and of the other checks committed with it) instead of this request.
fn refuse_nul(detail: &ActionDetail) -> Result<(), ParseError> {
    const MESSAGE: &str = "cannot hold the NUL character (\\u0000)";
    match detail {
        ActionDetail::ToolCall(call) => {
            // Paths are only built to name a NUL that is there.
            if !call
                .args
                .iter()
                .any(|(key, value)| key.contains('\0') || has_nul(value))
            {
                return Ok(());
            }
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

/// Whether any string (or object key) in `value` holds NUL.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| key.contains('\0') || has_nul(item)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
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

/// Whether `text` has more than `max` characters (its bytes first: never fewer than its
/// characters, so most texts are answered without counting).
fn longer_than(text: &str, max: usize) -> bool {
    text.len() > max && text.chars().count() > max
}

/// Checks a tool, model or channel name: 1–256 characters, no control characters.
fn check_name(name: &str, field: &str) -> Result<(), ParseError> {
    if name.is_empty() || longer_than(name, MAX_NAME) {
        return Err(ParseError::new(
            field,
            format!("must be 1 to {MAX_NAME} characters"),
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

    /// Found by the `action` fuzz target: a resource whose decoding left a `%` before two hex
    /// digits read differently from its recorded text (Validate saw another path than the check).
    #[test]
    fn a_recorded_action_reads_back_as_checked() {
        for resource in [
            "hr%%%%%%3333A7",
            "a%252F..%252Fsecret",
            "%C3%25A9",
            "a%FF%2541",
        ] {
            let action = Action::parse(
                &json!({"kind": "data_access", "resource": resource, "operation": "read"}),
            )
            .unwrap();
            let stored = serde_json::to_string(&action).unwrap();
            assert_eq!(Action::from_json(&stored).unwrap(), action, "{resource:?}");
        }
    }

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

    /// Names and resource paths are bounded in characters, as the OpenAPI document's
    /// `maxLength` counts them: 256 two-byte characters are a name, 257 are not.
    #[test]
    fn names_and_paths_are_bounded_in_characters() {
        let tool = |name: String| Action::parse(&json!({"kind": "tool_call", "tool": name}));
        assert!(tool("é".repeat(MAX_NAME)).is_ok());
        assert_eq!(tool("é".repeat(MAX_NAME + 1)).unwrap_err().path, "tool");
        assert_eq!(tool(String::new()).unwrap_err().path, "tool");
        let access = |resource: String| {
            Action::parse(
                &json!({"kind": "data_access", "resource": resource, "operation": "read"}),
            )
        };
        assert!(access("é".repeat(MAX_RESOURCE)).is_ok());
        assert_eq!(
            access("é".repeat(MAX_RESOURCE + 1)).unwrap_err().path,
            "resource"
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

    /// `from_json` as it was: the text into a `Value`, then `from_value`.
    fn through_value(text: &str) -> Result<Action, ParseError> {
        let value = serde_json::from_str(text)
            .map_err(|e| ParseError::new("", format!("malformed JSON: {e}")))?;
        Action::from_value(value)
    }

    /// Policies that read the arguments of tools `t*` only.
    fn reading_t() -> ArgsRead {
        let definition = crate::policy::PolicyDefinition::parse(&json!({
            "name": "p", "scope": {"type": "platform"},
            "rules": [{"id": "r", "type": "tool", "effect": "deny", "tools": ["t*"],
                       "when": [{"arg": "a", "op": "exists"}]}]}))
        .unwrap();
        ArgsRead::of([&crate::policy::Policy::draft(
            crate::ids::PolicyId::new("pol_1").unwrap(),
            crate::ids::LineageId::new("lin_1").unwrap(),
            definition,
            jiff::Timestamp::UNIX_EPOCH,
        )])
    }

    /// Checks `from_json_reading` against `through_value` for policies reading everything,
    /// tools `t*`, and nothing: the same action or error, without the arguments not read.
    fn parses_as_through_a_value(text: &str) {
        for args in [ArgsRead::all(), reading_t(), ArgsRead::of([])] {
            let expected = through_value(text).map(|mut action| {
                if let ActionDetail::ToolCall(call) = &mut action.detail
                    && !args.reads(&call.tool)
                {
                    call.args.clear();
                }
                action
            });
            assert_eq!(
                Action::from_json_reading(text, &args),
                expected,
                "{text} reading {args:?}"
            );
        }
    }

    #[test]
    fn text_parses_as_through_a_value() {
        let cases = [
            r#"{"kind":"tool_call","tool":"gmail.send_email","args":{"to":["a@b.c"],"n":{"x":[1,2.5,null]}},"cost_usd":"0.02"}"#,
            r#"{"tool":"t","kind":"tool_call"}"#,
            r#"{"kind":"tool_call","tool":"t","args":null,"cost_usd":null}"#,
            r#"{"kind":"tool_call","tool":"t","cost_usd":1.5}"#,
            r#"{"kind":"tool_call","tool":"t","cost_usd":-1}"#,
            r#"{"kind":"tool_call","tool":null}"#,
            r#"{"kind":"tool_call","tool":"t","text":null}"#,
            r#"{"kind":"tool_call","tool":"t","extra":1}"#,
            r#"{"kind":"tool_call","tool":"t","tool":"u"}"#,
            r#"{"kind":"tool_call","kind":"output","text":"hi"}"#,
            r#"{"kind":"tool_call","tool":"t","args":{"a":1,"a":2}}"#,
            r#"{"kind":"tool_call","tool":"u","args":{"a":1,"a":2}}"#,
            r#"{"kind":"tool_call","tool":"u","args":{"a":[1,{"b":1e400}]}}"#,
            r#"{"kind":"tool_call","tool":"u","args":{"a":"\u0000"}}"#,
            r#"{"kind":"tool_call","tool":"u","args":{"a":"\u00"}}"#,
            r#"{"kind":"tool_call","tool":"u","args":[]}"#,
            r#"{"kind":"tool_call","tool":"u","args":{"a":"x"},"args":{}}"#,
            r#"{"kind":"tool_call","args":{"a":"x"},"tool":"u"}"#,
            r#"{"kind":"tool_call","args":{"a":"\u0000"},"tool":"u"}"#,
            r#"{"kind":"tool_call","tool":"t","args":{"k\u0000":1}}"#,
            r#"{"kind":"tool_call","tool":"t","args":{"x":{"l":[1,"\u0000"]}}}"#,
            r#"{"kind":"tool_call","tool":""}"#,
            r#"{"kind":"tool\u005fcall","tool":"t"}"#,
            r#"{"kind":"data_access","resource":"crm//a/./42","operation":"read","labels":["pii"]}"#,
            r#"{"kind":"data_access","resource":"a","operation":{"read":null},"labels":null}"#,
            r#"{"kind":"data_access","resource":"/./","operation":"read"}"#,
            r#"{"kind":"data_access","resource":"a","operation":"eat"}"#,
            r#"{"kind":"data_access","resource":"a"}"#,
            r#"{"kind":"output","text":"hi","channel":null}"#,
            r#"{"kind":"output","text":"hi\u0000"}"#,
            r#"{"kind":"output","text":"hi","channel":"email","cost_usd":"1.50"}"#,
            r#"{"kind":"model_call","model":"m","input_tokens":null,"output_tokens":7}"#,
            r#"{"kind":"model_call","model":"m","input_tokens":1.0}"#,
            r#"{"kind":"teleport"}"#,
            r#"{"kind":5}"#,
            "{}",
            "[]",
            r#"{"kind":"tool_call","tool":"t"} x"#,
        ];
        for text in cases {
            assert_eq!(Action::from_json(text), through_value(text), "{text}");
            parses_as_through_a_value(text);
        }
        // What a store keeps (an action serialised) takes the direct path.
        let actions = [
            json!({"kind": "tool_call", "tool": "gmail.send_email", "args": {"to": ["a@b.c"]}, "cost_usd": "0.02"}),
            json!({"kind": "tool_call", "tool": "kb.search"}),
            json!({"kind": "data_access", "resource": "crm/42", "operation": "read", "labels": ["pii"]}),
            json!({"kind": "output", "text": "hi", "channel": "email", "cost_usd": 1.5}),
            json!({"kind": "model_call", "model": "m", "input_tokens": 3}),
        ];
        for action in actions {
            let stored = serde_json::to_string(&Action::parse(&action).unwrap()).unwrap();
            for args in [ArgsRead::all(), ArgsRead::of([])] {
                let mut de = serde_json::Deserializer::from_str(&stored);
                let direct = Reading(&args).deserialize(&mut de).ok();
                assert!(direct.and_then(Fields::into_action).is_some(), "{stored}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        #[test]
        fn any_mix_of_fields_parses_as_through_a_value(
            kind in 0usize..5,
            fields in proptest::collection::vec((0usize..12, 0usize..12), 0..6),
        ) {
            use std::fmt::Write as _;
            const NAMES: [&str; 12] = ["cost_usd", "tool", "args", "resource", "operation",
                "labels", "text", "channel", "model", "input_tokens", "output_tokens", "other"];
            let kinds = ["tool_call", "data_access", "output", "model_call", "nothing"];
            let values = ["null", r#""read""#, "3", "-1.5", r#"{"to":["a@acme.com"],"n":1}"#,
                r#"["pii","x"]"#, r#""0.25""#, r#""t""#, r#"{"x":1e400}"#, r#"{"k\u0000":1}"#,
                r#"{"a":["\u0000"]}"#, r#"{"a":1,"a":{"b":[]}}"#];
            let mut text = format!("{{\"kind\":\"{}\"", kinds[kind]);
            for (name, value) in fields {
                write!(text, ",\"{}\":{}", NAMES[name], values[value]).unwrap();
            }
            text.push('}');
            parses_as_through_a_value(&text);
        }
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
