//! Policies: a named, scoped set of rules in one lifecycle status, one record per version.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{LineageId, PolicyId};
use crate::parse::{self, ParseError};
use crate::rule::{self, Rule};
use crate::scope::Scope;

/// The longest policy name, in characters.
pub const MAX_NAME: usize = 200;
/// The longest policy description, in characters.
pub const MAX_DESCRIPTION: usize = 10_000;
/// What [`PolicyDefinition::check_name`] takes, as a JSON Schema pattern (with `minLength` 1 and
/// `maxLength` [`MAX_NAME`]): some character that is not white space, and no control character
/// (Unicode's `Cc`, which is what `char::is_control` refuses).
pub const NAME_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Where a policy is in its lifecycle (product.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Editable, never enforced.
    Draft,
    /// Enforced on runs started after activation; immutable.
    Active,
    /// No longer applied to new runs; kept for audit; immutable.
    Deprecated,
}

impl Status {
    /// The status as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Deprecated => "deprecated",
        }
    }
}

/// What an author writes: name, description, scope and rules. Everything else about a policy is
/// owned by the server.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PolicyDefinition {
    /// 1–200 characters; shown in audit entries and violation events.
    #[schemars(length(min = 1, max = 200), extend("pattern" = NAME_PATTERN))]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schemars(length(max = 10_000), extend("pattern" = "^[^\\x00]*$"))]
    pub description: String,
    /// Where the policy applies.
    pub scope: Scope,
    /// The rules, in order; ids are unique within the policy.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl PolicyDefinition {
    /// Checks a name: 1–200 characters, not blank, no control characters.
    pub fn check_name(name: &str) -> Result<(), ParseError> {
        let chars = name.chars().count();
        if chars == 0 || name.trim().is_empty() {
            return Err(ParseError::new("name", "a policy needs a name"));
        }
        if chars > MAX_NAME {
            return Err(ParseError::new(
                "name",
                format!("a name is at most {MAX_NAME} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ParseError::new(
                "name",
                "a name cannot hold control characters",
            ));
        }
        Ok(())
    }

    /// Checks a description: its length, and no NUL.
    pub fn check_description(description: &str) -> Result<(), ParseError> {
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(ParseError::new(
                "description",
                format!("a description is at most {MAX_DESCRIPTION} characters"),
            ));
        }
        // Unlike a name, a description may run over lines; only NUL is refused, which no
        // PostgreSQL text can hold.
        if description.contains('\0') {
            return Err(ParseError::new(
                "description",
                "a description cannot hold the NUL character (\\u0000)",
            ));
        }
        Ok(())
    }

    /// Parses a definition `{name, description?, scope, rules?}` strictly.
    pub fn parse(value: &Value) -> Result<PolicyDefinition, ParseError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            name: String,
            #[serde(default)]
            description: String,
            scope: Value,
            #[serde(default)]
            rules: Option<Value>,
        }
        parse::object(value, "a policy")?;
        let raw: Raw = parse::from_value(value)?;
        Self::check_name(&raw.name)?;
        Self::check_description(&raw.description)?;
        let scope = Scope::parse(&raw.scope).map_err(|e| e.under("scope"))?;
        let rules = match &raw.rules {
            Some(rules) => rule::parse_rules(rules, "rules")?,
            None => Vec::new(),
        };
        Ok(PolicyDefinition {
            name: raw.name,
            description: raw.description,
            scope,
            rules,
        })
    }
}

/// One version of a policy, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Policy {
    /// This version's id.
    pub id: PolicyId,
    /// The chain of versions this one belongs to.
    pub lineage_id: LineageId,
    /// 1, 2, ... within the lineage.
    pub version: u32,
    /// Lifecycle status.
    pub status: Status,
    /// Bumped on every edit of a draft.
    pub revision: u32,
    /// Name, description, scope and rules.
    #[serde(flatten)]
    pub definition: PolicyDefinition,
    /// The version this one was cloned from.
    pub cloned_from: Option<PolicyId>,
    /// When the version was created.
    #[schemars(with = "String")]
    pub created_at: Timestamp,
    /// Who created it (a key id).
    pub created_by: String,
    /// When it was activated.
    #[schemars(with = "Option<String>")]
    pub activated_at: Option<Timestamp>,
    /// Who activated it (a key id).
    pub activated_by: Option<String>,
    /// When it was deprecated.
    #[schemars(with = "Option<String>")]
    pub deprecated_at: Option<Timestamp>,
    /// Who deprecated it (a key id).
    pub deprecated_by: Option<String>,
}

impl Policy {
    /// A new draft, version 1 of its own lineage: handy for tests and in-process use.
    pub fn draft(
        id: PolicyId,
        lineage_id: LineageId,
        definition: PolicyDefinition,
        created_at: Timestamp,
    ) -> Policy {
        Policy {
            id,
            lineage_id,
            version: 1,
            status: Status::Draft,
            revision: 1,
            definition,
            cloned_from: None,
            created_at,
            created_by: String::new(),
            activated_at: None,
            activated_by: None,
            deprecated_at: None,
            deprecated_by: None,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The policy's scope.
    pub fn scope(&self) -> &Scope {
        &self.definition.scope
    }

    /// The policy's rules.
    pub fn rules(&self) -> &[Rule] {
        &self.definition.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_definition_and_names_deep_paths() {
        let d = PolicyDefinition::parse(&json!({
            "name": "Block external email",
            "scope": {"type": "agent", "tenant_id": "acme", "agent_id": "support"},
            "rules": [{"id": "r1", "type": "tool", "effect": "deny", "tools": ["*.send_email"],
                       "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}]}]
        }))
        .unwrap();
        assert_eq!(d.rules.len(), 1);
        let e = PolicyDefinition::parse(&json!({
            "name": "x", "scope": {"type": "platform"},
            "rules": [{"id": "r1", "type": "rate", "limit": 1, "window": "1m"},
                      {"id": "r2", "type": "tool", "effect": "deny", "tools": ["a"],
                       "when": [{"arg": "to", "op": "ends_wiht", "value": "x"}]}]
        }))
        .unwrap_err();
        assert_eq!(e.path, "rules[1].when[0].op");
        let e = PolicyDefinition::parse(&json!({"name": "", "scope": {"type": "platform"}}))
            .unwrap_err();
        assert_eq!(e.path, "name");
        let e = PolicyDefinition::parse(&json!({"name": "n", "scope": {"type": "tenant"}}))
            .unwrap_err();
        assert_eq!(e.path, "scope.tenant_id");
        let e = PolicyDefinition::parse(
            &json!({"name": "n", "scope": {"type": "platform"}, "status": "active"}),
        )
        .unwrap_err();
        assert_eq!(e.path, "status");
        let e = PolicyDefinition::parse(&json!({"name": "n", "scope": {"type": "platform"},
            "rules": [{"id": "a", "type": "rate", "limit": 1, "window": "1m"},
                      {"id": "a", "type": "rate", "limit": 1, "window": "1m"}]}))
        .unwrap_err();
        assert_eq!(e.path, "rules[1].id");
    }
}
