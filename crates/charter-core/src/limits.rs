//! Rate and cost limit state: claims made by an action, and their atomic settlement.
//!
//! A claim names a counter by what it counts, not by the rule that counts it: two rules (or a
//! rule and its clone in the next version) with the same filter, window and key share one
//! counter, so a clone keeps the budget already used (product.md §4). [`MemoryLimits`] keeps
//! the state in memory, for one node and for replay; the store keeps it in the database.

use std::collections::VecDeque;
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

/// In-memory limit state: for one node, and for replay.
#[derive(Debug, Default)]
pub struct MemoryLimits {
    counters: FxHashMap<CounterKey, Counter>,
}

#[derive(Debug)]
enum Counter {
    Rolling(Rolling),
    Calendar(Vec<(i64, u64)>),
    Total(u64),
}

/// A rolling-window count in buckets of 1/60 of the window. Counting whole buckets can only
/// over-count, by at most one bucket: a limit may block up to 1/60 of the window early, never
/// let more through.
#[derive(Debug)]
struct Rolling {
    width: i64,
    buckets: VecDeque<(i64, u64)>,
    /// Buckets before this index were dropped; a claim reaching back before it cannot be
    /// counted honestly and fails closed.
    horizon: i64,
}

/// Calendar periods kept per counter: the current one and a few before it, for actions that
/// arrive slightly out of order.
const CALENDAR_KEPT: usize = 4;

impl Rolling {
    fn new(window_ms: u64) -> Rolling {
        let window = i64::try_from(window_ms).unwrap_or(i64::MAX);
        Rolling {
            width: (window.saturating_add(59) / 60).max(1),
            buckets: VecDeque::new(),
            horizon: i64::MIN,
        }
    }

    fn first_bucket(&self, at: i64, window: i64) -> i64 {
        at.saturating_sub(window).div_euclid(self.width)
    }

    fn used(&self, at: i64, window: i64) -> u64 {
        let first = self.first_bucket(at, window);
        if first < self.horizon {
            return u64::MAX;
        }
        // Later buckets count too: an action recorded "in the future" of this one (clocks of
        // concurrent checks) still shares any window with it.
        self.buckets
            .iter()
            .filter(|(b, _)| *b >= first)
            .map(|(_, n)| n)
            .fold(0u64, |a, n| a.saturating_add(*n))
    }

    fn add(&mut self, at: i64, window: i64, amount: u64) {
        let bucket = at.div_euclid(self.width);
        if let Some((_, n)) = self.buckets.iter_mut().rev().find(|(b, _)| *b == bucket) {
            *n = n.saturating_add(amount);
        } else {
            let place = self.buckets.partition_point(|(b, _)| *b < bucket);
            self.buckets.insert(place, (bucket, amount));
        }
        // Keep two windows of history, so actions somewhat out of order are still counted.
        let keep_from = self.first_bucket(at, window.saturating_mul(2));
        while self.buckets.front().is_some_and(|(b, _)| *b < keep_from) {
            self.buckets.pop_front();
            self.horizon = self.horizon.max(keep_from);
        }
    }
}

impl Counter {
    fn new(window: ClaimWindow) -> Counter {
        match window {
            ClaimWindow::Rolling { millis } => Counter::Rolling(Rolling::new(millis)),
            ClaimWindow::Calendar { .. } => Counter::Calendar(Vec::new()),
            ClaimWindow::Run => Counter::Total(0),
        }
    }

    fn used(&self, window: ClaimWindow, at: i64) -> u64 {
        match (self, window) {
            (Counter::Rolling(r), ClaimWindow::Rolling { millis }) => {
                r.used(at, i64::try_from(millis).unwrap_or(i64::MAX))
            }
            (Counter::Calendar(periods), ClaimWindow::Calendar { start, .. }) => {
                let start = start.as_millisecond();
                match periods.iter().find(|(s, _)| *s == start) {
                    Some((_, spent)) => *spent,
                    // An older period than any kept: it can no longer be counted honestly.
                    None if periods.len() == CALENDAR_KEPT
                        && periods.first().is_some_and(|(s, _)| start < *s) =>
                    {
                        u64::MAX
                    }
                    None => 0,
                }
            }
            (Counter::Total(total), _) => *total,
            // A key always comes with one kind of window; anything else fails closed.
            _ => u64::MAX,
        }
    }

    fn add(&mut self, window: ClaimWindow, at: i64, amount: u64) {
        match (self, window) {
            (Counter::Rolling(r), ClaimWindow::Rolling { millis }) => {
                r.add(at, i64::try_from(millis).unwrap_or(i64::MAX), amount);
            }
            (Counter::Calendar(periods), ClaimWindow::Calendar { start, .. }) => {
                let start = start.as_millisecond();
                if let Some((_, spent)) = periods.iter_mut().find(|(s, _)| *s == start) {
                    *spent = spent.saturating_add(amount);
                } else {
                    let place = periods.partition_point(|(s, _)| *s < start);
                    periods.insert(place, (start, amount));
                    if periods.len() > CALENDAR_KEPT {
                        periods.remove(0);
                    }
                }
            }
            (Counter::Total(total), _) => *total = total.saturating_add(amount),
            _ => {}
        }
    }
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
            .map_or(0, |c| c.used(claim.window, at.as_millisecond()))
    }
}

impl Limits for MemoryLimits {
    fn settle(&mut self, claims: &[Claim], at: Timestamp, mode: Settle) -> Vec<Exceeded> {
        let at_ms = at.as_millisecond();
        let mut exceeded = Vec::new();
        if mode != Settle::Record {
            for (i, claim) in claims.iter().enumerate() {
                let used = self
                    .counters
                    .get(&claim.key)
                    .map_or(0, |c| c.used(claim.window, at_ms));
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
                self.counters
                    .entry(claim.key.clone())
                    .or_insert_with(|| Counter::new(claim.window))
                    .add(claim.window, at_ms, claim.amount);
            }
        }
        exceeded
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
