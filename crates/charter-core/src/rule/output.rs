//! The `output` rule: phrases, regexes, PII, length and JSON Schema checks on outgoing text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check_list;
use crate::parse::{self, ParseError};
use crate::pattern::Pattern;
use crate::pii::PiiKind;

/// The longest deny phrase, in bytes.
pub const MAX_PHRASE: usize = 1024;

/// Applies to `output` actions (only to `channels`, when given). Each check is optional, but a
/// rule has at least one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputRule {
    /// Only outputs on these channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Literals that may not appear, ignoring case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_phrases: Option<Vec<String>>,
    /// Regexes that may not match anywhere in the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_regex: Option<Vec<Pattern>>,
    /// Kinds of personal data that may not appear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<Vec<PiiKind>>,
    /// The most characters (Unicode scalar values) an output may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<u64>,
    /// The output must be JSON valid against this schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub json_schema: Option<Value>,
}

impl OutputRule {
    pub(super) fn check(&self) -> Result<(), ParseError> {
        if self.deny_phrases.is_none()
            && self.deny_regex.is_none()
            && self.pii.is_none()
            && self.max_chars.is_none()
            && self.json_schema.is_none()
        {
            return Err(ParseError::new(
                "",
                "an output rule needs at least one of `deny_phrases`, `deny_regex`, `pii`, `max_chars`, `json_schema`",
            ));
        }
        if let Some(channels) = &self.channels {
            check_list(channels, "channels")?;
        }
        if let Some(phrases) = &self.deny_phrases {
            check_list(phrases, "deny_phrases")?;
            for (i, phrase) in phrases.iter().enumerate() {
                if phrase.is_empty() || phrase.len() > MAX_PHRASE {
                    return Err(ParseError::new(
                        parse::index("deny_phrases", i),
                        format!("a phrase is 1 to {MAX_PHRASE} bytes"),
                    ));
                }
            }
        }
        if let Some(patterns) = &self.deny_regex {
            check_list(patterns, "deny_regex")?;
        }
        if let Some(kinds) = &self.pii {
            check_list(kinds, "pii")?;
        }
        if self.max_chars == Some(0) {
            return Err(ParseError::new("max_chars", "must be a positive integer"));
        }
        if let Some(schema) = &self.json_schema {
            parse::check_depth(schema, "json_schema")?;
            compile_schema(schema).map_err(|m| ParseError::new("json_schema", m))?;
        }
        Ok(())
    }
}

/// Compiles a JSON Schema. Without the crate's default features no remote or file `$ref` is
/// ever fetched, so a tenant's schema cannot make the server read URLs or files.
pub(crate) fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(format!(
            "a JSON Schema is an object or a boolean, found {}",
            parse::kind_of(schema)
        ));
    }
    jsonschema::validator_for(schema).map_err(|e| format!("not a usable JSON Schema: {e}"))
}
