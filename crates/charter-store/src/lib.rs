//! Everything Charter keeps, behind one [`Store`] trait with two real backends: SQLite
//! (embedded, the default: a file in the data directory) and PostgreSQL (several nodes).
//!
//! Every change is one transaction that also appends its audit entry, so the audit log and the
//! data can never disagree. Active and deprecated policies are immutable in the database too
//! (triggers), and the audit log is append-only there as well. Every tenant-owned read and
//! write takes a [`Principal`], so a query cannot forget whose data it touches.

mod audit;
mod book;
mod commit;
mod counting;
mod error;
mod ids;
mod key_cache;
mod model;
mod openapi;
mod postgres;
mod runs;
mod sqlite;
mod writer;

use std::future::Future;

use charter_core::engine::{ArgsRead, Outcome};
use charter_core::limits::{Claim, Exceeded, Settle};
use charter_core::policy::PolicyDefinition;
use charter_core::rule::Rule;
use charter_core::{Action, AgentId, LineageId, Policy, RuleId, Scope, TenantId};
use jiff::Timestamp;
use serde_json::Value;

pub use audit::GENESIS;
pub use error::StoreError;
pub use ids::{new_id_suffix, new_key_secret};
pub use model::{
    Activation, Actor, Agent, ApiKey, AuditEntry, Change, KeyScope, PolicyFilter, Principal,
    StoredPolicy, Tenant, Verification,
};
pub use postgres::PgStore;
pub use runs::{
    ActionSummary, CheckBatch, CheckOutcome, ImportedAction, ImportedRun, Page, PendingCheck,
    PinnedPolicy, PinnedSet, Run, RunAction, RunFilter, RunSource, RunStatus, ViolationEvent,
    ViolationFilter,
};
pub use sqlite::{SqliteStore, Sync};
pub use writer::{ActionWriter, WriterStats};

/// A result of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A change to a draft's definition; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct PolicyEdit {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new scope (only while the lineage has never been active).
    pub scope: Option<Scope>,
    /// New rules, replacing all.
    pub rules: Option<Vec<Rule>>,
}

/// One page of recorded actions for `Store::actions_page`: those in `[since, until)` of a
/// tenant and an agent, in replay order (time, run, id), after the previous page's last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// A platform key's tenant (`None`: every tenant); a tenant key always reads its own.
    pub tenant: Option<String>,
    /// Only this agent's actions.
    pub agent: Option<String>,
    /// The first instant of the range.
    pub since: jiff::Timestamp,
    /// The end of the range, excluded.
    pub until: jiff::Timestamp,
    /// The key `(at_ms, run_id, id)` of the previous page's last row; `None` for the first.
    pub after: Option<(i64, String, String)>,
    /// Rows at most (clamped to 1–10,000).
    pub limit: u32,
    /// The tool calls whose arguments are built ([`ArgsRead::all`], or only those a
    /// validated policy reads: the others' are checked and left out).
    pub args: ArgsRead,
}

impl HistoryPage {
    /// The page after the one that ended with `last`.
    #[must_use]
    pub fn following(&self, last: &RecordedRow) -> HistoryPage {
        HistoryPage {
            after: Some((last.at_ms, last.run_id.clone(), last.id.clone())),
            ..self.clone()
        }
    }
}

/// A recorded action as Validate reads it, in replay order.
#[derive(Debug, Clone)]
pub struct RecordedRow {
    /// The action's id.
    pub id: String,
    /// Its run.
    pub run_id: String,
    /// The run's tenant.
    pub tenant_id: String,
    /// The run's agent.
    pub agent_id: String,
    /// When it happened, in Unix milliseconds (the paging key with run and id).
    pub at_ms: i64,
    /// When its run started.
    pub run_started_at: jiff::Timestamp,
    /// The action; `None` when its input was not kept or cannot be read ("not replayable").
    /// A tool call's arguments are there when the page's `args` reads them.
    pub action: Option<Action>,
    /// What was decided when it happened.
    pub decision: Option<Outcome>,
}

