//! Rate and cost limit state: claims made by an action, and their atomic settlement.
//!
//! A claim names a counter by what it counts, not by the rule that counts it: two rules (or a
//! rule and its clone in the next version) with the same filter, window and key share one
//! counter, so a clone keeps the budget already used (product.md §4). [`MemoryLimits`] keeps
//! the state in memory, for one node and for replay; the store keeps it in the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use rustc_hash::FxHashMap;

use crate::calendar::Period;
use crate::engine::{Outcome, RuleSource, Violation};
use crate::money::Money;
use crate::rule::RuleType;

/// Whose actions or spend a counter holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// One run.
    Run(Box<str>),
    /// One agent (tenant, agent).
    Agent(Box<str>, Box<str>),
    /// One tenant.
    Tenant(Box<str>),
}

/// The identity of a counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CounterKey {
    /// Matching allowed actions in a rolling window.
    Rate {
        /// The canonical text of the rate rule's match filter.
        filter: Arc<str>,
        /// The window's length.
        window_ms: u64,
        /// Whose actions.
        subject: Subject,
    },
    /// Allowed spend in a run or a calendar period.
    Cost {
        /// The period kind.
        period: Period,
        /// The zone of the calendar.
        zone: Arc<str>,
        /// Whose spend.
        subject: Subject,
    },
}

/// The span of time a claim's counter covers at the moment of the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimWindow {
    /// The rolling window ending now.
    Rolling {
        /// Its length.
        millis: u64,
    },
    /// A calendar period.
    Calendar {
        /// Its first instant.
        start: Timestamp,
        /// The first instant after it.
        end: Timestamp,
    },
    /// The whole run.
    Run,
}

impl Subject {
    /// A text naming the subject (`agent:acme/support`), as it appears in storage keys.
    pub fn storage_text(&self) -> String {
        let mut out = String::with_capacity(32);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Subject::Run(run) => {
                out.push_str("run:");
                out.push_str(run);
            }
            Subject::Agent(tenant, agent) => {
                out.push_str("agent:");
                out.push_str(tenant);
                out.push('/');
                out.push_str(agent);
            }
            Subject::Tenant(tenant) => {
                out.push_str("tenant:");
                out.push_str(tenant);
            }
        }
    }
}

impl CounterKey {
    /// Whose actions or spend the counter holds.
    pub fn subject(&self) -> &Subject {
        match self {
            CounterKey::Rate { subject, .. } | CounterKey::Cost { subject, .. } => subject,
        }
    }

    /// A text naming the counter, for stores that keep counters in a table. Ids cannot hold
    /// `|` or a newline, so the text is unambiguous.
    pub fn storage_key(&self) -> String {
        let mut out = String::with_capacity(64);
        match self {
            CounterKey::Rate {
                filter,
                window_ms,
                subject,
            } => {
                out.push_str("rate|");
                out.push_str(&window_ms.to_string());
                out.push('|');
                subject.write(&mut out);
                out.push('|');
                out.push_str(filter);
            }
            CounterKey::Cost {
                period,
                zone,
                subject,
            } => {
                out.push_str("cost|");
                out.push_str(period.as_str());
                out.push('|');
                out.push_str(zone);
                out.push('|');
                subject.write(&mut out);
            }
        }
        out
    }
}

/// Where a claim's counter lives in a table of buckets, at the moment of the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// The bucket this action's amount is added to.
    pub commit: i64,
    /// The first bucket that counts now (inclusive).
    pub first: i64,
    /// The last bucket that counts now (inclusive).
    pub last: i64,
    /// Buckets before this one can no longer count and may be dropped.
    pub prune_before: Option<i64>,
    /// How far behind the newest bucket a counter keeps history, in buckets: a claim whose
    /// window reaches further back than that cannot be counted honestly and fails closed.
    pub kept: Option<i64>,
}

impl ClaimWindow {
    /// The buckets of this window at `at`, as [`MemoryLimits`] counts them: rolling windows in
    /// buckets of 1/60 of the window (whole buckets count, so a limit may block up to 1/60
    /// early, never late, and later buckets count too); a calendar period in one bucket named
    /// by its start; a run in bucket 0.
    pub fn buckets(self, at: Timestamp) -> Buckets {
        let at = at.as_millisecond();
        match self {
            ClaimWindow::Rolling { millis } => {
                let window = i64::try_from(millis).unwrap_or(i64::MAX);
                let width = (window.saturating_add(59) / 60).max(1);
                Buckets {
                    commit: at.div_euclid(width),
                    first: at.saturating_sub(window).div_euclid(width),
                    last: i64::MAX,
                    prune_before: Some(
                        at.saturating_sub(window.saturating_mul(2))
                            .div_euclid(width),
                    ),
                    kept: Some(window.saturating_mul(2).div_euclid(width)),
                }
            }
            ClaimWindow::Calendar { start, .. } => {
                let start = start.as_millisecond();
                Buckets {
                    commit: start,
                    first: start,
                    last: start,
                    prune_before: None,
                    kept: None,
                }
            }
            ClaimWindow::Run => Buckets {
                commit: 0,
                first: 0,
                last: 0,
                prune_before: None,
                kept: None,
            },
        }
    }
}

