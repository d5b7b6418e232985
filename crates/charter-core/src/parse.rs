//! Parsing outside input into typed values, with errors that name the JSON path of the bad field.
//!
//! Every parser of outside input in Charter reports a [`ParseError`]: a path such as
//! `rules[2].when[0].op` and a message a person can act on. Internally tagged values (rules keyed
//! by `type`, actions keyed by `kind`) are dispatched by hand, because serde's buffering of tagged
//! enums would lose the path inside them.

use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The deepest a JSON value inside one field may nest, in levels of arrays and objects (the
/// field's own array or object is the first): a tool call's `args`, a condition's `value`, an
/// output rule's `json_schema`, a run's `metadata`. Real ones nest a few levels; the bound
/// keeps every walk over them (NUL checks, schema compilation and validation) far from the end
/// of a thread's stack.
pub const MAX_DEPTH: usize = 64;

/// The deepest JSON text Charter reads at all, in levels of arrays and objects: `serde_json`'s
/// own recursion limit, which refuses deeper text while parsing it (before any value is built),
/// so no body, line or file can nest deeper. [`MAX_DEPTH`] applies inside each field.
pub const MAX_TEXT_DEPTH: usize = 127;

/// A value from outside that could not be turned into a typed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "(root)" } else { path.as_str() })]
pub struct ParseError {
    /// The JSON path of the offending field (`rules[2].when[0].op`); empty for the whole value.
    pub path: String,
    /// What is wrong, for people.
    pub message: String,
}

impl ParseError {
    /// An error at `path` (relative to the value being parsed).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Places this error, found inside a nested value, under `prefix` (e.g. `rules[2]`).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join(prefix, &self.path);
        self
    }
}

/// Joins two path fragments: `join("rules[2]", "when[0]") == "rules[2].when[0]"`.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => prefix.to_owned(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

/// Path of the `index`th element of the list at `path`.
pub(crate) fn index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Deserializes a JSON value into `T`, naming the path of the first problem.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        to_error(&path, &e.into_inner().to_string())
    })
}

/// Deserializes an owned JSON value into `T`, moving its strings instead of copying them.
pub fn from_owned<T: DeserializeOwned>(value: Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        to_error(&path, &e.into_inner().to_string())
    })
}

/// Parses JSON text into `T`, naming the path of the first problem (syntax errors carry their
/// line and column in the message).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        to_error(&path, &e.into_inner().to_string())
    })?;
    Ok(value)
}

/// Parses JSON text into a value, as every body, import line and stored action is read: an
/// error is `malformed JSON: ...` at the root, and text nested past [`MAX_TEXT_DEPTH`] says so.
pub fn json(text: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(text)
        .map_err(|e| ParseError::new("", format!("malformed JSON: {}", json_error(&e))))
}

/// `serde_json`'s message for an error in JSON text, its recursion limit named as
/// [`MAX_TEXT_DEPTH`]: for the readers of JSON text that word their own errors (the
/// workspace's forms, the CLI's files).
pub fn json_error(e: &serde_json::Error) -> String {
    depth_message(&e.to_string())
}

/// `serde_json` names its recursion limit without its value ("recursion limit exceeded at line
/// 1 column 128"); the message a person gets names the limit.
fn depth_message(message: &str) -> String {
    match message.strip_prefix("recursion limit exceeded") {
        Some(at) => format!(
            "JSON nests at most {MAX_TEXT_DEPTH} levels of arrays and objects; this goes deeper{at}"
        ),
        None => message.to_owned(),
    }
}

/// Refuses a value nested deeper than [`MAX_DEPTH`] at `path`. Iterative, so a value of any
/// depth is judged without recursion.
pub fn check_depth(value: &Value, path: &str) -> Result<(), ParseError> {
    within_depth(std::iter::once(value), 1, path)
}

/// Refuses an object (a tool call's `args`, a run's `metadata`) nested deeper than
/// [`MAX_DEPTH`] at `path`, the object itself being the first level.
pub fn check_object_depth(
    object: &serde_json::Map<String, Value>,
    path: &str,
) -> Result<(), ParseError> {
    within_depth(object.values(), 2, path)
}

