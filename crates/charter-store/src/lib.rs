//! Everything Charter keeps, in one [`Store`] on either of two real backends, chosen at
//! start: SQLite (embedded, the default: a file in the data directory) or PostgreSQL
//! (several nodes).
//!
//! Every change is one transaction that also appends its audit entry, so the audit log and the
//! data can never disagree. Active and deprecated policies are immutable in the database too
//! (triggers), and the audit log is append-only there as well. Every tenant-owned read and
//! write takes a [`Principal`], so a query cannot forget whose data it touches.

mod audit;
mod backup;
mod book;
mod commit;
mod counting;
mod error;
mod feed;
mod ids;
mod key_cache;
mod migrations;
mod model;
mod openapi;
mod postgres;
mod retention;
mod runs;
mod sqlite;
mod writer;

use std::path::Path;

use charter_core::engine::{ArgsRead, Outcome};
use charter_core::limits::{Claim, Exceeded, Settle};
use charter_core::policy::PolicyDefinition;
use charter_core::rule::Rule;
use charter_core::{Action, AgentId, LineageId, Policy, RuleId, Scope, TenantId};
use jiff::Timestamp;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;

pub use audit::GENESIS;
pub use backup::backup_sqlite;
pub use error::StoreError;
pub use feed::{Heard, ViolationFeed};
pub use ids::{new_id_suffix, new_key_secret};
pub use model::{
    Activation, Actor, Agent, ApiKey, AuditEntry, Change, KeyScope, PolicyFilter, PolicySummary,
    Principal, StoredPolicy, Tenant, Verification, VersionsNear, WebSession,
};
pub use postgres::PgStore;
pub use retention::{HeldBack, Pass, Pruned, Retention};
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

/// Everything Charter keeps, on the backend chosen at start. Both backends pass one
/// conformance suite.
///
/// One concrete type rather than a trait: a process uses one backend, both are compiled into
/// every binary, and a `match` per call costs nothing beside a query, so the server and its
/// callers carry no type parameter.
#[derive(Debug, Clone)]
pub enum Store {
    /// The embedded database: one file, one process.
    Sqlite(SqliteStore),
    /// A database several nodes share.
    Postgres(PgStore),
}

