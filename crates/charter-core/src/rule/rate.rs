//! The `rate` rule: at most `limit` matching allowed actions in any rolling window, per key.

use serde::{Deserialize, Serialize};

use super::check_list;
use crate::action::ActionKind;
use crate::calendar::Span;
use crate::parse::ParseError;
use crate::pattern::ToolGlob;

/// Whose actions a limit counts.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// Each run on its own (the default).
    #[default]
    Run,
    /// All runs of one agent together.
    Agent,
    /// All runs of all agents of one tenant together.
    Tenant,
}

impl Per {
    /// Every key, the default first.
    pub const ALL: [Per; 3] = [Per::Run, Per::Agent, Per::Tenant];

    /// The key as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Run => "run",
            Per::Agent => "agent",
            Per::Tenant => "tenant",
        }
    }
}

/// Which actions a rate rule counts; both filters must hold when both are given.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RateMatch {
    /// Only actions of these kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<ActionKind>>,
    /// Only tool calls to tools matching these globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolGlob>>,
}

/// At most `limit` matching allowed actions per key in any rolling `window` (product.md §4).
/// Only allowed actions consume budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    /// The most actions in any window.
    pub limit: u32,
    /// The window's length.
    pub window: Span,
    /// Whose actions are counted together (default `run`).
    #[serde(default)]
    pub per: Per,
    /// Which actions count (default: all).
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<RateMatch>,
}

impl RateRule {
    pub(super) fn check(&self) -> Result<(), ParseError> {
        if self.limit == 0 {
            return Err(ParseError::new("limit", "must be a positive integer"));
        }
        if let Some(matcher) = &self.matcher {
            if let Some(kinds) = &matcher.kinds {
                check_list(kinds, "match.kinds")?;
            }
            if let Some(tools) = &matcher.tools {
                check_list(tools, "match.tools")?;
            }
        }
        Ok(())
    }
}
