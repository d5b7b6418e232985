//! Validate (product.md §5), with no HTTP in it: replay a policy over the recorded actions of
//! the runs in its scope and range, with fresh simulated limits, and store the report against
//! its revision. The API (`POST /v1/policies/{id}/validate`) and the workspace's policy page
//! both call [`run`]; each reads its own input into a [`Range`] first.

use charter_core::calendar::Span;
use charter_core::engine::ArgsRead;
use charter_core::replay::{RecordedAction, Replay};
use charter_core::{CompiledSet, Scope};
use charter_store::{HistoryPage, Principal, StoreError};
use jiff::Timestamp;

use crate::answers::{ReplayRange, ValidationReport};
use crate::extract::Caller;
use crate::state::AppState;

/// Actions read from the store per page: the replay never holds more.
const PAGE: u32 = 2_000;
/// The default and largest number of runs a validation looks at.
pub(crate) const MAX_RUNS: u64 = 10_000;
/// How far back a validation looks by default.
pub(crate) const DEFAULT_LOOKBACK: &str = "7d";

/// What a validation replays: the recorded actions at or after `since` and before `until`, of
/// at most `max_runs` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) since: Timestamp,
    pub(crate) until: Timestamp,
    pub(crate) max_runs: u64,
}

/// A range that cannot be: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRange {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

impl Range {
    /// The range from what a caller gave: `until` (default `now`), then `since` or `lookback`
    /// back from `until` (not both; default 7 days), and `max_runs` (1–10,000, default 10,000).
    pub(crate) fn read(
        now: Timestamp,
        lookback: Option<&str>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        max_runs: Option<u64>,
    ) -> Result<Range, BadRange> {
        let bad = |field, message: String| BadRange { field, message };
        let until = until.unwrap_or(now);
        let since = match (since, lookback) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "lookback",
                    "give `lookback` or `since`, not both".into(),
                ));
            }
            (Some(since), None) => since,
            (None, lookback) => {
                let span = Span::parse(lookback.unwrap_or(DEFAULT_LOOKBACK))
                    .map_err(|e| bad("lookback", e.to_string()))?;
                let millis = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
                Timestamp::from_millisecond(until.as_millisecond().saturating_sub(millis))
                    .map_err(|e| bad("lookback", e.to_string()))?
            }
        };
        if since >= until {
            return Err(bad(
                "since",
                "the range is empty: since must be before until".into(),
            ));
        }
        let max_runs = max_runs.unwrap_or(MAX_RUNS);
        if max_runs == 0 || max_runs > MAX_RUNS {
            return Err(bad("max_runs", format!("1 to {MAX_RUNS}")));
        }
        Ok(Range {
            since,
            until,
            max_runs,
        })
    }
}

/// Replays policy `id` as `caller` sees it over `range`, stores the report against the
/// policy's revision (what an activation without force needs) and answers it.
pub(crate) async fn run(
    state: &AppState,
    caller: &Caller,
    id: &str,
    range: Range,
) -> Result<ValidationReport, StoreError> {
    let Range {
        since,
        until,
        max_runs,
    } = range;
    let stored = state.store.get_policy(&caller.principal, id).await?;
    let policy = &stored.policy;
    let set = CompiledSet::compile([policy])
        .map_err(|e| StoreError::Backend(format!("compiling the policy: {e}")))?;
    let rule_ids = policy.rules().iter().map(|r| r.id.clone());
    let mut replay = Replay::new(&set, rule_ids);
    let (tenant, agent) = match policy.scope() {
        Scope::Platform => (None, None),
        Scope::Tenant { tenant_id } => (Some(tenant_id.as_str()), None),
        Scope::Agent {
            tenant_id,
            agent_id,
        } => (Some(tenant_id.as_str()), Some(agent_id.as_str())),
    };
    // A platform policy replays every tenant's history: only the platform reads it all.
    let reader = if tenant.is_none() {
        Principal::Platform
    } else {
        caller.principal.clone()
    };
    // The next page is read while this one is replayed: the store's work (on SQLite, its own
    // thread) and the replay overlap.
    let fetch = |page: HistoryPage| {
        let store = state.store.clone();
        let reader = reader.clone();
        tokio::spawn(async move { store.actions_page(&reader, &page).await })
    };
    let first = HistoryPage {
        tenant: tenant.map(str::to_owned),
        agent: agent.map(str::to_owned),
        since,
        until,
        after: None,
        limit: PAGE,
        // Arguments no rule of the policy reads are checked but not built: most of a page's
        // parsing, and of what its replay frees, otherwise.
        args: ArgsRead::of([policy]),
    };
    let mut runs = std::collections::HashSet::new();
    let mut capped = false;
    let mut next = Some(fetch(first.clone()));
    while let Some(reading) = next.take() {
        let page = reading
            .await
            .map_err(|e| StoreError::Backend(format!("reading recorded actions: {e}")))??;
        let Some(last) = page.last() else { break };
        // A short page is the last one.
        if page.len() >= PAGE as usize {
            next = Some(fetch(first.following(last)));
        }
        for row in page {
            if !runs.contains(row.run_id.as_str()) {
                if runs.len() as u64 >= max_runs {
                    capped = true;
                    continue;
                }
                runs.insert(row.run_id.clone());
            }
            let at = Timestamp::from_millisecond(row.at_ms)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            replay.push(&RecordedAction {
                run_id: row.run_id,
                tenant_id: row.tenant_id,
                agent_id: row.agent_id,
                run_started_at: row.run_started_at,
                at,
                action: row.action,
                recorded: row.decision,
            });
        }
    }
    let report = ValidationReport {
        policy_id: policy.id.clone(),
        revision: policy.revision,
        range: ReplayRange { since, until },
        runs_capped: capped,
        report: replay.finish(),
    };
    let value = serde_json::to_value(&report).map_err(|e| StoreError::Backend(e.to_string()))?;
    state
        .store
        .record_validation(
            &caller.change(state.clock.now()),
            id,
            policy.revision,
            &value,
        )
        .await?;
    Ok(report)
}