/// Calls the backend's `ops` function `$op` with the store's pool and `$args`: the operations
/// are written once (`ops/`) and compiled per backend.
macro_rules! on_pool {
    ($store:expr, $op:ident($($arg:expr),* $(,)?)) => {
        match $store {
            Store::Sqlite(s) => crate::sqlite::ops::$op(&s.pool, $($arg),*).await,
            Store::Postgres(s) => crate::postgres::ops::$op(&s.pool, $($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite database file at `path` and migrates it. Fails if
    /// another process has it open.
    pub async fn open_sqlite(path: &Path, sync: Sync) -> Result<Store> {
        Ok(Store::Sqlite(SqliteStore::open(path, sync).await?))
    }

    /// A private in-memory SQLite database (tests, demos that keep nothing).
    pub async fn in_memory() -> Result<Store> {
        Ok(Store::Sqlite(SqliteStore::in_memory().await?))
    }

    /// Connects to the PostgreSQL database at `url` and migrates it.
    pub async fn connect_postgres(url: &str) -> Result<Store> {
        Ok(Store::Postgres(PgStore::connect(url).await?))
    }

    /// Connects to PostgreSQL with explicit options (a test gives each run its own
    /// `search_path` schema) and migrates the database.
    pub async fn connect_postgres_with(options: PgConnectOptions) -> Result<Store> {
        Ok(Store::Postgres(PgStore::connect_with(options).await?))
    }

    /// Opens the same database anew, as a restarted process (or another node) would. A
    /// SQLite store reopened in this process shares the file's lock and the cache of keys.
    pub async fn reopen(&self) -> Result<Store> {
        Ok(match self {
            Store::Sqlite(s) => Store::Sqlite(s.reopen().await?),
            Store::Postgres(s) => Store::Postgres(s.reopen().await?),
        })
    }

    /// Closes the pools (every connection), as a process would on shutdown.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }

    /// Runs raw SQL: for tests that prove the database itself refuses forbidden changes.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        match self {
            Store::Sqlite(s) => s.execute_raw(sql).await,
            Store::Postgres(s) => s.execute_raw(sql).await,
        }
    }

    /// The cache of authenticated keys. SQLite's only: its file is written by this process
    /// alone, while on PostgreSQL another node may revoke a key, so keys are read from the
    /// database on every request.
    fn keys(&self) -> Option<&key_cache::KeyCache> {
        match self {
            Store::Sqlite(s) => Some(&s.keys),
            Store::Postgres(_) => None,
        }
    }

    /// Creates a tenant (platform keys only).
    pub async fn create_tenant(
        &self,
        change: &Change,
        id: &TenantId,
        name: &str,
    ) -> Result<Tenant> {
        on_pool!(self, create_tenant(change, id, name))
    }

    /// The tenants the principal sees.
    pub async fn list_tenants(&self, principal: &Principal) -> Result<Vec<Tenant>> {
        on_pool!(self, list_tenants(principal))
    }

    /// Registers an agent in a tenant.
    pub async fn create_agent(
        &self,
        change: &Change,
        tenant: &TenantId,
        id: &AgentId,
        name: &str,
        owner: Option<&str>,
    ) -> Result<Agent> {
        on_pool!(self, create_agent(change, tenant, id, name, owner))
    }

    /// A tenant's agents.
    pub async fn list_agents(&self, principal: &Principal, tenant: &str) -> Result<Vec<Agent>> {
        on_pool!(self, list_agents(principal, tenant))
    }

    /// Stores a key (only its hash and last four characters) with its scopes.
    pub async fn create_key(
        &self,
        change: &Change,
        name: &str,
        tenant: Option<&TenantId>,
        scopes: &[KeyScope],
        secret: &str,
    ) -> Result<ApiKey> {
        on_pool!(self, create_key(change, name, tenant, scopes, secret))
    }

    /// The keys the principal sees (never their values).
    pub async fn list_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
        on_pool!(self, list_keys(principal))
    }

    /// Whether the store can serve: its database answers and has this build's migrations
    /// applied (`/readyz`); the reason when not.
    pub async fn readiness(&self) -> Result<()> {
        on_pool!(self, readiness())
    }

    /// How many keys exist (a fresh install has none and makes a bootstrap key).
    pub async fn count_keys(&self) -> Result<u64> {
        on_pool!(self, count_keys())
    }

    /// Revokes a key, with immediate effect.
    pub async fn revoke_key(&self, change: &Change, id: &str) -> Result<ApiKey> {
        // Cleared after the revocation, however the call ends (even dropped while the commit
        // is in flight).
        let _clear = key_cache::ClearOnDrop(self.keys());
        on_pool!(self, revoke_key(change, id))
    }

    /// The live (unrevoked) key whose whole text is `secret`.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>> {
        let hash = audit::sha256_hex(secret);
        let generation = match self.keys().map(|c| c.get(&hash)) {
            Some(Ok(key)) => return Ok(Some(key)),
            Some(Err(generation)) => Some(generation),
            None => None,
        };
        let key = on_pool!(self, authenticate(&hash))?;
        if let (Some(cache), Some(key), Some(generation)) = (self.keys(), &key, generation) {
            cache.put(hash, key, generation);
        }
        Ok(key)
    }

    /// Creates a draft, version 1 of a new lineage (`imported` records `policy.imported`).
    pub async fn create_policy(
        &self,
        change: &Change,
        definition: PolicyDefinition,
        imported: bool,
    ) -> Result<StoredPolicy> {
        on_pool!(self, create_policy(change, definition, imported))
    }

    /// Imports definitions as drafts, each version 1 of a new lineage, all or nothing
    /// (`policy.imported`).
    pub async fn import_policies(
        &self,
        change: &Change,
        definitions: Vec<PolicyDefinition>,
    ) -> Result<Vec<StoredPolicy>> {
        on_pool!(self, import_policies(change, definitions))
    }

    /// Reads a policy for export, recording `policy.exported`.
    pub async fn record_export(&self, change: &Change, id: &str) -> Result<StoredPolicy> {
        on_pool!(self, record_export(change, id))
    }

    /// One policy version the principal may see.
    pub async fn get_policy(&self, principal: &Principal, id: &str) -> Result<StoredPolicy> {
        on_pool!(self, get_policy(principal, id))
    }

    /// The policies the principal may see, filtered.
    pub async fn list_policies(
        &self,
        principal: &Principal,
        filter: &PolicyFilter,
    ) -> Result<Vec<StoredPolicy>> {
        on_pool!(self, list_policies(principal, filter))
    }

    /// The policies the principal may see, filtered, newest first, one page of their summaries
    /// (the workspace's list: indexed and paged, never the whole table, no rule parsed).
    pub async fn policies_page(
        &self,
        principal: &Principal,
        filter: &PolicyFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<PolicySummary>> {
        match self {
            Store::Sqlite(s) => s.policies_page(principal, filter, cursor, limit).await,
            Store::Postgres(s) => {
                crate::postgres::ops::policies_page(&s.pool, principal, filter, cursor, limit).await
            }
        }
    }

    /// Edits a draft (name, description, scope, rules), bumping its revision.
    pub async fn update_policy(
        &self,
        change: &Change,
        id: &str,
        edit: PolicyEdit,
        if_revision: Option<u32>,
    ) -> Result<StoredPolicy> {
        on_pool!(self, update_policy(change, id, edit, if_revision))
    }

    /// Adds a rule to a draft.
    pub async fn add_rule(
        &self,
        change: &Change,
        id: &str,
        rule: Rule,
        if_revision: Option<u32>,
    ) -> Result<StoredPolicy> {
        on_pool!(self, add_rule(change, id, rule, if_revision))
    }

    /// Removes a rule from a draft.
    pub async fn remove_rule(
        &self,
        change: &Change,
        id: &str,
        rule_id: &RuleId,
        if_revision: Option<u32>,
    ) -> Result<StoredPolicy> {
        on_pool!(self, remove_rule(change, id, rule_id, if_revision))
    }

    /// Deletes a draft, recording its full definition in the audit log.
    pub async fn delete_policy(
        &self,
        change: &Change,
        id: &str,
        if_revision: Option<u32>,
    ) -> Result<()> {
        on_pool!(self, delete_policy(change, id, if_revision))
    }

    /// Stores a validation report against a draft's revision (what activation requires).
    pub async fn record_validation(
        &self,
        change: &Change,
        id: &str,
        revision: u32,
        report: &Value,
    ) -> Result<()> {
        on_pool!(self, record_validation(change, id, revision, report))
    }

    /// The latest validation report of a policy: (revision, when, report).
    pub async fn latest_validation(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Option<(u32, Timestamp, Value)>> {
        on_pool!(self, latest_validation(principal, id))
    }

    /// Activates a draft; with `supersede`, deprecates the lineage's other active versions in
    /// the same transaction.
    pub async fn activate(
        &self,
        change: &Change,
        id: &str,
        how: Activation,
        if_revision: Option<u32>,
    ) -> Result<StoredPolicy> {
        on_pool!(self, activate(change, id, how, if_revision))
    }

    /// Deprecates an active policy.
    pub async fn deprecate(&self, change: &Change, id: &str) -> Result<StoredPolicy> {
        on_pool!(self, deprecate(change, id))
    }

    /// Clones any version: the next version of its lineage, or (with another scope) version 1
    /// of a new lineage.
    pub async fn clone_policy(
        &self,
        change: &Change,
        id: &str,
        scope: Option<Scope>,
        name: Option<String>,
    ) -> Result<StoredPolicy> {
        on_pool!(self, clone_policy(change, id, scope, name))
    }

    /// A lineage's versions, oldest first.
    pub async fn versions(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(LineageId, Vec<StoredPolicy>)> {
        on_pool!(self, versions(principal, id))
    }

    /// The versions of `id`'s lineage within `radius` versions of it, oldest first, and how
    /// many come before and after them (a policy's page, in a lineage of any length).
    pub async fn versions_near(
        &self,
        principal: &Principal,
        id: &str,
        radius: u32,
    ) -> Result<VersionsNear> {
        on_pool!(self, versions_near(principal, id, radius))
    }

    /// Audit entries the principal may read, oldest first, one page.
    pub async fn audit(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<AuditEntry>> {
        match self {
            Store::Sqlite(s) => s.audit_page(principal, filter, cursor, limit).await,
            Store::Postgres(s) => {
                crate::postgres::ops::audit_list(&s.pool, principal, filter, cursor, limit).await
            }
        }
    }

    /// Settles the limit claims of one action atomically, across every node that shares the
    /// database (see `charter_core::limits::Limits`); the state survives restarts.
    pub async fn settle(
        &self,
        claims: &[Claim],
        at: Timestamp,
        mode: Settle,
    ) -> Result<Vec<Exceeded>> {
        on_pool!(self, settle(claims, at, mode))
    }

    /// Starts a run of `agent` in `tenant`, pinning the active policies that govern it in the
    /// same transaction; returns the run and those policies.
    pub async fn start_run(
        &self,
        principal: &Principal,
        tenant: &str,
        agent: &str,
        metadata: &Value,
        at: Timestamp,
    ) -> Result<(Run, Vec<Policy>)> {
        on_pool!(self, start_run(principal, tenant, agent, metadata, at))
    }

    /// A run the principal may see.
    pub async fn get_run(&self, principal: &Principal, id: &str) -> Result<Run> {
        on_pool!(self, get_run(principal, id))
    }

    /// The policy versions a run pinned.
    pub async fn pinned_policies(&self, run: &Run) -> Result<Vec<Policy>> {
        on_pool!(self, pinned_policies(run))
    }

    /// Ends a running or halted run (`completed` or `failed`; a halted run stays halted).
    pub async fn end_run(
        &self,
        principal: &Principal,
        id: &str,
        status: RunStatus,
        at: Timestamp,
    ) -> Result<Run> {
        on_pool!(self, end_run(principal, id, status, at))
    }

    /// Seeds the rate and cost counters `check` claims that have not been seeded yet, each in
    /// a transaction of its own, before the check joins a batch (the counting module): the
    /// read of their history then holds up only the checks that need it.
    /// [`Store::commit_checks`] seeds what is left, so this only moves the work out of the group
    /// commit.
    pub async fn seed_counters(&self, check: &PendingCheck) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.seed_counters(check).await,
            Store::Postgres(s) => s.seed_counters(check).await,
        }
    }

    /// Settles, decides and records a batch of evaluated checks in one transaction, in order:
    /// one outcome per check. Used through [`ActionWriter`], which batches concurrent checks.
    pub async fn commit_checks(&self, batch: CheckBatch) -> Result<Vec<CheckOutcome>> {
        match self {
            Store::Sqlite(s) => s.commit_batch(batch).await,
            Store::Postgres(s) => s.commit_batch(batch).await,
        }
    }

    /// The violation events that the other nodes sharing this database commit, as they commit
    /// (`None` on SQLite, which serves one node). Holds one database connection while it lives.
    pub async fn violation_feed(&self) -> Result<Option<ViolationFeed>> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(s) => s.violation_feed().await.map(Some),
        }
    }

    /// Violation events, newest first, one page.
    pub async fn violations(
        &self,
        principal: &Principal,
        filter: &ViolationFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<ViolationEvent>> {
        on_pool!(self, list_violations(principal, filter, cursor, limit))
    }

    /// Violation counts per time bucket (`bucket_ms` long, aligned to the Unix epoch).
    pub async fn violation_stats(
        &self,
        principal: &Principal,
        filter: &ViolationFilter,
        bucket_ms: i64,
    ) -> Result<Vec<(Timestamp, u64)>> {
        on_pool!(self, violation_stats(principal, filter, bucket_ms))
    }

    /// When the first violation event `filter` selects (of those the principal may read)
    /// happened, `None` if it selects none.
    pub async fn first_violation_at(
        &self,
        principal: &Principal,
        filter: &ViolationFilter,
    ) -> Result<Option<Timestamp>> {
        on_pool!(self, first_violation_at(principal, filter))
    }

    /// One page of recorded actions (see [`HistoryPage`]) that the principal may read.
    pub async fn actions_page(
        &self,
        principal: &Principal,
        page: &HistoryPage,
    ) -> Result<Vec<RecordedRow>> {
        match self {
            Store::Sqlite(s) => s.recorded_page(principal, page).await,
            Store::Postgres(s) => s.recorded_page(principal, page).await,
        }
    }

    /// Runs the principal may see, newest first, one page.
    pub async fn runs(
        &self,
        principal: &Principal,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Run>> {
        on_pool!(self, list_runs(principal, filter, cursor, limit))
    }

    /// A run's actions with their decisions, in order.
    pub async fn run_actions(&self, principal: &Principal, run_id: &str) -> Result<Vec<RunAction>> {
        on_pool!(self, run_actions(principal, run_id))
    }

    /// A run's actions with their decisions, in order, one page after `cursor` (the
    /// workspace's run page: a long run is read a page at a time).
    pub async fn run_actions_page(
        &self,
        principal: &Principal,
        run_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<RunAction>> {
        on_pool!(self, run_actions_page(principal, run_id, cursor, limit))
    }

    /// Imports recorded runs (history for Validate), all or nothing, pulling them from `runs`
    /// one at a time; returns (runs, actions). An error's path names `runs[i]`, `i` counting
    /// the runs pulled: always the one pulled last. PostgreSQL writes them in one
    /// transaction; SQLite in pieces that take turns with the checks' commits, the runs
    /// unseen until the last piece (`sqlite/import`).
    pub async fn import_runs<R: RunSource>(
        &self,
        principal: &Principal,
        runs: &mut R,
    ) -> Result<(u64, u64)> {
        match self {
            Store::Sqlite(s) => s.import_recorded(principal, runs).await,
            Store::Postgres(s) => s.import_recorded(principal, runs).await,
        }
    }

    /// One pruning pass at `now`: removes what `retention` no longer keeps (the module
    /// documentation of `retention` says what and in which order), in short batches that
    /// take turns with checks; and which rule, if any, held the actions' cutoff back.
    pub async fn prune(&self, retention: &Retention, now: Timestamp) -> Result<Pass> {
        retention::prune(self, retention, now).await
    }

    /// The non-draft policies that may hold rate or cost rules: (id, name, version, rules).
    pub(crate) async fn limit_policies(&self) -> Result<Vec<(String, String, u32, String)>> {
        on_pool!(self, limit_policies())
    }

    /// Every audit chain.
    pub(crate) async fn audit_chains(&self) -> Result<Vec<String>> {
        on_pool!(self, audit_chains())
    }

    /// One batch of a pruning pass, in a transaction of its own; whether more may be left.
    pub(crate) async fn prune_batch(&self, step: &retention::Step) -> Result<(Pruned, bool)> {
        match self {
            Store::Sqlite(s) => s.prune_batch(step).await,
            Store::Postgres(s) => s.prune_batch(step).await,
        }
    }

    /// Adds flushed usage (calls, last use) to keys.
    pub async fn record_key_usage(&self, usage: &[(String, u64, Timestamp)]) -> Result<()> {
        on_pool!(self, record_key_usage(usage))
    }

    /// Recomputes audit chains (the principal's own, one asked for, or all) and names the first
    /// bad entry.
    pub async fn verify_audit(
        &self,
        principal: &Principal,
        tenant: Option<&str>,
    ) -> Result<Verification> {
        on_pool!(self, audit_verify(principal, tenant))
    }

    /// Starts a web session of the key `key_id`: stores the SHA-256 of `session_id` (never the
    /// id itself) and the CSRF token, and drops expired sessions.
    pub async fn create_session(
        &self,
        session_id: &str,
        key_id: &str,
        csrf_token: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let hash = audit::sha256_hex(session_id);
        on_pool!(
            self,
            create_session(&hash, key_id, csrf_token, created_at, expires_at)
        )
    }

    /// The session `session_id` at `now` with its key reloaded: `None` when unknown, expired,
    /// or its key revoked.
    pub async fn session(&self, session_id: &str, now: Timestamp) -> Result<Option<WebSession>> {
        let hash = audit::sha256_hex(session_id);
        on_pool!(self, session(&hash, now))
    }

    /// Points a platform key's session at a tenant (`None`: all tenants).
    pub async fn choose_session_tenant(
        &self,
        session_id: &str,
        principal: &Principal,
        tenant: Option<&TenantId>,
    ) -> Result<()> {
        let hash = audit::sha256_hex(session_id);
        on_pool!(self, choose_session_tenant(&hash, principal, tenant))
    }

    /// Ends the session `session_id`.
    pub async fn end_session(&self, session_id: &str) -> Result<()> {
        let hash = audit::sha256_hex(session_id);
        on_pool!(self, end_session(&hash))
    }
}
