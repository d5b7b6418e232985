//! What a rate or cost counter counts, whichever run's action it is: every allowed matching
//! action (or all allowed spend) of its agent or tenant in its window or period, from any run,
//! also from before its rule was activated (product.md §4).
//!
//! A counter's rule, compiled alone at platform scope ([`counting_set`]), says what it counts.
//! Before the first check that claims a counter joins a batch, the counter is **seeded** from
//! the recorded allowed actions that rule counts ([`Seed`]), in a transaction of its own, once
//! (a marker in `limit_seeds`, naming the counter's subject and rule). From then on the counter
//! is **watched**: every allowed action of its subject adds to it through the group commit,
//! also one whose run's pinned set lacks the rule (a run started before the rule was
//! activated). On PostgreSQL a seed holds its subject's lock exclusively and a batch holds its
//! subjects' locks shared from before it reads the watched counters until it commits, so a
//! seed never misses an action another node is committing, and that node never misses the
//! counter. On a SQLite file the seed reads the history in a snapshot, outside the write lock,
//! then writes in a short transaction that also counts what was recorded since the snapshot.
//! A run's own counters are neither seeded nor watched: a run's pinned set is fixed at its
//! start, so everything they count was claimed on them when it was checked.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use charter_core::engine::{CompiledSet, RunContext};
use charter_core::ids::{LineageId, PolicyId};
use charter_core::limits::{Claim, ClaimWindow, CounterKey, Limits as _, Settle, Subject};
use charter_core::policy::{Policy, PolicyDefinition};
use charter_core::rule::Rule;
use charter_core::{Action, Scope};
use jiff::Timestamp;

use crate::Result;
use crate::book::Book;
use crate::commit::Param;
use crate::error::StoreError;
use crate::runs::PendingCheck;

/// Whether a counter has been seeded (`$1` the counter).
pub(crate) const IS_SEEDED: &str = "SELECT 1 FROM limit_seeds WHERE counter = $1";

/// Marks a counter seeded (`$1` the counter, `$2` when, `$3` its subject, `$4` and `$5` the
/// policy and rule that say what it counts).
pub(crate) const MARK_SEEDED: &str = "INSERT INTO limit_seeds \
     (counter, seeded_at, subject, policy_id, rule_id) VALUES ($1, $2, $3, $4, $5)";

/// The rules of a policy (`$1` its id), as stored.
pub(crate) const READ_RULES: &str = "SELECT rules FROM policies WHERE id = $1";

/// The most counters (and rules) a store remembers; past it the memory is dropped and refilled
/// (one look-up each).
const MAX_KNOWN: usize = 100_000;

/// What a store remembers of its counters: those known to be seeded (a marker is never
/// removed, so a counter known here needs no look-up again: seeding costs the first check that
/// claims a counter, never the later ones), and the rules that say what counters count, each
/// compiled once (an active policy never changes).
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownCounters(Arc<Known>);

#[derive(Debug, Default)]
struct Known {
    counters: Mutex<HashSet<String>>,
    rules: Mutex<HashMap<(String, String), Arc<CompiledSet>>>,
    /// The subjects this store is seeding or about to, each with the lock of its turns.
    seeding: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// How many subjects `seeding` holds: checks look no further while it is 0.
    busy: AtomicUsize,
}

impl KnownCounters {
    /// Remembers counters found marked or marked by a transaction that has committed (never
    /// before: a seed rolled back must be made again).
    pub(crate) fn learn(&self, counters: Vec<String>) {
        if let Ok(mut known) = self.0.counters.lock() {
            if known.len().saturating_add(counters.len()) > MAX_KNOWN {
                known.clear();
            }
            known.extend(counters);
        }
    }

    /// The compiled rule `rule_id` of policy `policy_id`, if compiled before.
    pub(crate) fn rule(&self, policy_id: &str, rule_id: &str) -> Option<Arc<CompiledSet>> {
        let rules = self.0.rules.lock().ok()?;
        rules
            .get(&(policy_id.to_owned(), rule_id.to_owned()))
            .cloned()
    }

