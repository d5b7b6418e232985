//! Runs: starting one (pinning the active set), reading, ending and listing them.

use charter_core::policy::Policy;
use charter_core::{Scope, TenantId};
use jiff::Timestamp;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Pool, Row};

use super::accounts::visible_tenant;
use super::policies::{POLICY_COLUMNS, policy_row};
use super::query::{Bind, Filters, Listing, bad_cursor, newest_first, tenant_filters};
use super::{Db, FOR_UPDATE, Result, Tx, begin, ms, time};
use crate::audit::{self};
use crate::error::StoreError;
use crate::ids;
use crate::model::Principal;
use crate::runs::{Page, PinnedPolicy, PinnedSet, Run, RunAction, RunFilter, RunStatus};

fn run_row(row: &<Db as sqlx::Database>::Row) -> Result<Run> {
    let status: String = row.try_get("status")?;
    let metadata: String = row.try_get("metadata")?;
    let policies: String = row.try_get("policy_set")?;
    let ended: Option<i64> = row.try_get("ended_at")?;
    let imported: i64 = row.try_get("imported")?;
    Ok(Run {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        agent_id: row.try_get("agent_id")?,
        started_at: time(row.try_get("started_at")?)?,
        ended_at: ended.map(time).transpose()?,
        status: RunStatus::from_name(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown run status {status}")))?,
        metadata: serde_json::from_str(&metadata)?,
        policy_set: PinnedSet {
            hash: row.try_get("policy_set_hash")?,
            policies: serde_json::from_str(&policies)?,
        },
        imported: imported != 0,
        halted_by: {
            let text: Option<String> = row.try_get("halted_by")?;
            text.as_deref().map(serde_json::from_str).transpose()?
        },
    })
}

const RUNS: Listing<Run> = Listing {
    table: "runs",
    time: "started_at",
    row: run_row,
    key: |r| (r.started_at.as_millisecond(), r.id.as_str()),
};

/// The active policies that govern runs of `agent` in `tenant`, oldest first: those of the
/// platform, the tenant and the agent, found by their exact scope text (an index lookup, so a
/// tenant with thousands of agent policies costs no more).
async fn governing(tx: &mut Tx, tenant: &str, agent: &str) -> Result<Vec<Policy>> {
    let bad = |e: charter_core::ids::IdError| StoreError::invalid("agent_id", e.to_string());
    let tenant_id = TenantId::new(tenant).map_err(bad)?;
    let scopes = [
        Scope::Platform,
        Scope::Tenant {
            tenant_id: tenant_id.clone(),
        },
        Scope::Agent {
            tenant_id,
            agent_id: charter_core::AgentId::new(agent).map_err(bad)?,
        },
    ];
    let texts = scopes
        .iter()
        .map(serde_json::to_string)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE status = 'active' \
         AND scope IN ($1, $2, $3) ORDER BY activated_at, id"
    )))
    .bind(&texts[0])
    .bind(&texts[1])
    .bind(&texts[2])
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored = policy_row(row)?;
        // The text match is exact; this re-check only guards against a foreign writer.
        if stored.policy.scope().covers(tenant, agent) {
            out.push(stored.policy);
        }
    }
    Ok(out)
}

/// The hash of a pinned set: of its versions' ids and numbers, sorted.
fn pinned_hash(policies: &[PinnedPolicy]) -> String {
    let mut parts: Vec<String> = policies
        .iter()
        .map(|p| format!("{}@{}", p.id, p.version))
        .collect();
    parts.sort();
    audit::sha256_hex(&parts.join("\n"))
}

/// Starts a run, pinning the active set in the same transaction; returns the run and the
/// pinned policies (to compile, or find compiled by the set's hash).
pub(crate) async fn start_run(
    pool: &Pool<Db>,
    principal: &Principal,
    tenant: &str,
    agent: &str,
    metadata: &Value,
    at: Timestamp,
) -> Result<(Run, Vec<Policy>)> {
    let mut tx = begin(pool).await?;
    let exists = sqlx::query("SELECT 1 AS one FROM agents WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(agent)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists || !principal.sees(Some(tenant)) {
        // A tenant the key cannot name is refused as one that exists nowhere.
        visible_tenant(&mut tx, principal, tenant, "tenant_id").await?;
        return Err(StoreError::invalid(
            "agent_id",
            format!("no agent `{agent}` in tenant `{tenant}`"),
        ));
    }
    let policies = governing(&mut tx, tenant, agent).await?;
    let pinned: Vec<PinnedPolicy> = policies
        .iter()
        .map(|p| PinnedPolicy {
            id: p.id.clone(),
            version: p.version,
        })
        .collect();
    let run = Run {
        id: ids::new("run"),
        tenant_id: tenant.to_owned(),
        agent_id: agent.to_owned(),
        started_at: at,
        ended_at: None,
        status: RunStatus::Running,
        metadata: metadata.clone(),
        policy_set: PinnedSet {
            hash: pinned_hash(&pinned),
            policies: pinned,
        },
        imported: false,
        halted_by: None,
    };
    insert_run(&mut tx, &run, None).await?;
    tx.commit().await?;
    Ok((run, policies))
}

