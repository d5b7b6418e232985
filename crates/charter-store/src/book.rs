//! Limit counters as one transaction sees them. A transaction loads the rows of the counters it
//! will claim (locked first, on PostgreSQL), settles its actions against them in memory, in
//! order, and writes back only what it added. This is `charter_core::limits::MemoryLimits`'s
//! arithmetic over the `limit_counters` table's buckets (`ClaimWindow::buckets`), so a batch of
//! checks costs one read per counter and one write per touched bucket, not a transaction per
//! check.

use std::collections::{BTreeMap, HashMap};

use charter_core::limits::{Claim, Exceeded, Settle};
use jiff::Timestamp;

/// The counters one transaction has loaded, and what it has added to them.
#[derive(Debug, Default)]
pub(crate) struct Book {
    counters: HashMap<String, Counter>,
}

#[derive(Debug, Default)]
struct Counter {
    /// Bucket → amount, as this transaction sees it (only buckets from the loaded bound on).
    buckets: BTreeMap<i64, u64>,
    /// Bucket → amount this transaction added.
    added: BTreeMap<i64, u64>,
    /// Buckets before this one can no longer count: delete them.
    prune_before: Option<i64>,
}

impl Book {
    /// The counters `claims` (each with the instant it is settled at) will touch, in the one
    /// order they are locked everywhere, each with the earliest bucket any of them counts: no
    /// claim needs older rows, so a counter that keeps history forever (a daily cap) still
    /// loads only the current period.
    pub(crate) fn wanted<'a>(
        claims: impl IntoIterator<Item = (&'a [Claim], Timestamp)>,
    ) -> BTreeMap<String, i64> {
        let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
        for (claims, at) in claims {
            for claim in claims {
                let first = claim.window.buckets(at).first;
                wanted
                    .entry(claim.key.storage_key())
                    .and_modify(|f| *f = (*f).min(first))
                    .or_insert(first);
            }
        }
        wanted
    }

    /// Takes the stored rows of counter `key` (bucket, amount).
    pub(crate) fn load(&mut self, key: String, rows: impl IntoIterator<Item = (i64, i64)>) {
        let counter = self.counters.entry(key).or_default();
        for (bucket, amount) in rows {
            // A negative amount can only be a corrupted row: fail closed, as for lost history.
            let amount = u64::try_from(amount).unwrap_or(u64::MAX);
            let slot = counter.buckets.entry(bucket).or_insert(0);
            *slot = slot.saturating_add(amount);
        }
    }

    /// Settles the claims of one action at `at` (see `charter_core::limits::Limits::settle`):
    /// every claim is checked, and all are committed only if none is exceeded (`Record`
    /// commits without checking). A counter not loaded counts as empty.
    pub(crate) fn settle(
        &mut self,
        claims: &[Claim],
        at: Timestamp,
        mode: Settle,
    ) -> Vec<Exceeded> {
        let keys: Vec<String> = claims.iter().map(|c| c.key.storage_key()).collect();
        let mut exceeded = Vec::new();
        if mode != Settle::Record {
            for (i, (claim, key)) in claims.iter().zip(&keys).enumerate() {
                let buckets = claim.window.buckets(at);
                let mut used = 0u64;
                if let Some(counter) = self.counters.get(key) {
                    used = counter
                        .buckets
                        .range(buckets.first..=buckets.last)
                        .fold(0u64, |sum, (_, amount)| sum.saturating_add(*amount));
                    // History older than what the counter keeps was pruned: a claim reaching
                    // back there (a node whose clock lags) cannot be counted and fails closed.
                    if let (Some((top, _)), Some(kept)) =
                        (counter.buckets.last_key_value(), buckets.kept)
                        && buckets.first < top.saturating_sub(kept)
                    {
                        used = u64::MAX;
                    }
                }
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
            let mut done: Vec<&String> = Vec::with_capacity(keys.len());
            for (claim, key) in claims.iter().zip(&keys) {
                // Several rules may claim one counter: the action still counts once.
                if done.contains(&key) {
                    continue;
                }
                done.push(key);
                let buckets = claim.window.buckets(at);
                let counter = self.counters.entry(key.clone()).or_default();
                for map in [&mut counter.buckets, &mut counter.added] {
                    let slot = map.entry(buckets.commit).or_insert(0);
                    *slot = slot.saturating_add(claim.amount);
                }
                if let Some(before) = buckets.prune_before {
                    counter.buckets = counter.buckets.split_off(&before);
                    counter.prune_before = counter.prune_before.max(Some(before));
                }
            }
        }
        exceeded
    }

    /// What to write back: (counter, bucket, amount to add).
    pub(crate) fn additions(&self) -> impl Iterator<Item = (&str, i64, u64)> {
        self.counters.iter().flat_map(|(key, counter)| {
            counter
                .added
                .iter()
                .map(move |(bucket, amount)| (key.as_str(), *bucket, *amount))
        })
    }

    /// What to delete afterwards: (counter, the first bucket kept).
    pub(crate) fn prunes(&self) -> impl Iterator<Item = (&str, i64)> {
        self.counters
            .iter()
            .filter_map(|(key, counter)| counter.prune_before.map(|p| (key.as_str(), p)))
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
        let (key, first) = wanted.iter().next().unwrap();
        book.load(key.clone(), [(*first, 2), (first - 1, 50)]);
        assert!(book.settle(&c, at(0), Settle::CommitIfWithin).is_empty());
        assert_eq!(
            book.settle(&c, at(0), Settle::CommitIfWithin),
            vec![Exceeded { claim: 0, used: 3 }]
        );
    }
}