    /// Remembers a compiled rule.
    pub(crate) fn remember_rule(&self, policy_id: &str, rule_id: &str, set: &Arc<CompiledSet>) {
        if let Ok(mut rules) = self.0.rules.lock() {
            if rules.len() >= MAX_KNOWN {
                rules.clear();
            }
            rules.insert((policy_id.to_owned(), rule_id.to_owned()), Arc::clone(set));
        }
    }
}

/// What counter-counting rule `rule_id` of a policy whose stored rules are `rules` counts: the
/// rule alone, at platform scope, so it claims on its counter for every action of every run.
pub(crate) fn counting_set(rules: &str, rule_id: &str) -> Result<CompiledSet> {
    let rules: Vec<Rule> = serde_json::from_str(rules)?;
    let rule = rules
        .into_iter()
        .find(|r| r.id.as_str() == rule_id)
        .ok_or_else(|| StoreError::Backend(format!("no rule {rule_id} to count with")))?;
    let bad = |e: charter_core::ids::IdError| StoreError::Backend(e.to_string());
    let policy = Policy::draft(
        PolicyId::new("pol_counting").map_err(bad)?,
        LineageId::new("lin_counting").map_err(bad)?,
        PolicyDefinition {
            name: "counting".into(),
            description: String::new(),
            scope: Scope::Platform,
            rules: vec![rule],
        },
        Timestamp::UNIX_EPOCH,
    );
    CompiledSet::compile([&policy]).map_err(|e| StoreError::Backend(e.to_string()))
}

/// The subjects whose counters a check may count on: its agent and its tenant.
fn subjects_of(check: &PendingCheck) -> [String; 2] {
    [
        Subject::Agent(
            check.tenant_id.as_str().into(),
            check.agent_id.as_str().into(),
        )
        .storage_text(),
        Subject::Tenant(check.tenant_id.as_str().into()).storage_text(),
    ]
}

/// The subjects of a batch, sorted and distinct: the order their locks are taken in.
pub(crate) fn subjects(batch: &[PendingCheck]) -> Vec<String> {
    let mut subjects: Vec<String> = batch.iter().flat_map(subjects_of).collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

/// The name of a subject's lock, apart from the counters' (theirs start `rate|` or `cost|`).
pub(crate) fn subject_lock(subject: &str) -> String {
    format!("subject|{subject}")
}

/// The statement reading the watched counters of `n` subjects (padded as `read_runs`).
pub(crate) fn read_watched(n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT counter, subject, policy_id, rule_id FROM limit_seeds \
         WHERE subject IN ({}) AND policy_id <> ''",
        list.join(", ")
    )
}

/// A counter that counts whatever its subject does, and the rule that says what.
pub(crate) struct Watched {
    counter: String,
    set: Arc<CompiledSet>,
}

/// The watched counters of a batch's subjects, by subject.
#[derive(Default)]
pub(crate) struct Watch(HashMap<String, Vec<Watched>>);

impl Watch {
    /// Adds the counter `counter` of `subject`, counted by `set`.
    pub(crate) fn add(&mut self, subject: String, counter: String, set: Arc<CompiledSet>) {
        self.0
            .entry(subject)
            .or_default()
            .push(Watched { counter, set });
    }

    /// Adds an allowed check's action to the watched counters of its subjects that its own
    /// claims did not count on, as their rules count it.
    pub(crate) fn record(&self, check: &PendingCheck, book: &mut Book) {
        if self.0.is_empty() {
            return;
        }
        let mut own: Option<Vec<String>> = None;
        for subject in subjects_of(check) {
            for watched in self.0.get(&subject).map_or(&[][..], Vec::as_slice) {
                let own = own.get_or_insert_with(|| {
                    check
                        .evaluation
                        .claims
                        .iter()
                        .map(|c| c.key.storage_key())
                        .collect()
                });
                if own.contains(&watched.counter) {
                    continue;
                }
                let ctx = RunContext {
                    tenant_id: &check.tenant_id,
                    agent_id: &check.agent_id,
                    run_id: &check.run_id,
                    run_started_at: check.at,
                    now: check.at,
                };
                let claims: Vec<Claim> = watched
                    .set
                    .claims(&check.action, &ctx)
                    .into_iter()
                    .filter(|c| c.key.storage_key() == watched.counter)
                    .take(1)
                    .collect();
                if !claims.is_empty() {
                    book.settle(&claims, check.at, Settle::Record);
                }
            }
        }
    }
}

