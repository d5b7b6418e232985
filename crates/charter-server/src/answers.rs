//! Answers that are not one store or core type as it is: lists, a key with its value, a run
//! with its actions, counts. The handlers serialize these very types and the document describes
//! them (`utoipa::ToSchema`), so what is sent and what is documented cannot differ.

use charter_core::Policy;
use charter_store::{ApiKey, Run, RunAction};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `{items: [...]}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Items<T> {
    /// The items.
    pub(crate) items: Vec<T>,
}

/// A key just created: the only answer that ever shows its value, `key`.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedKey {
    /// The key itself, for `Authorization: Bearer <key>`: shown only here, stored only hashed.
    pub(crate) key: String,
    /// The key as listed.
    #[serde(flatten)]
    pub(crate) api_key: ApiKey,
}

/// A run with its actions, in order, each with its decision.
#[derive(Serialize, ToSchema)]
pub(crate) struct RunWithActions {
    /// The run.
    #[serde(flatten)]
    pub(crate) run: Run,
    /// Its actions, in order.
    pub(crate) actions: Vec<RunAction>,
}

/// What `POST /v1/runs/import` imported.
#[derive(Serialize, ToSchema)]
pub(crate) struct RunsImported {
    /// Runs imported.
    pub(crate) runs: u64,
    /// Actions imported.
    pub(crate) actions: u64,
}

/// The violations of one time bucket.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatsBucket {
    /// The bucket's start (buckets are aligned to the Unix epoch).
    #[schema(value_type = String, format = DateTime)]
    pub(crate) start: Timestamp,
    /// Violations in it.
    pub(crate) count: u64,
}

/// Violation counts per time bucket, oldest first; buckets without violations are left out.
#[derive(Serialize, ToSchema)]
pub(crate) struct ViolationStats {
    /// The buckets.
    pub(crate) buckets: Vec<StatsBucket>,
}

/// A deleted draft.
#[derive(Serialize, ToSchema)]
pub(crate) struct Deleted {
    /// The deleted policy's id.
    pub(crate) deleted: String,
}

/// A policy version as the API shows it: the stored version (charter-core's `Policy`, whose
/// schema is the core's own, `PolicyVersion`) with its latest validation.
#[derive(Serialize, ToSchema)]
#[schema(as = Policy)]
pub(crate) struct PolicyView<'a> {
    /// The version.
    #[serde(flatten)]
    #[schema(value_type = crate::schemas::CorePolicy)]
    pub(crate) policy: &'a Policy,
    /// The latest validation, of any revision; `null` if never validated.
    pub(crate) last_validation: Option<LastValidation>,
}

/// The latest validation of a policy.
#[derive(Serialize, ToSchema)]
pub(crate) struct LastValidation {
    /// The revision validated.
    pub(crate) revision: u32,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub(crate) at: Timestamp,
    /// The validation report, as `POST /v1/policies/{id}/validate` answered it.
    #[schema(value_type = Object)]
    pub(crate) report: Value,
}

/// The versions of a policy's lineage, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyVersions<T> {
    /// The lineage.
    #[schema(value_type = String)]
    pub(crate) lineage_id: charter_core::LineageId,
    /// Its versions, oldest first.
    pub(crate) items: Vec<T>,
}

/// Validate's answer, also kept as the policy's latest validation: charter-core's replay report
/// (`ReplayReport`) with what was replayed.
#[derive(Serialize, ToSchema)]
pub(crate) struct ValidationReport {
    /// The policy version replayed.
    #[schema(value_type = String)]
    pub(crate) policy_id: charter_core::PolicyId,
    /// Its revision: the one an activation without force needs validated.
    pub(crate) revision: u32,
    /// The recorded actions replayed: those at or after `since` and before `until`.
    pub(crate) range: ReplayRange,
    /// Whether runs were left out past `max_runs`.
    pub(crate) runs_capped: bool,
    /// What the policy would have done.
    #[serde(flatten)]
    #[schema(value_type = crate::schemas::CoreReplayReport)]
    pub(crate) report: charter_core::replay::ReplayReport,
}

/// The time range a validation replayed.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReplayRange {
    /// The start (inclusive).
    #[schema(value_type = String, format = DateTime)]
    pub(crate) since: Timestamp,
    /// The end (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub(crate) until: Timestamp,
}