/// Whether `values`, each at level `level` when it is an array or object, nest within
/// [`MAX_DEPTH`].
fn within_depth<'v>(
    values: impl Iterator<Item = &'v Value>,
    level: usize,
    path: &str,
) -> Result<(), ParseError> {
    let nested = |value: &&Value| matches!(value, Value::Array(_) | Value::Object(_));
    // Only arrays and objects are kept, each with its own level.
    let mut pending: Vec<(&Value, usize)> = values.filter(nested).map(|v| (v, level)).collect();
    while let Some((value, depth)) = pending.pop() {
        if depth > MAX_DEPTH {
            return Err(ParseError::new(
                path,
                format!("at most {MAX_DEPTH} levels of nested arrays and objects"),
            ));
        }
        let inner = depth + 1;
        match value {
            Value::Array(items) => pending.extend(items.iter().filter(nested).map(|v| (v, inner))),
            Value::Object(map) => pending.extend(map.values().filter(nested).map(|v| (v, inner))),
            _ => {}
        }
    }
    Ok(())
}

/// Turns serde's message into a [`ParseError`], moving the name of an unknown or missing field
/// into the path, so the path points at the offending field itself.
fn to_error(path: &str, message: &str) -> ParseError {
    let path = if path == "." { "" } else { path };
    for lead in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(lead)
            && let Some(end) = rest.find('`')
        {
            let field = &rest[..end];
            let what = if lead.starts_with("unknown") {
                format!("unknown field `{field}`")
            } else {
                format!("missing field `{field}`")
            };
            // serde_path_to_error already ends the path with an unknown field's name.
            let already = path == field || path.ends_with(&format!(".{field}"));
            let path = if already {
                path.to_owned()
            } else {
                join(path, field)
            };
            return ParseError::new(path, what);
        }
    }
    // serde_json appends " at line L column C" for text input; keep it, it helps people.
    ParseError::new(path, depth_message(message))
}

/// Reads an optional field whose absence means its type's default, taking `null` as absent
/// (`#[serde(default, deserialize_with = "...")]`); any other value must be of the field's type.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A count (`null` or absent: 0) written as JSON Schema's `integer` allows it: `3` or `3.0`.
/// A number with a fraction, a negative one, or one past 2^53 (where a float no longer holds
/// every integer) is refused.
pub fn whole_count<'de, D>(deserializer: D) -> Result<u64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match Option::<serde_json::Number>::deserialize(deserializer)? {
        None => Ok(0),
        Some(n) => match (n.as_u64(), n.as_f64()) {
            (Some(whole), _) => Ok(whole),
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a whole number in 0..=2^53, which u64 holds exactly"
            )]
            (None, Some(f)) if f.fract() == 0.0 && (0.0..=EXACT).contains(&f) => Ok(f as u64),
            _ => Err(D::Error::custom(format!(
                "invalid value: {n}, expected a whole number of at least 0"
            ))),
        },
    }
}

/// Takes the string tag `name` out of a JSON object (for `type` or `kind` dispatch).
pub(crate) fn take_tag(
    object: &mut serde_json::Map<String, Value>,
    name: &str,
) -> Result<String, ParseError> {
    match object.remove(name) {
        Some(Value::String(tag)) => Ok(tag),
        Some(other) => Err(ParseError::new(
            name,
            format!("expected a string, found {}", kind_of(&other)),
        )),
        None => Err(ParseError::new(name, format!("missing field `{name}`"))),
    }
}

/// Describes the JSON type of a value, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Requires a JSON object, or names what was found instead.
pub(crate) fn object(
    value: &Value,
    what: &str,
) -> Result<serde_json::Map<String, Value>, ParseError> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        other => Err(ParseError::new(
            "",
            format!("{what} must be a JSON object, found {}", kind_of(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist only to be parsed")]
    struct Inner {
        op: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist only to be parsed")]
    struct Outer {
        when: Vec<Inner>,
    }

    #[test]
    fn unknown_field_path_names_the_field() {
        let err = from_str::<Outer>(r#"{"when":[{"op":"eq","opp":1}]}"#).unwrap_err();
        assert_eq!(err.path, "when[0].opp");
        assert_eq!(err.message, "unknown field `opp`");
    }

    #[test]
    fn missing_field_path_names_the_field() {
        let err = from_str::<Outer>(r#"{"when":[{}]}"#).unwrap_err();
        assert_eq!(err.path, "when[0].op");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = from_str::<Outer>(r#"{"when":[{"op":3}]}"#).unwrap_err();
        assert_eq!(err.path, "when[0].op");
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn syntax_error_has_position() {
        let err = from_str::<Outer>(r#"{"when":[}"#).unwrap_err();
        assert!(err.message.contains("line 1"), "{}", err.message);
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("rules[2]", "when[0].op"), "rules[2].when[0].op");
        assert_eq!(join("rules", "[2]"), "rules[2]");
        assert_eq!(join("", "op"), "op");
        assert_eq!(join("rules[1]", ""), "rules[1]");
    }
}