/// A counter to seed: the first claim that found it unseeded, and what a seed needs of that
/// claim's check. Owned, as a SQLite file counts it on a blocking thread.
#[derive(Clone)]
pub(crate) struct Seed {
    counter: String,
    claim: Claim,
    whose: Whose,
    at: Timestamp,
    /// The claiming check's pinned set: what counts for a rule no stored policy holds.
    pinned: Arc<CompiledSet>,
}

/// Whose recorded actions a seed reads (a run's counters are never seeded).
#[derive(Clone)]
enum Whose {
    Agent(String, String),
    Tenant(String),
}

impl Whose {
    /// Whose actions a counter of `subject` counts; `None` for a run's.
    fn of(subject: &Subject) -> Option<Whose> {
        match subject {
            Subject::Agent(tenant, agent) => {
                Some(Whose::Agent(tenant.to_string(), agent.to_string()))
            }
            Subject::Tenant(tenant) => Some(Whose::Tenant(tenant.to_string())),
            Subject::Run(_) => None,
        }
    }
}

/// A recorded allowed action read to seed a counter: (at in ms, run, agent, input text).
pub(crate) type SeedRow = (i64, String, String, Option<String>);

/// The counters `checks` claim that this store does not know to be seeded, each with the
/// first claim on it; never a run's (see the module's text). Every check passes here twice
/// (before it joins a batch, and in the batch), so a run's counter costs nothing and another
/// one its storage key and a look-up.
fn seeds(checks: &[PendingCheck], known: &KnownCounters) -> Vec<Seed> {
    let mut found: Vec<Seed> = Vec::new();
    let Ok(counters) = known.0.counters.lock() else {
        return found;
    };
    for check in checks {
        for claim in &check.evaluation.claims {
            if matches!(claim.key.subject(), Subject::Run(_)) {
                continue;
            }
            let counter = claim.key.storage_key();
            if counters.contains(&counter) || found.iter().any(|s| s.counter == counter) {
                continue;
            }
            let Some(whose) = Whose::of(claim.key.subject()) else {
                continue;
            };
            found.push(Seed {
                counter,
                claim: claim.clone(),
                whose,
                at: check.at,
                pinned: Arc::clone(&check.set),
            });
        }
    }
    found
}

/// How a backend makes one seed, in a transaction of its own: unless the counter is marked
/// seeded by then, it adds what [`Seed::count`] counts of the recorded history to the counter
/// and marks it ([`MARK_SEEDED`]), so every commit after it watches the counter.
pub(crate) trait MakeSeed {
    /// Makes `seed`.
    fn make_seed(&self, seed: &Seed) -> impl Future<Output = Result<()>> + Send;
}

/// A subject's turn at this store's seeds (see [`KnownCounters::seed_for`]): released, and
/// forgotten once nobody waits for it, when dropped.
struct Turn {
    known: KnownCounters,
    subject: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let lock = self.guard.take().map(|guard| {
            let lock = Arc::clone(tokio::sync::OwnedMutexGuard::mutex(&guard));
            drop(guard);
            lock
        });
        if let (Some(lock), Ok(mut seeding)) = (lock, self.known.0.seeding.lock()) {
            // The table's handle and this one: nobody else waits for the subject.
            if Arc::strong_count(&lock) <= 2 {
                seeding.remove(&self.subject);
                self.known.0.busy.store(seeding.len(), Ordering::Relaxed);
            }
        }
    }
}