/// Filters of the audit log; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A chain: a tenant id, or `platform`. Ignored for tenant keys (always their own).
    pub tenant_id: Option<String>,
    /// One policy version.
    pub policy_id: Option<String>,
    /// One lineage.
    pub lineage_id: Option<String>,
    /// One action, e.g. `policy.activated`.
    pub action: Option<String>,
    /// One actor's key id.
    pub actor: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
}

/// Everything Charter keeps. Both backends pass one conformance suite.
pub trait Store: Send + std::marker::Sync + 'static {
    /// Creates a tenant (platform keys only).
    fn create_tenant(
        &self,
        change: &Change,
        id: &TenantId,
        name: &str,
    ) -> impl Future<Output = Result<Tenant>> + Send;
    /// The tenants the principal sees.
    fn list_tenants(
        &self,
        principal: &Principal,
    ) -> impl Future<Output = Result<Vec<Tenant>>> + Send;
    /// Registers an agent in a tenant.
    fn create_agent(
        &self,
        change: &Change,
        tenant: &TenantId,
        id: &AgentId,
        name: &str,
        owner: Option<&str>,
    ) -> impl Future<Output = Result<Agent>> + Send;
    /// A tenant's agents.
    fn list_agents(
        &self,
        principal: &Principal,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<Agent>>> + Send;
    /// Stores a key (only its hash and last four characters) with its scopes.
    fn create_key(
        &self,
        change: &Change,
        name: &str,
        tenant: Option<&TenantId>,
        scopes: &[KeyScope],
        secret: &str,
    ) -> impl Future<Output = Result<ApiKey>> + Send;
    /// The keys the principal sees (never their values).
    fn list_keys(&self, principal: &Principal) -> impl Future<Output = Result<Vec<ApiKey>>> + Send;
    /// How many keys exist (a fresh install has none and makes a bootstrap key).
    fn count_keys(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Revokes a key, with immediate effect.
    fn revoke_key(&self, change: &Change, id: &str) -> impl Future<Output = Result<ApiKey>> + Send;
    /// The live (unrevoked) key whose whole text is `secret`.
    fn authenticate(&self, secret: &str) -> impl Future<Output = Result<Option<ApiKey>>> + Send;
    /// Creates a draft, version 1 of a new lineage (`imported` records `policy.imported`).
    fn create_policy(
        &self,
        change: &Change,
        definition: PolicyDefinition,
        imported: bool,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// Imports definitions as drafts, each version 1 of a new lineage, all or nothing
    /// (`policy.imported`).
    fn import_policies(
        &self,
        change: &Change,
        definitions: Vec<PolicyDefinition>,
    ) -> impl Future<Output = Result<Vec<StoredPolicy>>> + Send;
    /// Reads a policy for export, recording `policy.exported`.
    fn record_export(
        &self,
        change: &Change,
        id: &str,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// One policy version the principal may see.
    fn get_policy(
        &self,
        principal: &Principal,
        id: &str,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// The policies the principal may see, filtered.
    fn list_policies(
        &self,
        principal: &Principal,
        filter: &PolicyFilter,
    ) -> impl Future<Output = Result<Vec<StoredPolicy>>> + Send;
    /// Edits a draft (name, description, scope, rules), bumping its revision.
    fn update_policy(
        &self,
        change: &Change,
        id: &str,
        edit: PolicyEdit,
        if_revision: Option<u32>,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// Adds a rule to a draft.
    fn add_rule(
        &self,
        change: &Change,
        id: &str,
        rule: Rule,
        if_revision: Option<u32>,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// Removes a rule from a draft.
    fn remove_rule(
        &self,
        change: &Change,
        id: &str,
        rule_id: &RuleId,
        if_revision: Option<u32>,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// Deletes a draft, recording its full definition in the audit log.
    fn delete_policy(
        &self,
        change: &Change,
        id: &str,
        if_revision: Option<u32>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stores a validation report against a draft's revision (what activation requires).
    fn record_validation(
        &self,
        change: &Change,
        id: &str,
        revision: u32,
        report: &Value,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The latest validation report of a policy: (revision, when, report).
    fn latest_validation(
        &self,
        principal: &Principal,
        id: &str,
    ) -> impl Future<Output = Result<Option<(u32, Timestamp, Value)>>> + Send;
    /// Activates a draft; with `supersede`, deprecates the lineage's other active versions in
    /// the same transaction.
    fn activate(
        &self,
        change: &Change,
        id: &str,
        how: Activation,
        if_revision: Option<u32>,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// Deprecates an active policy.
    fn deprecate(
        &self,
        change: &Change,
        id: &str,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// Clones any version: the next version of its lineage, or (with another scope) version 1
    /// of a new lineage.
    fn clone_policy(
        &self,
        change: &Change,
        id: &str,
        scope: Option<Scope>,
        name: Option<String>,
    ) -> impl Future<Output = Result<StoredPolicy>> + Send;
    /// A lineage's versions, oldest first.
    fn versions(
        &self,
        principal: &Principal,
        id: &str,
    ) -> impl Future<Output = Result<(LineageId, Vec<StoredPolicy>)>> + Send;
    /// Audit entries the principal may read, oldest first, one page.
    fn audit(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Page<AuditEntry>>> + Send;
    /// Settles the limit claims of one action atomically, across every node that shares the
    /// database (see `charter_core::limits::Limits`); the state survives restarts.
    fn settle(
        &self,
        claims: &[Claim],
        at: Timestamp,
        mode: Settle,
    ) -> impl Future<Output = Result<Vec<Exceeded>>> + Send;
    /// Starts a run of `agent` in `tenant`, pinning the active policies that govern it in the
    /// same transaction; returns the run and those policies.
    fn start_run(
        &self,
        principal: &Principal,
        tenant: &str,
        agent: &str,
        metadata: &Value,
        at: Timestamp,
    ) -> impl Future<Output = Result<(Run, Vec<Policy>)>> + Send;
    /// A run the principal may see.
    fn get_run(&self, principal: &Principal, id: &str) -> impl Future<Output = Result<Run>> + Send;
    /// The policy versions a run pinned.
    fn pinned_policies(&self, run: &Run) -> impl Future<Output = Result<Vec<Policy>>> + Send;
    /// Ends a running or halted run (`completed` or `failed`; a halted run stays halted).
    fn end_run(
        &self,
        principal: &Principal,
        id: &str,
        status: RunStatus,
        at: Timestamp,
    ) -> impl Future<Output = Result<Run>> + Send;
    /// Seeds the rate and cost counters `check` claims that have not been seeded yet, each in
    /// a transaction of its own, before the check joins a batch (the counting module): the
    /// read of their history then holds up only the checks that need it. [`Store::commit_checks`]
    /// seeds what is left, so this only moves the work out of the group commit.
    fn seed_counters(&self, check: &PendingCheck) -> impl Future<Output = Result<()>> + Send;
    /// Settles, decides and records a batch of evaluated checks in one transaction, in order:
    /// one outcome per check. Used through [`ActionWriter`], which batches concurrent checks.
    fn commit_checks(
        &self,
        batch: CheckBatch,
    ) -> impl Future<Output = Result<Vec<CheckOutcome>>> + Send;
    /// Violation events, newest first, one page.
    fn violations(
        &self,
        principal: &Principal,
        filter: &ViolationFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Page<ViolationEvent>>> + Send;
    /// Violation counts per time bucket (`bucket_ms` long, aligned to the Unix epoch).
    fn violation_stats(
        &self,
        principal: &Principal,
        filter: &ViolationFilter,
        bucket_ms: i64,
    ) -> impl Future<Output = Result<Vec<(Timestamp, u64)>>> + Send;
    /// One page of recorded actions (see [`HistoryPage`]) that the principal may read.
    fn actions_page(
        &self,
        principal: &Principal,
        page: &HistoryPage,
    ) -> impl Future<Output = Result<Vec<RecordedRow>>> + Send;
    /// Runs the principal may see, newest first, one page.
    fn runs(
        &self,
        principal: &Principal,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Page<Run>>> + Send;
    /// A run's actions with their decisions, in order.
    fn run_actions(
        &self,
        principal: &Principal,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<RunAction>>> + Send;
    /// Imports recorded runs (history for Validate), all or nothing, pulling them from `runs`
    /// one at a time; returns (runs, actions). An error's path names `runs[i]`, `i` counting
    /// the runs pulled: always the one pulled last. PostgreSQL writes them in one
    /// transaction; SQLite in pieces that take turns with the checks' commits, the runs
    /// unseen until the last piece (`sqlite/import`).
    fn import_runs<R: RunSource>(
        &self,
        principal: &Principal,
        runs: &mut R,
    ) -> impl Future<Output = Result<(u64, u64)>> + Send;
    /// Adds flushed usage (calls, last use) to keys.
    fn record_key_usage(
        &self,
        usage: &[(String, u64, Timestamp)],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Recomputes audit chains (the principal's own, one asked for, or all) and names the first
    /// bad entry.
    fn verify_audit(
        &self,
        principal: &Principal,
        tenant: Option<&str>,
    ) -> impl Future<Output = Result<Verification>> + Send;
}

/// Implements [`Store`] for a backend by calling its `ops` module: the operations are written
/// once (`ops/`) and compiled per backend.
macro_rules! store_impl {
    ($store:ty, $ops:path) => {
        impl Store for $store {
            async fn create_tenant(
                &self,
                change: &Change,
                id: &TenantId,
                name: &str,
            ) -> Result<Tenant> {
                {
                    use $ops as ops;
                    ops::create_tenant(&self.pool, change, id, name).await
                }
            }
            async fn list_tenants(&self, principal: &Principal) -> Result<Vec<Tenant>> {
                {
                    use $ops as ops;
                    ops::list_tenants(&self.pool, principal).await
                }
            }
            async fn create_agent(
                &self,
                change: &Change,
                tenant: &TenantId,
                id: &AgentId,
                name: &str,
                owner: Option<&str>,
            ) -> Result<Agent> {
                {
                    use $ops as ops;
                    ops::create_agent(&self.pool, change, tenant, id, name, owner).await
                }
            }
            async fn list_agents(&self, principal: &Principal, tenant: &str) -> Result<Vec<Agent>> {
                {
                    use $ops as ops;
                    ops::list_agents(&self.pool, principal, tenant).await
                }
            }
            async fn create_key(
                &self,
                change: &Change,
                name: &str,
                tenant: Option<&TenantId>,
                scopes: &[KeyScope],
                secret: &str,
            ) -> Result<ApiKey> {
                {
                    use $ops as ops;
                    ops::create_key(&self.pool, change, name, tenant, scopes, secret).await
                }
            }
            async fn list_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
                {
                    use $ops as ops;
                    ops::list_keys(&self.pool, principal).await
                }
            }
            async fn count_keys(&self) -> Result<u64> {
                {
                    use $ops as ops;
                    ops::count_keys(&self.pool).await
                }
            }
            async fn revoke_key(&self, change: &Change, id: &str) -> Result<ApiKey> {
                // Cleared after the revocation, however the call ends (even dropped while
                // the commit is in flight).
                let _clear = key_cache::ClearOnDrop(self.keys.as_deref());
                {
                    use $ops as ops;
                    ops::revoke_key(&self.pool, change, id).await
                }
            }
            async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>> {
                let hash = audit::sha256_hex(secret);
                let generation = match self.keys.as_deref().map(|c| c.get(&hash)) {
                    Some(Ok(key)) => return Ok(Some(key)),
                    Some(Err(generation)) => Some(generation),
                    None => None,
                };
                let key = {
                    use $ops as ops;
                    ops::authenticate(&self.pool, &hash).await?
                };
                if let (Some(cache), Some(key), Some(generation)) =
                    (self.keys.as_deref(), &key, generation)
                {
                    cache.put(hash, key, generation);
                }
                Ok(key)
            }
            async fn create_policy(
                &self,
                change: &Change,
                definition: PolicyDefinition,
                imported: bool,
            ) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::create_policy(&self.pool, change, definition, imported).await
                }
            }
            async fn get_policy(&self, principal: &Principal, id: &str) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::get_policy(&self.pool, principal, id).await
                }
            }
            async fn list_policies(
                &self,
                principal: &Principal,
                filter: &PolicyFilter,
            ) -> Result<Vec<StoredPolicy>> {
                {
                    use $ops as ops;
                    ops::list_policies(&self.pool, principal, filter).await
                }
            }
            async fn update_policy(
                &self,
                change: &Change,
                id: &str,
                edit: PolicyEdit,
                if_revision: Option<u32>,
            ) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::update_policy(&self.pool, change, id, edit, if_revision).await
                }
            }
            async fn add_rule(
                &self,
                change: &Change,
                id: &str,
                rule: Rule,
                if_revision: Option<u32>,
            ) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::add_rule(&self.pool, change, id, rule, if_revision).await
                }
            }
            async fn remove_rule(
                &self,
                change: &Change,
                id: &str,
                rule_id: &RuleId,
                if_revision: Option<u32>,
            ) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::remove_rule(&self.pool, change, id, rule_id, if_revision).await
                }
            }
            async fn delete_policy(
                &self,
                change: &Change,
                id: &str,
                if_revision: Option<u32>,
            ) -> Result<()> {
                {
                    use $ops as ops;
                    ops::delete_policy(&self.pool, change, id, if_revision).await
                }
            }
            async fn record_validation(
                &self,
                change: &Change,
                id: &str,
                revision: u32,
                report: &Value,
            ) -> Result<()> {
                {
                    use $ops as ops;
                    ops::record_validation(&self.pool, change, id, revision, report).await
                }
            }
            async fn activate(
                &self,
                change: &Change,
                id: &str,
                how: Activation,
                if_revision: Option<u32>,
            ) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::activate(&self.pool, change, id, how, if_revision).await
                }
            }
            async fn deprecate(&self, change: &Change, id: &str) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::deprecate(&self.pool, change, id).await
                }
            }
            async fn clone_policy(
                &self,
                change: &Change,
                id: &str,
                scope: Option<Scope>,
                name: Option<String>,
            ) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::clone_policy(&self.pool, change, id, scope, name).await
                }
            }
            async fn versions(
                &self,
                principal: &Principal,
                id: &str,
            ) -> Result<(LineageId, Vec<StoredPolicy>)> {
                {
                    use $ops as ops;
                    ops::versions(&self.pool, principal, id).await
                }
            }
            async fn audit(
                &self,
                principal: &Principal,
                filter: &AuditFilter,
                cursor: Option<&str>,
                limit: u32,
            ) -> Result<Page<AuditEntry>> {
                {
                    use $ops as ops;
                    ops::audit_list(&self.pool, principal, filter, cursor, limit).await
                }
            }
            async fn settle(
                &self,
                claims: &[Claim],
                at: Timestamp,
                mode: Settle,
            ) -> Result<Vec<Exceeded>> {
                {
                    use $ops as ops;
                    ops::settle(&self.pool, claims, at, mode).await
                }
            }
            async fn start_run(
                &self,
                principal: &Principal,
                tenant: &str,
                agent: &str,
                metadata: &Value,
                at: Timestamp,
            ) -> Result<(Run, Vec<Policy>)> {
                {
                    use $ops as ops;
                    ops::start_run(&self.pool, principal, tenant, agent, metadata, at).await
                }
            }
            async fn get_run(&self, principal: &Principal, id: &str) -> Result<Run> {
                {
                    use $ops as ops;
                    ops::get_run(&self.pool, principal, id).await
                }
            }
            async fn pinned_policies(&self, run: &Run) -> Result<Vec<Policy>> {
                {
                    use $ops as ops;
                    ops::pinned_policies(&self.pool, run).await
                }
            }
            async fn end_run(
                &self,
                principal: &Principal,
                id: &str,
                status: RunStatus,
                at: Timestamp,
            ) -> Result<Run> {
                {
                    use $ops as ops;
                    ops::end_run(&self.pool, principal, id, status, at).await
                }
            }
            async fn seed_counters(&self, check: &PendingCheck) -> Result<()> {
                self.seed_counters(check).await
            }
            async fn commit_checks(&self, batch: CheckBatch) -> Result<Vec<CheckOutcome>> {
                self.commit_batch(batch).await
            }
            async fn violations(
                &self,
                principal: &Principal,
                filter: &ViolationFilter,
                cursor: Option<&str>,
                limit: u32,
            ) -> Result<Page<ViolationEvent>> {
                {
                    use $ops as ops;
                    ops::list_violations(&self.pool, principal, filter, cursor, limit).await
                }
            }
            async fn violation_stats(
                &self,
                principal: &Principal,
                filter: &ViolationFilter,
                bucket_ms: i64,
            ) -> Result<Vec<(Timestamp, u64)>> {
                {
                    use $ops as ops;
                    ops::violation_stats(&self.pool, principal, filter, bucket_ms).await
                }
            }
            async fn actions_page(
                &self,
                principal: &Principal,
                page: &HistoryPage,
            ) -> Result<Vec<RecordedRow>> {
                self.recorded_page(principal, page).await
            }
            async fn import_policies(
                &self,
                change: &Change,
                definitions: Vec<PolicyDefinition>,
            ) -> Result<Vec<StoredPolicy>> {
                {
                    use $ops as ops;
                    ops::import_policies(&self.pool, change, definitions).await
                }
            }
            async fn record_export(&self, change: &Change, id: &str) -> Result<StoredPolicy> {
                {
                    use $ops as ops;
                    ops::record_export(&self.pool, change, id).await
                }
            }
            async fn latest_validation(
                &self,
                principal: &Principal,
                id: &str,
            ) -> Result<Option<(u32, Timestamp, Value)>> {
                {
                    use $ops as ops;
                    ops::latest_validation(&self.pool, principal, id).await
                }
            }
            async fn runs(
                &self,
                principal: &Principal,
                filter: &RunFilter,
                cursor: Option<&str>,
                limit: u32,
            ) -> Result<Page<Run>> {
                {
                    use $ops as ops;
                    ops::list_runs(&self.pool, principal, filter, cursor, limit).await
                }
            }
            async fn run_actions(
                &self,
                principal: &Principal,
                run_id: &str,
            ) -> Result<Vec<RunAction>> {
                {
                    use $ops as ops;
                    ops::run_actions(&self.pool, principal, run_id).await
                }
            }
            async fn import_runs<R: RunSource>(
                &self,
                principal: &Principal,
                runs: &mut R,
            ) -> Result<(u64, u64)> {
                self.import_recorded(principal, runs).await
            }
            async fn record_key_usage(&self, usage: &[(String, u64, Timestamp)]) -> Result<()> {
                {
                    use $ops as ops;
                    ops::record_key_usage(&self.pool, usage).await
                }
            }
            async fn verify_audit(
                &self,
                principal: &Principal,
                tenant: Option<&str>,
            ) -> Result<Verification> {
                {
                    use $ops as ops;
                    ops::audit_verify(&self.pool, principal, tenant).await
                }
            }
        }
    };
}

store_impl!(SqliteStore, crate::sqlite::ops);
store_impl!(PgStore, crate::postgres::ops);
