//! The export document `charter.policy/v1`: one policy as portable JSON, and its JSON Schema.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{LineageId, PolicyId};
use crate::parse::{self, ParseError};
use crate::policy::{Policy, PolicyDefinition, Status};
use crate::rule::Rule;
use crate::scope::Scope;

/// The format tag of the document.
pub const FORMAT: &str = "charter.policy/v1";
/// The most documents one import may hold.
pub const MAX_DOCUMENTS: usize = 1000;

/// The `format` field: always `charter.policy/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatTag;

impl Serialize for FormatTag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(FORMAT)
    }
}

impl schemars::JsonSchema for FormatTag {
    fn schema_name() -> Cow<'static, str> {
        "FormatTag".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"const": FORMAT})
    }
}

/// Where an exported document came from: informative only; import ignores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportedFrom {
    /// The exported version's id.
    pub policy_id: PolicyId,
    /// Its lineage.
    pub lineage_id: LineageId,
    /// Its version number.
    pub version: u32,
    /// Its status when exported.
    pub status: Status,
    /// Its revision when exported.
    pub revision: u32,
    /// When it was exported.
    #[schemars(with = "String")]
    pub exported_at: Timestamp,
}

/// One policy as a portable document (product.md §8).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(title = "Charter policy document (charter.policy/v1)")]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Always `charter.policy/v1`.
    pub format: FormatTag,
    /// 1–200 characters.
    #[schemars(length(min = 1, max = 200), extend("pattern" = crate::policy::NAME_PATTERN))]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schemars(length(max = 10_000), extend("pattern" = "^[^\\x00]*$"))]
    pub description: String,
    /// Where the policy applies.
    pub scope: Scope,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Where the document came from, when it was exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_from: Option<ExportedFrom>,
}

impl PolicyDocument {
    /// The document of a stored policy.
    pub fn export(policy: &Policy, exported_at: Timestamp) -> PolicyDocument {
        PolicyDocument {
            format: FormatTag,
            name: policy.definition.name.clone(),
            description: policy.definition.description.clone(),
            scope: policy.definition.scope.clone(),
            rules: policy.definition.rules.clone(),
            exported_from: Some(ExportedFrom {
                policy_id: policy.id.clone(),
                lineage_id: policy.lineage_id.clone(),
                version: policy.version,
                status: policy.status,
                revision: policy.revision,
                exported_at,
            }),
        }
    }

    /// The definition a document describes (what import turns into a draft).
    pub fn into_definition(self) -> PolicyDefinition {
        PolicyDefinition {
            name: self.name,
            description: self.description,
            scope: self.scope,
            rules: self.rules,
        }
    }

    /// Parses one document strictly; paths are relative to it (`rules[2].when[0].op`).
    pub fn parse(value: &Value) -> Result<PolicyDocument, ParseError> {
        let mut object = parse::object(value, "a policy document")?;
        let format = parse::take_tag(&mut object, "format")?;
        if format != FORMAT {
            return Err(ParseError::new(
                "format",
                format!("unknown format {format:?}, expected {FORMAT:?}"),
            ));
        }
        let exported_from: Option<ExportedFrom> = match object.remove("exported_from") {
            Some(from) => parse::from_value(&from).map_err(|e| e.under("exported_from"))?,
            None => None,
        };
        // The rest is exactly a definition, parsed by the same code as an API body.
        let definition = PolicyDefinition::parse(&Value::Object(object))?;
        Ok(PolicyDocument {
            format: FormatTag,
            name: definition.name,
            description: definition.description,
            scope: definition.scope,
            rules: definition.rules,
            exported_from,
        })
    }

    /// Parses what an import receives: one document, or an array of them (paths then start
    /// with the document's index, `[1].rules[0].type`). All or nothing.
    pub fn parse_many(text: &str) -> Result<Vec<PolicyDocument>, ParseError> {
        let value: Value = parse::from_str(text)?;
        match &value {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(ParseError::new("", "no documents to import"));
                }
                if items.len() > MAX_DOCUMENTS {
                    return Err(ParseError::new(
                        "",
                        format!("at most {MAX_DOCUMENTS} documents in one import"),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        PolicyDocument::parse(item).map_err(|e| e.under(&format!("[{i}]")))
                    })
                    .collect()
            }
            _ => Ok(vec![PolicyDocument::parse(&value)?]),
        }
    }
}

/// The JSON Schema of the export format, generated from the types.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(PolicyDocument).to_value();
    // A rule's fields come from two places (`id`/`description` and its type's fields, through
    // a tagged enum), where `additionalProperties` cannot see both; 2020-12's
    // `unevaluatedProperties` can, so unknown rule fields are refused as the parser does.
    if let Some(Value::Object(def)) = schema.pointer_mut("/$defs/Rule") {
        def.insert("unevaluatedProperties".to_owned(), Value::Bool(false));
    }
    sorted(schema)
}

/// The JSON Schema of a policy version as stored and shown (`Policy`), whose `$defs` are those
/// of [`json_schema`] (the same types, from the same generator).
pub fn policy_json_schema() -> Value {
    sorted(schemars::schema_for!(crate::policy::Policy).to_value())
}

/// The JSON Schema of a policy's definition (`PolicyDefinition`), what `POST /v1/policies`
/// takes; closed to other fields, as [`crate::PolicyDefinition::parse`] is.
pub fn definition_json_schema() -> Value {
    let mut schema = schemars::schema_for!(crate::policy::PolicyDefinition).to_value();
    if let Value::Object(root) = &mut schema {
        root.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    sorted(schema)
}

/// The JSON Schema of what a replay reports (`ReplayReport`), the body of Validate's answer.
pub fn replay_report_json_schema() -> Value {
    sorted(schemars::schema_for!(crate::replay::ReplayReport).to_value())
}

/// Sorts object keys at every level, so the schema's text is the same whether or not another
/// crate in the build turned on `serde_json`'s `preserve_order`.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