impl KnownCounters {
    /// Makes the seeds `checks` need, each in its own transaction through `maker`, before they
    /// join a batch: the read of a month of history then holds up only the checks that wait
    /// for it, not the group commit every check passes through. This store's seeds of one
    /// subject take turns (two checks needing one counter seed it once); with `wait`, checks
    /// of a subject this store is seeding also wait for it, so they never reach a batch that
    /// would wait for the seed's lock on PostgreSQL. The database alone keeps a seed correct
    /// (its marker, the subject's lock): the turns only spare work and waiting.
    pub(crate) async fn seed_for(
        &self,
        checks: &[PendingCheck],
        wait: bool,
        maker: &impl MakeSeed,
    ) -> Result<()> {
        let seeds = seeds(checks, self);
        let busy = wait && self.0.busy.load(Ordering::Relaxed) > 0;
        if seeds.is_empty() && !busy {
            return Ok(());
        }
        let mut subjects: BTreeSet<String> = seeds.iter().map(Seed::subject).collect();
        if busy && let Ok(seeding) = self.0.seeding.lock() {
            subjects.extend(
                checks
                    .iter()
                    .flat_map(subjects_of)
                    .filter(|s| seeding.contains_key(s)),
            );
        }
        for subject in subjects {
            let _turn = self.turn(&subject).await;
            for seed in seeds.iter().filter(|s| s.subject() == subject) {
                if self.knows(&seed.counter) {
                    continue;
                }
                maker.make_seed(seed).await?;
                self.learn(vec![seed.counter.clone()]);
            }
        }
        Ok(())
    }

    /// Whether `counter` is known to be seeded.
    fn knows(&self, counter: &str) -> bool {
        self.0
            .counters
            .lock()
            .is_ok_and(|counters| counters.contains(counter))
    }

    /// Waits for and takes `subject`'s turn.
    async fn turn(&self, subject: &str) -> Turn {
        let lock = self.0.seeding.lock().ok().map(|mut seeding| {
            let lock = Arc::clone(seeding.entry(subject.to_owned()).or_default());
            self.0.busy.store(seeding.len(), Ordering::Relaxed);
            lock
        });
        let guard = match lock {
            Some(lock) => Some(lock.lock_owned().await),
            None => None,
        };
        Turn {
            known: self.clone(),
            subject: subject.to_owned(),
            guard,
        }
    }
}

impl Seed {
    /// The counter's subject, as its marker and its lock name it.
    pub(crate) fn subject(&self) -> String {
        self.claim.key.subject().storage_text()
    }

    /// The counter, as stored.
    pub(crate) fn counter(&self) -> &str {
        &self.counter
    }

    /// When the seed is made (the claiming check's time), for its marker.
    pub(crate) fn at_ms(&self) -> i64 {
        self.at.as_millisecond()
    }

    /// The policy and the rule that say what the counter counts.
    pub(crate) fn rule(&self) -> (&str, &str) {
        let source = &self.claim.source;
        (source.policy.id.as_str(), source.rule_id.as_str())
    }

    /// The set that counts for the seed, and the rule its marker names: the counter's rule
    /// compiled alone (`rule`, found stored), or, for a rule no stored policy holds (a set
    /// compiled in process, never by a server), the claiming check's own pinned set and no rule
    /// (such a counter cannot be watched).
    pub(crate) fn counting(
        &self,
        rule: Option<Arc<CompiledSet>>,
    ) -> (Arc<CompiledSet>, (&str, &str)) {
        match rule {
            Some(set) => (set, self.rule()),
            None => (Arc::clone(&self.pinned), ("", "")),
        }
    }

