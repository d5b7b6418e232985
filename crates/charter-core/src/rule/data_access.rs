//! The `data_access` rule: allow-lists and denies of reads, writes and deletes of resources.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use super::check_list;
use super::tool::Effect;
use crate::action::Operation;
use crate::parse::ParseError;
use crate::pattern::ResourceGlob;

/// The longest label, in bytes.
pub const MAX_LABEL: usize = 128;

/// A label carried by a data access (`pii`, `region:us`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    /// Checks and wraps a label: 1–128 bytes, no control characters.
    pub fn new(text: &str) -> Result<Label, String> {
        if text.is_empty() || text.len() > MAX_LABEL {
            return Err(format!("a label is 1 to {MAX_LABEL} bytes"));
        }
        if text.chars().any(char::is_control) {
            return Err("a label cannot hold control characters".to_owned());
        }
        Ok(Label(text.to_owned()))
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Label::new(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Label {
    fn schema_name() -> Cow<'static, str> {
        "Label".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "minLength": 1, "maxLength": MAX_LABEL})
    }
}

/// `deny`: an access is blocked when its resource matches, its operation is listed, and (only
/// when `labels` is given) it carries one of the labels. `allow`: an access with a listed
/// operation to a resource outside the globs is blocked; with `labels`, an access carrying a
/// label not listed is blocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataAccessRule {
    /// Allow-list or deny.
    pub effect: Effect,
    /// Globs over resource paths.
    pub resources: Vec<ResourceGlob>,
    /// The operations the rule governs (default: all three).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<Operation>>,
    /// Labels denied (deny) or permitted (allow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
}

impl DataAccessRule {
    pub(super) fn check(&self) -> Result<(), ParseError> {
        check_list(&self.resources, "resources")?;
        if let Some(operations) = &self.operations {
            check_list(operations, "operations")?;
        }
        if let Some(labels) = &self.labels {
            // An allow rule with an empty label list would mean "no label permitted", which is
            // expressible; a deny rule with none would never fire, which is surely a mistake.
            if labels.is_empty() && self.effect == Effect::Deny {
                return Err(ParseError::new(
                    "labels",
                    "must not be empty on a deny rule (omit it to deny whatever the labels)",
                ));
            }
            if labels.len() > super::MAX_LIST {
                return Err(ParseError::new("labels", "too many labels"));
            }
        }
        Ok(())
    }

    /// Whether the rule governs `operation`.
    pub fn governs(&self, operation: Operation) -> bool {
        self.operations
            .as_ref()
            .is_none_or(|ops| ops.contains(&operation))
    }
}
