//! Limit counters as one transaction sees them. A transaction loads the rows of the counters it
//! will claim (locked first, on PostgreSQL) into charter-core's `MemoryLimits`, settles its
//! actions against them in memory, in order (the one settlement there is), and writes back only
//! what it added: a batch of checks costs one read per counter and one write per touched
//! bucket, not a transaction per check.

use std::collections::{BTreeMap, HashMap};

use charter_core::limits::{Buckets, Claim, CounterKey, Exceeded, Limits, MemoryLimits, Settle};
use jiff::Timestamp;

/// The counters one transaction has loaded, and what it has added to them.
#[derive(Debug, Default)]
pub(crate) struct Book {
    limits: MemoryLimits,
    /// Counter → bucket → amount this transaction added.
    added: HashMap<CounterKey, BTreeMap<i64, u64>>,
    /// Counter → the first bucket kept: older ones can no longer count.
    prunes: HashMap<CounterKey, i64>,
}

/// A counter a transaction will claim: its key and the earliest bucket any claim counts.
pub(crate) struct Wanted {
    pub(crate) key: CounterKey,
    pub(crate) first: i64,
}

impl Book {
    /// The counters `claims` (each with the instant it is settled at) will touch, by their
    /// storage key, in the one order they are locked everywhere, each with the earliest bucket
    /// any of them counts: no claim needs older rows, so a counter that keeps history forever
    /// (a daily cap) still loads only the current period.
    pub(crate) fn wanted<'a>(
        claims: impl IntoIterator<Item = (&'a [Claim], Timestamp)>,
    ) -> BTreeMap<String, Wanted> {
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for (claims, at) in claims {
            for claim in claims {
                let first = claim.window.buckets(at).first;
                wanted
                    .entry(claim.key.storage_key())
                    .and_modify(|w| w.first = w.first.min(first))
                    .or_insert_with(|| Wanted {
                        key: claim.key.clone(),
                        first,
                    });
            }
        }
        wanted
    }

    /// Takes the stored rows of counter `key` (bucket, amount).
    pub(crate) fn load(&mut self, key: CounterKey, rows: impl IntoIterator<Item = (i64, i64)>) {
        // A negative amount can only be a corrupted row: fail closed, as for lost history.
        let rows = rows
            .into_iter()
            .map(|(bucket, amount)| (bucket, u64::try_from(amount).unwrap_or(u64::MAX)));
        self.limits.load(key, rows);
    }

    /// What to write back: (counter, bucket, amount to add), in the order of the counters'
    /// storage keys (the order every transaction writes them in, so two never wait on each
    /// other's rows in a cycle). Each counter's key is written out once here, not per claim.
    pub(crate) fn additions(&self) -> impl Iterator<Item = (String, i64, u64)> {
        let mut additions: Vec<(String, i64, u64)> = self
            .added
            .iter()
            .flat_map(|(key, buckets)| {
                let key = key.storage_key();
                buckets
                    .iter()
                    .map(move |(bucket, amount)| (key.clone(), *bucket, *amount))
            })
            .collect();
        additions.sort_unstable();
        additions.into_iter()
    }

    /// What to delete afterwards: (counter, the first bucket kept).
    pub(crate) fn prunes(&self) -> impl Iterator<Item = (String, i64)> {
        let mut prunes: Vec<(String, i64)> = self
            .prunes
            .iter()
            .map(|(key, before)| (key.storage_key(), *before))
            .collect();
        prunes.sort_unstable();
        prunes.into_iter()
    }
}

impl Limits for Book {
    fn settle(&mut self, claims: &[Claim], at: Timestamp, mode: Settle) -> Vec<Exceeded> {
        let (added, prunes) = (&mut self.added, &mut self.prunes);
        self.limits
            .settle_with(claims, at, mode, |claim, buckets: Buckets| {
                let slot = added
                    .entry(claim.key.clone())
                    .or_default()
                    .entry(buckets.commit)
                    .or_insert(0);
                *slot = slot.saturating_add(claim.amount);
                if let Some(before) = buckets.prune_before {
                    let kept = prunes.entry(claim.key.clone()).or_insert(before);
                    *kept = (*kept).max(before);
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use charter_core::action::Action;
    use charter_core::engine::{CompiledSet, RunContext};
    use charter_core::policy::{Policy, PolicyDefinition};
    use charter_core::{LineageId, PolicyId};
    use serde_json::json;

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    /// The claim of one search under a rate limit of `cap` per minute.
    fn claims(cap: u64, seconds: i64) -> Vec<Claim> {
        let body = json!({"name": "limits", "scope": {"type": "tenant", "tenant_id": "acme"},
            "rules": [{"id": "r", "type": "rate", "limit": cap, "window": "1m", "per": "agent"}]});
        let policy = Policy::draft(
            PolicyId::new("pol_1").unwrap(),
            LineageId::new("lin_1").unwrap(),
            PolicyDefinition::parse(&body).unwrap(),
            at(0),
        );
        let set = CompiledSet::compile([&policy]).unwrap();
        let action = Action::parse(&json!({"kind": "tool_call", "tool": "search"})).unwrap();
        let ctx = RunContext {
            tenant_id: "acme",
            agent_id: "bot",
            run_id: "run_1",
            run_started_at: at(0),
            now: at(seconds),
        };
        set.evaluate(&action, &ctx).claims
    }

    #[test]
    fn counts_only_committed_actions_and_prunes_old_buckets() {
        let mut book = Book::default();
        let c = claims(2, 0);
        assert_eq!(c.len(), 1);
        assert!(book.settle(&c, at(0), Settle::CommitIfWithin).is_empty());
        assert!(book.settle(&c, at(1), Settle::CheckOnly).is_empty());
        assert!(book.settle(&c, at(2), Settle::CommitIfWithin).is_empty());
        let refused = book.settle(&c, at(3), Settle::CommitIfWithin);
        assert_eq!(refused, vec![Exceeded { claim: 0, used: 2 }]);
        // A window later the old buckets no longer count; two windows later they are pruned.
        assert!(book.settle(&c, at(70), Settle::CommitIfWithin).is_empty());
        assert!(book.settle(&c, at(200), Settle::CommitIfWithin).is_empty());
        let added: u64 = book.additions().map(|(_, _, n)| n).sum();
        assert_eq!(added, 4);
        assert_eq!(book.prunes().count(), 1);
        // A claim that reaches back past what is kept fails closed.
        let refused = book.settle(&c, at(-100), Settle::CommitIfWithin);
        assert_eq!(
            refused,
            vec![Exceeded {
                claim: 0,
                used: u64::MAX
            }]
        );
    }

    #[test]
    fn loaded_rows_count_from_the_wanted_bucket_on() {
        let mut book = Book::default();
        let c = claims(3, 0);
        let wanted = Book::wanted([(&c[..], at(0))]);
        let w = wanted.values().next().unwrap();
        book.load(w.key.clone(), [(w.first, 2), (w.first - 1, 50)]);
        assert!(book.settle(&c, at(0), Settle::CommitIfWithin).is_empty());
        assert_eq!(
            book.settle(&c, at(0), Settle::CommitIfWithin),
            vec![Exceeded { claim: 0, used: 3 }]
        );
    }
}
