//! The `cost` rule: a spending cap per run, agent or tenant, over a run or a calendar period.

use serde::{Deserialize, Serialize};

use super::rate::Per;
use crate::calendar::{Period, Zone};
use crate::money::Money;
use crate::parse::ParseError;

/// An action is refused, and its run halted, when the spend already recorded for the key in the
/// period plus the action's `cost_usd` exceeds `max_usd` (reaching the cap exactly is allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostRule {
    /// The cap.
    pub max_usd: Money,
    /// `run`, or a calendar period in `timezone`.
    pub period: Period,
    /// Whose spend is counted together (default `run`).
    #[serde(default)]
    pub per: Per,
    /// The zone of the calendar periods (default UTC).
    #[serde(default)]
    pub timezone: Zone,
}

impl CostRule {
    pub(super) fn check(&self) -> Result<(), ParseError> {
        // "The spend of an agent over a run" has no meaning apart from the run's own spend.
        if self.period == Period::Run && self.per != Per::Run {
            return Err(ParseError::new(
                "per",
                "with `period: run` the spend counted is the run's own: use `per: run`, or a calendar period",
            ));
        }
        Ok(())
    }
}
