//! The `time` rule: a maximum run duration, and allowed or denied windows of the week.

use serde::{Deserialize, Serialize};

use crate::calendar::{Span, Window, Zone};
use crate::parse::ParseError;

/// The most windows in one list.
pub const MAX_WINDOWS: usize = 64;

/// `max_run_duration` halts a run that goes on too long; actions outside every `allow` window
/// (when given) or inside a `deny` window are blocked. Windows are read in `timezone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRule {
    /// How long after its start a run may still act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_duration: Option<Span>,
    /// Actions are allowed only inside one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<Window>>,
    /// Actions inside any of these are blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<Window>>,
    /// The zone of the windows (default UTC).
    #[serde(default)]
    pub timezone: Zone,
}

impl TimeRule {
    pub(super) fn check(&self) -> Result<(), ParseError> {
        if self.max_run_duration.is_none() && self.allow.is_none() && self.deny.is_none() {
            return Err(ParseError::new(
                "",
                "a time rule needs at least one of `max_run_duration`, `allow`, `deny`",
            ));
        }
        for (field, windows) in [("allow", &self.allow), ("deny", &self.deny)] {
            if let Some(windows) = windows {
                if windows.is_empty() {
                    return Err(ParseError::new(
                        field,
                        "must not be empty (omit it instead)",
                    ));
                }
                if windows.len() > MAX_WINDOWS {
                    return Err(ParseError::new(
                        field,
                        format!("at most {MAX_WINDOWS} windows"),
                    ));
                }
            }
        }
        Ok(())
    }
}