/// What one action asks of one limit: `amount` more on the counter `key`, which may not pass
/// `cap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The counter.
    pub key: CounterKey,
    /// 1 for a rate claim; micro-dollars for a cost claim (possibly 0).
    pub amount: u64,
    /// The most the counter may hold.
    pub cap: u64,
    /// What part of the counter's history counts now.
    pub window: ClaimWindow,
    /// The rule that claims.
    pub source: Arc<RuleSource>,
    /// The limit, for messages (`10 per 1m (per agent)`).
    pub description: Arc<str>,
}

impl Claim {
    /// The violation of this claim when the counter already held `used`.
    pub fn violation(&self, used: u64) -> Violation {
        let (outcome, message, input) = match self.source.rule_type {
            RuleType::Cost => (
                Outcome::Halt,
                format!(
                    "cost cap {} reached: ${} spent, this action costs ${}",
                    self.description,
                    Money::from_micros(used),
                    Money::from_micros(self.amount)
                ),
                Money::from_micros(self.amount).to_string(),
            ),
            _ => (
                Outcome::Block,
                format!(
                    "rate limit {} reached: {used} matching actions already in the window",
                    self.description
                ),
                format!("{used} in window"),
            ),
        };
        Violation {
            source: Arc::clone(&self.source),
            outcome,
            message,
            matching_input: Some(input),
        }
    }
}

/// A claim that would pass its cap, and what its counter already held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// The claim's index in the slice settled.
    pub claim: usize,
    /// The counter's value before this action.
    pub used: u64,
}

/// How to settle claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Check every claim; commit them all only if none is exceeded. For an action that no
    /// other rule refuses.
    CommitIfWithin,
    /// Check every claim and commit nothing: the action is refused anyway, and only allowed
    /// actions consume budget.
    CheckOnly,
    /// Commit every claim without checking: rebuilding state from recorded allowed actions.
    Record,
}

/// Where rate and cost state lives. `settle` is one atomic step: no other settlement may
/// interleave between its check and its commit.
pub trait Limits {
    /// Settles the claims of one action at `at`, returning the exceeded ones.
    fn settle(&mut self, claims: &[Claim], at: Timestamp, mode: Settle) -> Vec<Exceeded>;
}

/// Limit state in buckets: the one settlement of claims, wherever the counters live.
///
/// Each counter is a table of buckets ([`ClaimWindow::buckets`]): rolling windows in buckets
/// of 1/60 of the window, a calendar period in the bucket named by its start, a run in bucket
/// 0. A claim counts the buckets its window covers at its instant; a claim whose window reaches
/// back before the history a counter keeps (two windows behind its newest bucket) fails
/// closed. One node and replay keep all their state here; a store loads the rows one
/// transaction needs into one, settles in memory, and writes back what
/// [`MemoryLimits::settle_with`] reports committed, so a node's memory, a replay and a
/// database transaction cannot count differently.
#[derive(Debug, Default)]
pub struct MemoryLimits {
    counters: FxHashMap<CounterKey, BTreeMap<i64, u64>>,
}

/// What a claim's counter holds in the buckets of `buckets`.
fn used_in(counter: &BTreeMap<i64, u64>, buckets: Buckets) -> u64 {
    // History older than what the counter keeps was pruned: a claim reaching back there (a
    // clock that lags) cannot be counted honestly and fails closed.
    if let (Some((top, _)), Some(kept)) = (counter.last_key_value(), buckets.kept)
        && buckets.first < top.saturating_sub(kept)
    {
        return u64::MAX;
    }
    // Later buckets count too (rolling windows end at `i64::MAX`): an action recorded "in the
    // future" of this one (clocks of concurrent checks) still shares any window with it.
    counter
        .range(buckets.first..=buckets.last)
        .fold(0u64, |sum, (_, amount)| sum.saturating_add(*amount))
}

impl MemoryLimits {
    /// Empty state.
    pub fn new() -> MemoryLimits {
        MemoryLimits::default()
    }

