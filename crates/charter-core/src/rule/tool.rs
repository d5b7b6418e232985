//! The `tool` rule: allow-lists and denies of tool calls, with conditions on arguments.

use serde::{Deserialize, Serialize};

use super::{Condition, check_list};
use crate::parse::{self, ParseError};
use crate::pattern::ToolGlob;

/// The most conditions one rule may hold.
pub const MAX_CONDITIONS: usize = 64;

/// Whether a rule lists what is allowed or what is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// An allow-list: anything it does not match is blocked.
    Allow,
    /// A deny: what it matches is blocked.
    Deny,
}

impl Effect {
    /// Both effects, deny first (the likelier choice).
    pub const ALL: [Effect; 2] = [Effect::Deny, Effect::Allow];

    /// The effect as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// `deny`: a call to a matching tool is blocked when all `when` conditions hold. `allow`: a call
/// to a tool matching none of `tools` is blocked, and a matching call is blocked unless its
/// conditions hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// Allow-list or deny.
    pub effect: Effect,
    /// Globs over tool names.
    pub tools: Vec<ToolGlob>,
    /// Conditions on the call's arguments, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
}

impl ToolRule {
    pub(super) fn check(&self) -> Result<(), ParseError> {
        check_list(&self.tools, "tools")?;
        if self.when.len() > MAX_CONDITIONS {
            return Err(ParseError::new(
                "when",
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        for (i, condition) in self.when.iter().enumerate() {
            condition
                .check()
                .map_err(|e| e.under(&parse::index("when", i)))?;
        }
        Ok(())
    }
}