/// Inserts `run`; one of an import in progress carries its `import_id` (and stays unseen).
pub(super) async fn insert_run(tx: &mut Tx, run: &Run, import_id: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO runs (id, tenant_id, agent_id, started_at, ended_at, status, metadata, \
         policy_set_hash, policy_set, imported, import_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&run.id)
    .bind(&run.tenant_id)
    .bind(&run.agent_id)
    .bind(ms(run.started_at))
    .bind(run.ended_at.map(ms))
    .bind(run.status.as_str())
    .bind(serde_json::to_string(&run.metadata)?)
    .bind(&run.policy_set.hash)
    .bind(serde_json::to_string(&run.policy_set.policies)?)
    .bind(i64::from(run.imported))
    .bind(import_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn get_run(pool: &Pool<Db>, principal: &Principal, id: &str) -> Result<Run> {
    // The runs of an import in progress do not exist yet.
    let row = sqlx::query("SELECT * FROM runs WHERE id = $1 AND import_id IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => {
            let run = run_row(&row)?;
            if principal.sees(Some(&run.tenant_id)) {
                Ok(run)
            } else {
                Err(StoreError::not_found(format!("run {id}")))
            }
        }
        None => Err(StoreError::not_found(format!("run {id}"))),
    }
}

/// The policies a run pinned, by id (for a node that has not compiled its set yet).
pub(crate) async fn pinned_policies(pool: &Pool<Db>, run: &Run) -> Result<Vec<Policy>> {
    let mut out = Vec::with_capacity(run.policy_set.policies.len());
    for pinned in &run.policy_set.policies {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1"
        )))
        .bind(pinned.id.as_str())
        .fetch_one(pool)
        .await?;
        out.push(policy_row(&row)?.policy);
    }
    Ok(out)
}

pub(crate) async fn end_run(
    pool: &Pool<Db>,
    principal: &Principal,
    id: &str,
    status: RunStatus,
    at: Timestamp,
) -> Result<Run> {
    if !matches!(status, RunStatus::Completed | RunStatus::Failed) {
        return Err(StoreError::invalid(
            "status",
            "a run ends `completed` or `failed`",
        ));
    }
    let mut tx = begin(pool).await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM runs WHERE id = $1 AND import_id IS NULL{FOR_UPDATE}"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let run = match row {
        Some(row) => run_row(&row)?,
        None => return Err(StoreError::not_found(format!("run {id}"))),
    };
    if !principal.sees(Some(&run.tenant_id)) {
        return Err(StoreError::not_found(format!("run {id}")));
    }
    if run.ended_at.is_some() {
        return Err(StoreError::conflict(format!("run {id} has already ended")));
    }
    // A halted run stays halted when ended.
    let status = if run.status == RunStatus::Halted {
        RunStatus::Halted
    } else {
        status
    };
    sqlx::query("UPDATE runs SET status = $1, ended_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(ms(at))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Run {
        status,
        ended_at: Some(at),
        ..run
    })
}

pub(crate) async fn list_runs(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &RunFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<Run>> {
    let mut f = Filters::default();
    tenant_filters(&mut f, principal, filter.tenant_id.as_deref());
    f.text("agent_id = ?", filter.agent_id.as_deref());
    f.text("status = ?", filter.status.map(RunStatus::as_str));
    f.int("started_at >= ?", filter.since.map(ms));
    f.always("import_id IS NULL");
    newest_first(pool, &RUNS, f, cursor, limit).await
}

/// One page of a run's actions in order, after `cursor` (`<at>~<id>`, the last action of the
/// previous page): a run of thousands of actions is read a page at a time, and the scan of
/// its agent's index stops at the page's end.
pub(crate) async fn run_actions_page(
    pool: &Pool<Db>,
    principal: &Principal,
    run_id: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<RunAction>> {
    let run = get_run(pool, principal, run_id).await?;
    let limit = limit.clamp(1, 1_000);
    let after = match cursor {
        Some(cursor) => {
            let (at, id) = cursor.split_once('~').ok_or_else(bad_cursor)?;
            Some((at.parse::<i64>().map_err(|_| bad_cursor())?, id.to_owned()))
        }
        None => None,
    };
    let mut f = Filters::default();
    f.text("tenant_id = ?", Some(&run.tenant_id));
    f.text("agent_id = ?", Some(&run.agent_id));
    f.int("at >= ?", Some(ms(run.started_at)));
    f.text("run_id = ?", Some(run_id));
    if let Some((at, id)) = after {
        f.row(
            "(at > ?1 OR (at = ?2 AND id > ?3))",
            vec![Bind::Int(at), Bind::Int(at), Bind::Text(id)],
        );
    }
    // Through the agent's index: a run's actions are its agent's, from its start on.
    let sql = format!(
        "SELECT id, at, input, decision FROM actions WHERE {} ORDER BY at, id LIMIT {}",
        f.sql(),
        u64::from(limit) + 1
    );
    let rows = f.query(sql).fetch_all(pool).await?;
    let mut items = rows.iter().map(run_action).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|a| format!("{}~{}", ms(a.at), a.id))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn run_action(r: &<Db as sqlx::Database>::Row) -> Result<RunAction> {
    let input: Option<String> = r.try_get("input")?;
    Ok(RunAction {
        id: r.try_get("id")?,
        at: time(r.try_get("at")?)?,
        action: input.as_deref().map(serde_json::from_str).transpose()?,
        decision: r.try_get("decision")?,
    })
}

pub(crate) async fn run_actions(
    pool: &Pool<Db>,
    principal: &Principal,
    run_id: &str,
) -> Result<Vec<RunAction>> {
    let run = get_run(pool, principal, run_id).await?;
    // Through the agent's index: a run's actions are its agent's, from its start on.
    let rows = sqlx::query(
        "SELECT id, at, input, decision FROM actions \
         WHERE tenant_id = $1 AND agent_id = $2 AND at >= $3 AND run_id = $4 ORDER BY at, id",
    )
    .bind(&run.tenant_id)
    .bind(&run.agent_id)
    .bind(ms(run.started_at))
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let input: Option<String> = r.try_get("input")?;
            Ok(RunAction {
                id: r.try_get("id")?,
                at: time(r.try_get("at")?)?,
                action: input.as_deref().map(serde_json::from_str).transpose()?,
                decision: r.try_get("decision")?,
            })
        })
        .collect()
}