    /// How many counters are held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether no counter is held.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Takes stored buckets `(bucket, amount)` of counter `key`, added to what it holds.
    pub fn load(&mut self, key: CounterKey, rows: impl IntoIterator<Item = (i64, u64)>) {
        let counter = self.counters.entry(key).or_default();
        for (bucket, amount) in rows {
            let slot = counter.entry(bucket).or_insert(0);
            *slot = slot.saturating_add(amount);
        }
    }

    /// Forgets the counters of one run once it has ended: nothing can claim on them again.
    pub fn forget_run(&mut self, run_id: &str) {
        self.counters.retain(|key, _| {
            !matches!(key, CounterKey::Rate { subject: Subject::Run(r), .. }
                | CounterKey::Cost { subject: Subject::Run(r), .. } if &**r == run_id)
        });
    }

    /// What a counter holds for a claim's window at `at` (0 for an unknown counter).
    pub fn used(&self, claim: &Claim, at: Timestamp) -> u64 {
        self.counters
            .get(&claim.key)
            .map_or(0, |c| used_in(c, claim.window.buckets(at)))
    }

    /// Settles the claims of one action at `at` (see [`Limits::settle`]), telling `committed`
    /// each counter it adds to, once per counter, with the buckets of that claim: what a store
    /// writes back.
    pub fn settle_with(
        &mut self,
        claims: &[Claim],
        at: Timestamp,
        mode: Settle,
        mut committed: impl FnMut(&Claim, Buckets),
    ) -> Vec<Exceeded> {
        let mut exceeded = Vec::new();
        if mode != Settle::Record {
            for (i, claim) in claims.iter().enumerate() {
                let used = self.used(claim, at);
                if used.saturating_add(claim.amount) > claim.cap {
                    exceeded.push(Exceeded { claim: i, used });
                }
            }
        }
        let commit = match mode {
            Settle::CommitIfWithin => exceeded.is_empty(),
            Settle::CheckOnly => false,
            Settle::Record => true,
        };
        if commit {
            // Several rules may claim on one counter (same filter, different caps): the action
            // still counts once.
            let mut done: Vec<&CounterKey> = Vec::with_capacity(claims.len());
            for claim in claims {
                if done.contains(&&claim.key) {
                    continue;
                }
                done.push(&claim.key);
                let buckets = claim.window.buckets(at);
                let counter = self.counters.entry(claim.key.clone()).or_default();
                let slot = counter.entry(buckets.commit).or_insert(0);
                *slot = slot.saturating_add(claim.amount);
                if let Some(before) = buckets.prune_before
                    && counter.first_key_value().is_some_and(|(b, _)| *b < before)
                {
                    *counter = counter.split_off(&before);
                }
                committed(claim, buckets);
            }
        }
        exceeded
    }
}

impl Limits for MemoryLimits {
    fn settle(&mut self, claims: &[Claim], at: Timestamp, mode: Settle) -> Vec<Exceeded> {
        self.settle_with(claims, at, mode, |_, _| {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    #[test]
    fn rolling_buckets_cover_the_window_and_at_most_one_bucket_more() {
        let window = ClaimWindow::Rolling { millis: 60_000 };
        let b = window.buckets(at(1_000_000));
        // Buckets of 1 s: the window (940 s, 1000 s] is buckets 940..=1000.
        assert_eq!((b.commit, b.first, b.last), (1000, 940, i64::MAX));
        assert_eq!((b.prune_before, b.kept), (Some(880), Some(120)));
        let odd = ClaimWindow::Rolling { millis: 7 }.buckets(at(100));
        assert_eq!((odd.commit, odd.first), (100, 93));
    }

    #[test]
    fn calendar_and_run_buckets() {
        let day = ClaimWindow::Calendar {
            start: at(86_400_000),
            end: at(172_800_000),
        };
        assert_eq!(day.buckets(at(90_000_000)).commit, 86_400_000);
        assert_eq!(ClaimWindow::Run.buckets(at(5)).commit, 0);
    }

    #[test]
    fn storage_keys_name_what_is_counted() {
        let key = CounterKey::Rate {
            filter: "kinds=\ntools=".into(),
            window_ms: 60_000,
            subject: Subject::Agent("acme".into(), "bot".into()),
        };
        assert_eq!(
            key.storage_key(),
            "rate|60000|agent:acme/bot|kinds=\ntools="
        );
        let key = CounterKey::Cost {
            period: Period::Day,
            zone: "Europe/Paris".into(),
            subject: Subject::Tenant("acme".into()),
        };
        assert_eq!(key.storage_key(), "cost|day|Europe/Paris|tenant:acme");
    }
}
