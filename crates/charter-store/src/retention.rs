//! Retention: how long recorded history is kept, and the pruning pass that removes what is
//! older, in short batches (each its own transaction, on SQLite in turn with the group commit),
//! so checks wait for one batch at most.
//!
//! - **Runs and their actions** go a whole run at a time, once the run ended before the cutoff:
//!   a running run is never touched and Validate never replays half a run. The cutoff is held
//!   back to the earliest instant an open window of a rate or cost rule of an agent or tenant
//!   may still read ([`Rule::history_from`]), over every non-draft policy, so a counter seeded
//!   later (its rule activated later, or a subject's first claim) still counts its whole
//!   window or period.
//! - **Violations** before the cutoff's 15-minute slot, with the Monitor's counts of the slots
//!   before it, so counts and events agree.
//! - **Audit entries** before the cutoff, oldest first per chain; the chain's anchor records
//!   the last one removed, and verification starts from it.

use charter_core::rule::{Rule, parse_rules};
use jiff::{SignedDuration, Timestamp};

use crate::Store;
use crate::error::StoreError;

/// Runs deleted (with their actions) per transaction.
pub(crate) const RUNS_PER_BATCH: i64 = 500;
/// Violations or audit entries deleted per transaction.
pub(crate) const ROWS_PER_BATCH: i64 = 5_000;

/// How long each kind of history is kept; `None` keeps it forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Ended runs with their actions, from their end.
    pub actions: Option<SignedDuration>,
    /// Violation events and their counts.
    pub violations: Option<SignedDuration>,
    /// Audit entries.
    pub audit: Option<SignedDuration>,
}

impl Retention {
    /// Whether anything is ever removed.
    pub fn removes_anything(&self) -> bool {
        self.actions.is_some() || self.violations.is_some() || self.audit.is_some()
    }
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs.
    pub runs: u64,
    /// Their actions.
    pub actions: u64,
    /// Violation events.
    pub violations: u64,
    /// Audit entries.
    pub audit_entries: u64,
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, other: Pruned) {
        self.runs += other.runs;
        self.actions += other.actions;
        self.violations += other.violations;
        self.audit_entries += other.audit_entries;
    }
}

/// One kind of batch, with its cutoff in Unix milliseconds.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Runs that ended before `before`, with their actions.
    Runs { before: i64 },
    /// Violations before `before`, a slot's start, and the counts of the slots before it.
    Violations { before: i64 },
    /// The entries of `chain` before `before`.
    Audit { chain: String, before: i64 },
}

/// A rule whose counters may still read recorded history from `from`: a pass keeps the runs
/// that ended after it, even when the retention would remove them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The earliest instant the rule's open window or period may still count.
    pub from: Timestamp,
    /// Its policy version.
    pub policy_id: String,
    /// The policy's name.
    pub policy_name: String,
    /// The policy's version number.
    pub version: u32,
    /// The rule.
    pub rule_id: String,
}

/// What one pruning pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// What it removed.
    pub pruned: Pruned,
    /// The rule that held the actions' cutoff back, when one did.
    pub held_back: Option<HeldBack>,
}

/// The earliest history any rule of `policies` (id, name, version, rules text) may still read
/// at `now`, and the rule that reads it.
pub(crate) fn floor(
    policies: &[(String, String, u32, String)],
    now: Timestamp,
) -> Result<Option<HeldBack>, StoreError> {
    let mut earliest: Option<HeldBack> = None;
    for (id, name, version, text) in policies {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let rules: Vec<Rule> = parse_rules(&value, "rules")
            .map_err(|e| StoreError::Backend(format!("policy {id}'s stored rules: {e}")))?;
        for rule in &rules {
            let Some(from) = rule.history_from(now) else {
                continue;
            };
            if earliest.as_ref().is_none_or(|f| from < f.from) {
                earliest = Some(HeldBack {
                    from,
                    policy_id: id.clone(),
                    policy_name: name.clone(),
                    version: *version,
                    rule_id: rule.id.to_string(),
                });
            }
        }
    }
    Ok(earliest)
}

/// `now - kept`, in Unix milliseconds.
fn before(now: Timestamp, kept: SignedDuration) -> i64 {
    now.as_millisecond()
        .saturating_sub(i64::try_from(kept.as_millis()).unwrap_or(i64::MAX))
}

/// One pruning pass at `now` (see the module documentation).
pub(crate) async fn prune(
    store: &Store,
    retention: &Retention,
    now: Timestamp,
) -> Result<Pass, StoreError> {
    let mut pruned = Pruned::default();
    let mut held_back = None;
    if let Some(kept) = retention.actions {
        let mut cutoff = before(now, kept);
        if let Some(floor) = floor(&store.limit_policies().await?, now)?
            && floor.from.as_millisecond() < cutoff
        {
            cutoff = floor.from.as_millisecond();
            held_back = Some(floor);
        }
        pruned += all_of(store, Step::Runs { before: cutoff }).await?;
    }
    if let Some(kept) = retention.violations {
        // At the start of a slot of every grain of the Monitor's counts, so each count is of
        // events either all removed or all kept.
        let slot = crate::commit::GRAINS
            .iter()
            .map(|grain| grain.ms)
            .max()
            .unwrap_or(1);
        let cutoff = before(now, kept).div_euclid(slot) * slot;
        pruned += all_of(store, Step::Violations { before: cutoff }).await?;
    }
    if let Some(kept) = retention.audit {
        let cutoff = before(now, kept);
        for chain in store.audit_chains().await? {
            pruned += all_of(
                store,
                Step::Audit {
                    chain,
                    before: cutoff,
                },
            )
            .await?;
        }
    }
    Ok(Pass { pruned, held_back })
}

/// Batches of `step` until none is left.
async fn all_of(store: &Store, step: Step) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    loop {
        let (batch, more) = store.prune_batch(&step).await?;
        pruned += batch;
        if !more {
            return Ok(pruned);
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    #[test]
    fn the_floor_is_the_earliest_rule_and_names_it() {
        let now: Timestamp = "2026-03-17T10:20:30Z".parse().unwrap();
        let policies = vec![
            (
                "pol_a".to_owned(),
                "rates".to_owned(),
                1,
                r#"[{"id": "r", "type": "rate", "limit": 5, "window": "1h", "per": "agent"}]"#
                    .to_owned(),
            ),
            (
                "pol_b".to_owned(),
                "budget".to_owned(),
                3,
                r#"[{"id": "c", "type": "cost", "max_usd": "10", "period": "day", "per": "tenant"},
                    {"id": "r", "type": "rate", "limit": 5, "window": "1h", "per": "run"}]"#
                    .to_owned(),
            ),
        ];
        let floor = super::floor(&policies, now).unwrap().unwrap();
        assert_eq!(
            floor.from,
            "2026-03-17T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!((floor.policy_id.as_str(), floor.version), ("pol_b", 3));
        assert_eq!(floor.rule_id, "c");
        assert_eq!(
            super::floor(&policies[..1], now).unwrap().unwrap().rule_id,
            "r"
        );
        assert_eq!(super::floor(&[], now).unwrap(), None);
    }
}
