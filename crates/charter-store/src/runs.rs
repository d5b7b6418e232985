//! Runs, their actions and decisions, and violation events, as the store keeps them.

use charter_core::engine::{Decision, Evaluation, Outcome, Violation};
use charter_core::{Action, PolicyId};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// A run's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Checks are answered.
    Running,
    /// A cost rule or the run duration stopped it: every later action is refused.
    Halted,
    /// Ended normally.
    Completed,
    /// Ended in failure.
    Failed,
}

impl RunStatus {
    /// The status as written.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Halted => "halted",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }

    /// The status written `name`.
    pub fn from_name(name: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Halted,
            RunStatus::Completed,
            RunStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// The policy versions a run pinned at its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PinnedSet {
    /// A hash of the pinned versions: runs with equal hashes share one compiled set.
    pub hash: String,
    /// The pinned versions.
    pub policies: Vec<PinnedPolicy>,
}

/// One pinned policy version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PinnedPolicy {
    /// The version's id.
    #[schema(value_type = String)]
    pub id: PolicyId,
    /// Its version number.
    pub version: u32,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Run {
    /// Its id (`run_...`).
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Its agent.
    pub agent_id: String,
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it ended.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// Where it is.
    pub status: RunStatus,
    /// What the caller attached.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// The policy set it pinned.
    pub policy_set: PinnedSet,
    /// Loaded as recorded history rather than run live.
    pub imported: bool,
    /// The violations that halted it, when it is halted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::violations)]
    pub halted_by: Option<Value>,
}

/// A check the engine has evaluated, waiting to be settled, decided and recorded in a group
/// commit ([`crate::ActionWriter`]).
#[derive(Debug, Clone)]
pub struct PendingCheck {
    /// The action's id (`evt_...`).
    pub id: String,
    /// Its run.
    pub run_id: String,
    /// The run's tenant.
    pub tenant_id: String,
    /// The run's agent.
    pub agent_id: String,
    /// When it was checked (the server's clock).
    pub at: Timestamp,
    /// The action, kept whole so it can be replayed.
    pub action: Action,
    /// What the run's pinned set found: violations that need no state, and limit claims.
    pub evaluation: Evaluation,
    /// The hash of the policy set that evaluated it.
    pub policy_set_hash: String,
    /// That set: a counter first claimed by this check is seeded from the recorded actions
    /// this set would have counted on it.
    pub set: std::sync::Arc<charter_core::CompiledSet>,
}

/// Checks to commit together: a part of the writer's queue, shared with it, so a failed commit
/// can be retried one check at a time without copying the checks.
#[derive(Debug, Clone)]
pub struct CheckBatch {
    checks: std::sync::Arc<[PendingCheck]>,
    range: std::ops::Range<usize>,
}

impl CheckBatch {
    /// All of `checks`, in order.
    pub fn new(checks: Vec<PendingCheck>) -> CheckBatch {
        let checks: std::sync::Arc<[PendingCheck]> = checks.into();
        let range = 0..checks.len();
        CheckBatch { checks, range }
    }

    /// The checks, in order.
    pub fn checks(&self) -> &[PendingCheck] {
        self.checks.get(self.range.clone()).unwrap_or_default()
    }

    /// How many checks.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The `index`th check alone.
    pub(crate) fn one(&self, index: usize) -> CheckBatch {
        let at = self.range.start + index;
        CheckBatch {
            checks: std::sync::Arc::clone(&self.checks),
            range: at..(at + 1).min(self.range.end),
        }
    }
}

/// What became of a pending check.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckOutcome {
    /// Its limits were settled and it was recorded with this decision.
    Decided {
        /// The decision, with every violation.
        decision: Decision,
        /// The Monitor's events of its violations, one per violation, in order, as recorded.
        events: Vec<ViolationEvent>,
    },
    /// The run was halted before this check was committed: nothing was recorded.
    Halted {
        /// The violations that halted the run.
        halted_by: Value,
    },
    /// The run had ended before this check was committed: nothing was recorded.
    Ended,
    /// No such run.
    NoRun,
}

/// A block or halt, as the Monitor shows it (one per violated rule of a refused action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ViolationEvent {
    /// Its id (`vio_...`), which also orders events of one instant.
    pub id: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `block` or `halt`.
    #[schema(schema_with = crate::openapi::outcome)]
    pub decision: String,
    /// The policy version.
    pub policy_id: String,
    /// Its name.
    pub policy_name: String,
    /// Its version number.
    pub policy_version: u32,
    /// Its lineage.
    pub lineage_id: String,
    /// The rule.
    pub rule_id: String,
    /// The rule's type.
    #[schema(schema_with = crate::openapi::rule_type)]
    pub rule_type: String,
    /// The run's tenant.
    pub tenant_id: String,
    /// The run's agent.
    pub agent_id: String,
    /// The run.
    pub run_id: String,
    /// The refused action.
    pub action_id: String,
    /// The action's kind and a summary.
    pub action: ActionSummary,
    /// What matched, masked.
    pub matching_input: Option<String>,
    /// Why.
    pub message: String,
}

