//! Recorded history: Validate's pages of actions, and importing runs recorded elsewhere.

use charter_core::engine::Outcome;
use sqlx::{Pool, Row};

use super::accounts::visible_tenant;
use super::query::{Bind, Filters, bound};
use super::runs::insert_run;
use super::{Db, Result, Tx, ms, time};
use crate::error::StoreError;
use crate::ids;
use crate::model::Principal;
use crate::runs::{ImportedRun, PinnedSet, Run, RunSource, RunStatus};
use crate::{HistoryPage, RecordedRow};

/// One page of recorded actions (`HistoryPage`) the principal may read: Validate streams a
/// range in pages, so a million actions never sit in memory at once, and each page is an
/// index range scan.
pub(crate) async fn actions_page(
    pool: &Pool<Db>,
    principal: &Principal,
    page: &HistoryPage,
) -> Result<Vec<RecordedRow>> {
    let (sql, binds) = actions_page_query(principal, page);
    let rows = bound(sql, binds).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            let input: Option<String> = r.try_get("input")?;
            let decision: Option<String> = r.try_get("decision")?;
            Ok(RecordedRow {
                id: r.try_get("id")?,
                run_id: r.try_get("run_id")?,
                tenant_id: r.try_get("tenant_id")?,
                agent_id: r.try_get("agent_id")?,
                at_ms: r.try_get("at")?,
                run_started_at: time(r.try_get("started_at")?)?,
                // An input this version cannot read is "not replayable", never guessed.
                action: input
                    .and_then(|i| charter_core::Action::from_json_reading(&i, &page.args).ok()),
                decision: decision.as_deref().and_then(Outcome::from_name),
            })
        })
        .collect()
}

/// The query of one page of `actions_page` and its bound values, in placeholder order (SQLite's
/// Validate reader runs the same text through rusqlite). Columns: `id`, `run_id`,
/// `tenant_id`, `agent_id`, `at`, `input`, `decision`, the run's `started_at`.
pub(crate) fn actions_page_query(principal: &Principal, page: &HistoryPage) -> (String, Vec<Bind>) {
    let tenant = match principal {
        Principal::Tenant(own) => Some(own.as_str()),
        Principal::Platform => page.tenant.as_deref(),
    };
    let mut f = Filters::default();
    f.text("a.tenant_id = ?", tenant);
    f.text("a.agent_id = ?", page.agent.as_deref());
    // The first page starts just before `since`: ids and run ids are never empty.
    let (at, run, id) = match &page.after {
        Some((at, run, id)) => (*at, run.clone(), id.clone()),
        None => (ms(page.since) - 1, String::new(), String::new()),
    };
    f.row(
        "(a.at, a.run_id, a.id) > (?1, ?2, ?3)",
        vec![Bind::Int(at), Bind::Text(run), Bind::Text(id)],
    );
    f.int("a.at < ?", Some(ms(page.until)));
    // Nothing of an import in progress.
    f.always("r.import_id IS NULL");
    let sql = format!(
        "SELECT a.id, a.run_id, a.tenant_id, a.agent_id, a.at, a.input, a.decision, r.started_at \
         FROM actions a JOIN runs r ON r.id = a.run_id WHERE {} ORDER BY a.at, a.run_id, a.id LIMIT {}",
        f.sql(),
        page.limit.clamp(1, 10_000)
    );
    (sql, f.binds)
}

/// What one piece of an import wrote.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Piece {
    /// Runs written.
    pub(crate) runs: u64,
    /// Their actions.
    pub(crate) actions: u64,
    /// Whether `runs` has ended (else the budget ran out first).
    pub(crate) ended: bool,
}

/// Imports recorded runs pulled one at a time from `runs` in `tx`, until the runs end or about
/// `budget` actions were written. Each run's agent must exist in its tenant, which the
/// principal must see; `path` of an error names the run's index (`first` counts the runs of
/// earlier pieces), always that of the run pulled last. The runs carry `import_id` when given
/// (an import in pieces, unseen until its last piece).
pub(crate) async fn import_piece(
    tx: &mut Tx,
    principal: &Principal,
    runs: &mut impl RunSource,
    first: u64,
    budget: u64,
    import_id: Option<&str>,
) -> Result<Piece> {
    let mut piece = Piece::default();
    while piece.actions < budget {
        let Some(imported) = runs.next_run().await? else {
            piece.ended = true;
            return Ok(piece);
        };
        let i = first + piece.runs;
        piece.actions += import_run(tx, principal, i, &imported, import_id).await?;
        piece.runs += 1;
    }
    Ok(piece)
}

/// Checks and writes one imported run (index `i` of its import); returns its actions.
async fn import_run(
    tx: &mut Tx,
    principal: &Principal,
    i: u64,
    imported: &ImportedRun,
    import_id: Option<&str>,
) -> Result<u64> {
    let path = |field: &str| format!("runs[{i}].{field}");
    let exists = sqlx::query("SELECT 1 AS one FROM agents WHERE tenant_id = $1 AND id = $2")
        .bind(&imported.tenant_id)
        .bind(&imported.agent_id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if !exists || !principal.sees(Some(&imported.tenant_id)) {
        // A tenant the key cannot name is refused as one that exists nowhere.
        visible_tenant(tx, principal, &imported.tenant_id, &path("tenant_id")).await?;
        return Err(StoreError::invalid(
            path("agent_id"),
            format!(
                "no agent `{}` in tenant `{}`",
                imported.agent_id, imported.tenant_id
            ),
        ));
    }
    if imported.status == RunStatus::Running {
        return Err(StoreError::invalid(
            path("status"),
            "an imported run has ended",
        ));
    }
    let mut last = imported.started_at;
    for (k, a) in imported.actions.iter().enumerate() {
        if a.at < last {
            return Err(StoreError::invalid(
                format!("runs[{i}].actions[{k}].at"),
                "actions are in time order, none before the run's start",
            ));
        }
        last = a.at;
    }
    let ended_at = imported.ended_at.unwrap_or(last);
    if ended_at < last {
        return Err(StoreError::invalid(
            path("ended_at"),
            "a run ends after its last action",
        ));
    }
    let run = Run {
        id: ids::new("run"),
        tenant_id: imported.tenant_id.clone(),
        agent_id: imported.agent_id.clone(),
        started_at: imported.started_at,
        ended_at: Some(ended_at),
        status: imported.status,
        metadata: imported.metadata.clone(),
        policy_set: PinnedSet {
            hash: String::new(),
            policies: Vec::new(),
        },
        imported: true,
        halted_by: None,
    };
    insert_run(tx, &run, import_id).await?;
    for a in &imported.actions {
        sqlx::query(
            "INSERT INTO actions (id, run_id, tenant_id, agent_id, at, kind, input, decision, policy_set_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(ids::new("evt"))
        .bind(&run.id)
        .bind(&run.tenant_id)
        .bind(&run.agent_id)
        .bind(ms(a.at))
        .bind(a.action.kind().as_str())
        .bind(serde_json::to_string(&a.action)?)
        .bind(a.decision.map(Outcome::as_str))
        .execute(&mut **tx)
        .await?;
    }
    Ok(imported.actions.len() as u64)
}