    /// The statement reading the recorded allowed actions that may count on the counter, and
    /// its parameters: those of its subject in the claim's window (from two windows back: as
    /// much as a counter keeps) or calendar period. With `after`, only those recorded after
    /// the row `after` of `actions` (SQLite's rowids only grow): the few a SQLite seed's
    /// snapshot missed, read by rowid rather than through the subject's index, which would
    /// walk its whole period again.
    pub(crate) fn query(&self, after: Option<i64>) -> (String, Vec<Param<'_>>) {
        let (from, until) = match self.claim.window {
            ClaimWindow::Rolling { millis } => {
                let kept = i64::try_from(millis).unwrap_or(i64::MAX).saturating_mul(2);
                (self.at.as_millisecond().saturating_sub(kept), i64::MAX)
            }
            ClaimWindow::Calendar { start, end } => (start.as_millisecond(), end.as_millisecond()),
            ClaimWindow::Run => (i64::MIN, i64::MAX),
        };
        let (tenant, agent) = match &self.whose {
            Whose::Agent(tenant, agent) => (tenant, Some(agent)),
            Whose::Tenant(tenant) => (tenant, None),
        };
        let mut sql = String::from(
            "SELECT at, run_id, agent_id, input FROM actions WHERE decision = 'allow'",
        );
        let mut params: Vec<Param<'_>> = Vec::with_capacity(5);
        // `+column` keeps SQLite from reading through that column's index.
        let indexed = if after.is_some() { "+" } else { "" };
        let mut and = |condition: &str, param| {
            params.push(param);
            let _ = write!(sql, " AND {condition} ${}", params.len());
        };
        if let Some(after) = after {
            and("rowid >", Param::Int(after));
        }
        and(&format!("{indexed}tenant_id ="), Param::Text(tenant));
        if let Some(agent) = agent {
            and(&format!("{indexed}agent_id ="), Param::Text(agent));
        }
        and(&format!("{indexed}at >="), Param::Int(from));
        and(&format!("{indexed}at <"), Param::Int(until));
        // Spend is all a cost counter counts, and an action spends only if its stored text
        // has a `cost_usd` (a free action's is left out): the others are never parsed.
        if matches!(self.claim.key, CounterKey::Cost { .. }) {
            sql.push_str(" AND input LIKE '%\"cost_usd\"%'");
        }
        (sql, params)
    }

    /// A count of the recorded actions the seed reads, each counted as the counter's rule
    /// (`set`, from [`counting_set`]) counts it: fed a row at a time, so a month of history
    /// is never held in memory.
    pub(crate) fn count<'s>(&'s self, set: &'s CompiledSet) -> SeedCount<'s> {
        SeedCount {
            seed: self,
            set,
            buckets: HashMap::new(),
        }
    }
}

/// The buckets a seed has counted so far.
pub(crate) struct SeedCount<'s> {
    seed: &'s Seed,
    set: &'s CompiledSet,
    buckets: HashMap<i64, u64>,
}

impl SeedCount<'_> {
    /// Counts one recorded action, once, in the bucket of its own time. An input that cannot
    /// be read counts as nothing, as in Validate.
    pub(crate) fn add(&mut self, (at, run_id, agent_id, input): SeedRow) {
        let (Ok(at), Some(action)) = (
            Timestamp::from_millisecond(at),
            input.and_then(|text| Action::from_json(&text).ok()),
        ) else {
            return;
        };
        let ctx = RunContext {
            tenant_id: match &self.seed.whose {
                Whose::Agent(tenant, _) | Whose::Tenant(tenant) => tenant,
            },
            agent_id: &agent_id,
            run_id: &run_id,
            run_started_at: at,
            now: at,
        };
        let claims = self.set.claims(&action, &ctx);
        if let Some(claim) = claims.iter().find(|c| c.key == self.seed.claim.key) {
            let slot = self
                .buckets
                .entry(claim.window.buckets(at).commit)
                .or_insert(0);
            *slot = slot.saturating_add(claim.amount);
        }
    }

    /// Carries on a count made earlier (`buckets`, from [`SeedCount::finish`]).
    pub(crate) fn resume(mut self, buckets: &[(i64, i64)]) -> Self {
        for &(bucket, amount) in buckets {
            self.buckets
                .insert(bucket, u64::try_from(amount).unwrap_or(u64::MAX));
        }
        self
    }

    /// The buckets counted, in order, as stored amounts.
    pub(crate) fn finish(self) -> Vec<(i64, i64)> {
        let mut buckets: Vec<(i64, i64)> = self
            .buckets
            .into_iter()
            .map(|(bucket, amount)| (bucket, i64::try_from(amount).unwrap_or(i64::MAX)))
            .collect();
        buckets.sort_unstable();
        buckets
    }
}