impl ViolationEvent {
    /// The event of `violation`, one of the violations a check of `check`'s action was
    /// decided with (`shown`: the action as the Monitor shows it), under a new id: the one
    /// place an event is made from a decision, for the store to record and the server to
    /// stream.
    pub(crate) fn of(
        check: &PendingCheck,
        violation: &Violation,
        shown: &ActionSummary,
    ) -> ViolationEvent {
        let policy = &violation.source.policy;
        ViolationEvent {
            id: crate::ids::new("vio"),
            at: check.at,
            decision: violation.outcome.as_str().to_owned(),
            policy_id: policy.id.to_string(),
            policy_name: policy.name.clone(),
            policy_version: policy.version,
            lineage_id: policy.lineage_id.to_string(),
            rule_id: violation.source.rule_id.to_string(),
            rule_type: violation.source.rule_type.as_str().to_owned(),
            tenant_id: check.tenant_id.clone(),
            agent_id: check.agent_id.clone(),
            run_id: check.run_id.clone(),
            action_id: check.id.clone(),
            action: shown.clone(),
            matching_input: violation.matching_input.clone(),
            message: violation.message.clone(),
        }
    }
}
/// An action in a violation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActionSummary {
    /// `tool_call`, `data_access`, `output` or `model_call`.
    #[schema(schema_with = crate::openapi::action_kind)]
    pub kind: String,
    /// The tool, resource, channel or model.
    pub summary: String,
}

/// Filters of the Monitor; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    /// One policy version.
    pub policy_id: Option<String>,
    /// One lineage.
    pub lineage_id: Option<String>,
    /// One agent.
    pub agent_id: Option<String>,
    /// One tenant (a tenant key sees only its own: another tenant's id matches nothing).
    pub tenant_id: Option<String>,
    /// One run.
    pub run_id: Option<String>,
    /// One rule type.
    pub rule_type: Option<String>,
    /// One decision, `block` or `halt`.
    pub decision: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}

/// A page of a list, newest first, with the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass this to get the next page.
    pub next_cursor: Option<String>,
}

/// Filters of a run list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// One tenant (a tenant key lists only its own: another tenant's id matches nothing).
    pub tenant_id: Option<String>,
    /// One agent.
    pub agent_id: Option<String>,
    /// One status.
    pub status: Option<RunStatus>,
    /// Started at or after.
    pub since: Option<Timestamp>,
}

/// An action of a run, with its decision, as `GET /v1/runs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunAction {
    /// The action's id.
    pub id: String,
    /// When it was checked.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The action as checked (`None` when its input was not kept).
    #[schema(schema_with = crate::openapi::action_or_null)]
    pub action: Option<Value>,
    /// What was decided (`None` for an imported action without a recorded decision).
    #[schema(schema_with = crate::openapi::outcome_or_null)]
    pub decision: Option<String>,
}

/// A run of recorded history to import (for Validate): its actions carry their own times.
#[derive(Debug, Clone)]
pub struct ImportedRun {
    /// The run's tenant.
    pub tenant_id: String,
    /// The run's agent (it must exist in the tenant).
    pub agent_id: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended (`None`: at its last action).
    pub ended_at: Option<Timestamp>,
    /// `completed`, `failed` or `halted`.
    pub status: RunStatus,
    /// What the source attached.
    pub metadata: Value,
    /// Its actions, in time order, none before `started_at`.
    pub actions: Vec<ImportedAction>,
}

/// Where an import's runs come from, one at a time: the store pulls them as it writes them,
/// so a history of any length never sits in memory whole. It pulls inside its write
/// transactions (on SQLite, holding the database's one write slot): a source gives its runs
/// from memory or a local file, never waiting on a network.
pub trait RunSource: Send {
    /// The next run; `Ok(None)` once every run was given. An error ends the import, which
    /// then leaves nothing behind.
    fn next_run(
        &mut self,
    ) -> impl Future<Output = Result<Option<ImportedRun>, crate::StoreError>> + Send;
}

/// The runs of a slice, in order (each cloned as it is pulled).
impl RunSource for std::slice::Iter<'_, ImportedRun> {
    async fn next_run(&mut self) -> Result<Option<ImportedRun>, crate::StoreError> {
        Ok(self.next().cloned())
    }
}

/// The runs of a vector, in order, moved out as they are pulled.
impl RunSource for std::vec::IntoIter<ImportedRun> {
    async fn next_run(&mut self) -> Result<Option<ImportedRun>, crate::StoreError> {
        Ok(self.next())
    }
}

/// One recorded action of an imported run.
#[derive(Debug, Clone)]
pub struct ImportedAction {
    /// When it happened.
    pub at: Timestamp,
    /// The action.
    pub action: Action,
    /// What the source system decided, if known (feeds "already blocked").
    pub decision: Option<Outcome>,
}
