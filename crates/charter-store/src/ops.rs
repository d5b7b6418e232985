//! The store's operations, written once for both backends: this file is compiled twice, as
//! `sqlite::ops` and `postgres::ops`, each parent module supplying `Db`, `begin` and the few
//! SQL fragments that differ. Placeholders are `$1, $2, ...` in order of first use, which both
//! SQLite and PostgreSQL read the same way.

use charter_core::engine::{Outcome, Violation};
use charter_core::limits::{Claim, Exceeded, Settle};
use charter_core::policy::{Policy, PolicyDefinition, Status};
use charter_core::rule::{Rule, check_unique_ids};
use charter_core::{LineageId, PolicyId, RuleId, Scope, TenantId};
use jiff::Timestamp;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Pool, QueryBuilder, Row, Transaction};

use super::{BYTE_ORDER, Db, FOR_UPDATE, LOCK_COUNTER, begin};
use crate::audit::{self, GENESIS, Hashed};
use crate::book::Book;
use crate::error::StoreError;
use crate::ids;
use crate::model::{
    Activation, Actor, Agent, ApiKey, AuditEntry, Change, KeyScope, PolicyFilter, Principal,
    StoredPolicy, Tenant, Verification,
};
use crate::runs::{
    ActionRecord, ActionSummary, CheckOutcome, ImportedRun, Page, PendingCheck, PinnedPolicy,
    PinnedSet, Run, RunAction, RunFilter, RunStatus, ViolationEvent, ViolationFilter,
};
use crate::settle::{RunState, Step, step};
use crate::{AuditFilter, PolicyEdit, RecordedRow};

type Result<T> = std::result::Result<T, StoreError>;
type Tx = Transaction<'static, Db>;

const POLICY_COLUMNS: &str = "id, lineage_id, version, tenant_id, scope, status, revision, name, \
     description, rules, cloned_from, created_at, created_by, activated_at, activated_by, \
     deprecated_at, deprecated_by";

fn ms(at: Timestamp) -> i64 {
    at.as_millisecond()
}

fn time(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Backend(format!("bad time {ms}: {e}")))
}

fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("{what} out of range: {v}")))
}

// ---------------------------------------------------------------- audit

/// Appends one entry to the chain of `tenant` (`None`: the platform chain), inside `tx`.
async fn append(
    tx: &mut Tx,
    tenant: Option<&str>,
    change: &Change,
    action: &str,
    policy: Option<(&str, &str, u32)>,
    details: &Value,
) -> Result<()> {
    let chain = tenant.unwrap_or("");
    // The head row serialises appends to one chain (a row lock on PostgreSQL; SQLite
    // transactions are already serial).
    sqlx::query("INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO NOTHING")
        .bind(chain)
        .bind(GENESIS)
        .execute(&mut **tx)
        .await?;
    let head = sqlx::query(AssertSqlSafe(format!(
        "SELECT seq, hash FROM audit_heads WHERE chain = $1{FOR_UPDATE}"
    )))
    .bind(chain)
    .fetch_one(&mut **tx)
    .await?;
    let prev_seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let seq =
        u64::try_from(prev_seq + 1).map_err(|_| StoreError::Backend("bad audit seq".into()))?;
    let details = serde_json::to_string(details)?;
    let (policy_id, lineage_id, version) = match policy {
        Some((p, l, v)) => (Some(p), Some(l), Some(v)),
        None => (None, None, None),
    };
    let hash = audit::hash(
        &prev_hash,
        &Hashed {
            seq,
            at_ms: ms(change.at),
            tenant_id: tenant,
            actor_key_id: &change.actor.key_id,
            actor_name: &change.actor.name,
            action,
            policy_id,
            lineage_id,
            version,
            details: &details,
        },
    );
    sqlx::query(
        "INSERT INTO audit_log (chain, seq, at, tenant_id, actor_key_id, actor_name, action, \
         policy_id, lineage_id, version, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(chain)
    .bind(prev_seq + 1)
    .bind(ms(change.at))
    .bind(tenant)
    .bind(&change.actor.key_id)
    .bind(&change.actor.name)
    .bind(action)
    .bind(policy_id)
    .bind(lineage_id)
    .bind(version.map(i64::from))
    .bind(&details)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE chain = $3")
        .bind(prev_seq + 1)
        .bind(&hash)
        .bind(chain)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn audit_entry(row: &<Db as sqlx::Database>::Row) -> Result<(AuditEntry, String)> {
    let details: String = row.try_get("details")?;
    let version: Option<i64> = row.try_get("version")?;
    let seq: i64 = row.try_get("seq")?;
    let entry = AuditEntry {
        seq: u64::try_from(seq).map_err(|_| StoreError::Backend("bad seq".into()))?,
        at: time(row.try_get("at")?)?,
        tenant_id: row.try_get("tenant_id")?,
        actor: Actor {
            key_id: row.try_get("actor_key_id")?,
            name: row.try_get("actor_name")?,
        },
        action: row.try_get("action")?,
        policy_id: row.try_get("policy_id")?,
        lineage_id: row.try_get("lineage_id")?,
        version: version.map(|v| to_u32(v, "version")).transpose()?,
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    };
    Ok((entry, details))
}

/// The chain a principal reads: its own for a tenant key; for a platform key the one asked
/// for (`Some(None)`: the platform chain), or every chain.
fn chains_for(principal: &Principal, tenant: Option<&str>) -> Option<String> {
    match (principal, tenant) {
        (Principal::Tenant(own), _) => Some(own.as_str().to_owned()),
        (Principal::Platform, Some("platform")) => Some(String::new()),
        (Principal::Platform, Some(t)) => Some(t.to_owned()),
        (Principal::Platform, None) => None,
    }
}

pub(crate) async fn audit_list(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &AuditFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<AuditEntry>> {
    let chain = chains_for(principal, filter.tenant_id.as_deref());
    let limit = limit.clamp(1, 500);
    let mut f = Filters::default();
    f.text("chain = ?", chain.as_deref());
    f.text("policy_id = ?", filter.policy_id.as_deref());
    f.text("lineage_id = ?", filter.lineage_id.as_deref());
    f.text("action = ?", filter.action.as_deref());
    f.text("actor_key_id = ?", filter.actor.as_deref());
    f.int("at >= ?", filter.since.map(ms));
    // Pages follow the chains' own order (chain, seq), which never changes once written;
    // `at` comes from each writer's clock and may interleave.
    if let Some(cursor) = cursor {
        let (seq, chain) = cursor.split_once('~').ok_or_else(bad_cursor)?;
        let seq: i64 = seq.parse().map_err(|_| bad_cursor())?;
        f.row(
            "(chain, seq) > (?1, ?2)",
            vec![Bind::Text(chain.to_owned()), Bind::Int(seq)],
        );
    }
    let sql = format!(
        "SELECT * FROM audit_log WHERE {} ORDER BY chain, seq LIMIT {}",
        f.sql(),
        u64::from(limit) + 1
    );
    let rows = f.query(sql).fetch_all(pool).await?;
    let mut items = rows
        .iter()
        .map(|r| audit_entry(r).map(|(e, _)| e))
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|e| format!("{}~{}", e.seq, e.tenant_id.as_deref().unwrap_or("")))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub(crate) async fn audit_verify(
    pool: &Pool<Db>,
    principal: &Principal,
    tenant: Option<&str>,
) -> Result<Verification> {
    let chain_filter = chains_for(principal, tenant);
    let rows =
        sqlx::query("SELECT * FROM audit_log WHERE ($1 IS NULL OR chain = $1) ORDER BY chain, seq")
            .bind(chain_filter.as_deref())
            .fetch_all(pool)
            .await?;
    let head_rows =
        sqlx::query("SELECT chain, seq, hash FROM audit_heads WHERE ($1 IS NULL OR chain = $1)")
            .bind(chain_filter.as_deref())
            .fetch_all(pool)
            .await?;
    let mut heads: Vec<(String, u64, String)> = Vec::with_capacity(head_rows.len());
    for row in &head_rows {
        let seq: i64 = row.try_get("seq")?;
        heads.push((
            row.try_get("chain")?,
            u64::try_from(seq).unwrap_or(0),
            row.try_get("hash")?,
        ));
    }
    let mut entries: Vec<(String, AuditEntry, String)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let chain: String = row.try_get("chain")?;
        let (entry, details) = audit_entry(row)?;
        entries.push((chain, entry, details));
    }
    let total = entries.len() as u64;
    let mut start = 0;
    while start < entries.len() {
        let chain = entries[start].0.clone();
        let end = entries[start..]
            .iter()
            .position(|(c, _, _)| *c != chain)
            .map_or(entries.len(), |n| start + n);
        let one: Vec<(AuditEntry, String)> = entries[start..end]
            .iter()
            .map(|(_, e, d)| (e.clone(), d.clone()))
            .collect();
        let broken = audit::first_bad(&one).or_else(|| {
            // The head records the last entry written: a chain cut short after it is broken
            // at the first missing entry.
            let last = one.last().map_or(0, |(e, _)| e.seq);
            match heads.iter().find(|(c, _, _)| *c == chain) {
                Some((_, seq, hash))
                    if *seq != last || one.last().is_some_and(|(e, _)| e.hash != *hash) =>
                {
                    Some(last + 1)
                }
                _ => None,
            }
        });
        if let Some(first_bad_seq) = broken {
            return Ok(Verification::Broken {
                ok: false,
                tenant_id: (!chain.is_empty()).then_some(chain),
                first_bad_seq,
            });
        }
        start = end;
    }
    // A chain whose every entry is gone still has its head.
    if let Some((chain, _, _)) = heads
        .iter()
        .find(|(c, seq, _)| *seq > 0 && !entries.iter().any(|(e, _, _)| e == c))
    {
        return Ok(Verification::Broken {
            ok: false,
            tenant_id: (!chain.is_empty()).then(|| chain.clone()),
            first_bad_seq: 1,
        });
    }
    Ok(Verification::Ok {
        ok: true,
        entries: total,
    })
}

// ---------------------------------------------------------------- tenants, agents, keys

fn tenant_row(row: &<Db as sqlx::Database>::Row) -> Result<Tenant> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: time(row.try_get("created_at")?)?,
    })
}

pub(crate) async fn create_tenant(
    pool: &Pool<Db>,
    change: &Change,
    id: &TenantId,
    name: &str,
) -> Result<Tenant> {
    if change.principal != Principal::Platform {
        return Err(StoreError::Forbidden(
            "only platform keys create tenants".into(),
        ));
    }
    if id.as_str() == "platform" {
        return Err(StoreError::invalid(
            "id",
            "`platform` names the platform's audit chain",
        ));
    }
    check_text("name", name)?;
    let mut tx = begin(pool).await?;
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.as_str())
    .bind(name)
    .bind(ms(change.at))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::conflict(format!("tenant {id} already exists")));
    }
    append(
        &mut tx,
        None,
        change,
        "tenant.created",
        None,
        &json!({"tenant_id": id, "name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok(Tenant {
        id: id.to_string(),
        name: name.to_owned(),
        created_at: change.at,
    })
}

pub(crate) async fn list_tenants(pool: &Pool<Db>, principal: &Principal) -> Result<Vec<Tenant>> {
    let rows = sqlx::query("SELECT * FROM tenants WHERE ($1 IS NULL OR id = $1) ORDER BY id")
        .bind(principal.tenant().map(TenantId::as_str))
        .fetch_all(pool)
        .await?;
    rows.iter().map(tenant_row).collect()
}

/// Checks that `tenant` exists and that the principal may see it; otherwise the answer is the
/// same as for a tenant that exists nowhere.
async fn visible_tenant(
    tx: &mut Tx,
    principal: &Principal,
    tenant: &str,
    path: &str,
) -> Result<()> {
    let exists = sqlx::query("SELECT 1 AS one FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if exists && principal.sees(Some(tenant)) {
        Ok(())
    } else {
        Err(StoreError::invalid(path, format!("no tenant `{tenant}`")))
    }
}

fn check_text(path: &str, text: &str) -> Result<()> {
    if text.trim().is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            path,
            "must be 1 to 200 characters, not blank, no control characters",
        ));
    }
    Ok(())
}

pub(crate) async fn create_agent(
    pool: &Pool<Db>,
    change: &Change,
    tenant: &TenantId,
    id: &charter_core::AgentId,
    name: &str,
    owner: Option<&str>,
) -> Result<Agent> {
    if !change.principal.sees(Some(tenant.as_str())) {
        return Err(StoreError::not_found(format!("tenant {tenant}")));
    }
    check_text("name", name)?;
    if let Some(owner) = owner {
        check_text("owner", owner)?;
    }
    let mut tx = begin(pool).await?;
    let exists = sqlx::query("SELECT 1 AS one FROM tenants WHERE id = $1")
        .bind(tenant.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists {
        return Err(StoreError::not_found(format!("tenant {tenant}")));
    }
    let inserted = sqlx::query(
        "INSERT INTO agents (tenant_id, id, name, owner, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .bind(name)
    .bind(owner)
    .bind(ms(change.at))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::conflict(format!("agent {id} already exists")));
    }
    append(
        &mut tx,
        Some(tenant.as_str()),
        change,
        "agent.created",
        None,
        &json!({"agent_id": id, "name": name, "owner": owner}),
    )
    .await?;
    tx.commit().await?;
    Ok(Agent {
        tenant_id: tenant.to_string(),
        id: id.to_string(),
        name: name.to_owned(),
        owner: owner.map(str::to_owned),
        created_at: change.at,
    })
}

pub(crate) async fn list_agents(
    pool: &Pool<Db>,
    principal: &Principal,
    tenant: &str,
) -> Result<Vec<Agent>> {
    if !principal.sees(Some(tenant)) {
        return Err(StoreError::not_found(format!("tenant {tenant}")));
    }
    let known = sqlx::query("SELECT 1 AS one FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_optional(pool)
        .await?
        .is_some();
    if !known {
        return Err(StoreError::not_found(format!("tenant {tenant}")));
    }
    let rows = sqlx::query("SELECT * FROM agents WHERE tenant_id = $1 ORDER BY id")
        .bind(tenant)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Agent {
                tenant_id: row.try_get("tenant_id")?,
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                owner: row.try_get("owner")?,
                created_at: time(row.try_get("created_at")?)?,
            })
        })
        .collect()
}

fn key_row(row: &<Db as sqlx::Database>::Row) -> Result<ApiKey> {
    let scopes: String = row.try_get("scopes")?;
    let calls: i64 = row.try_get("calls")?;
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        tenant_id: row.try_get("tenant_id")?,
        scopes: scopes.split(',').filter_map(KeyScope::from_name).collect(),
        last4: row.try_get("last4")?,
        calls: u64::try_from(calls).unwrap_or(0),
        last_used_at: last_used.map(time).transpose()?,
        created_at: time(row.try_get("created_at")?)?,
        revoked_at: revoked.map(time).transpose()?,
    })
}

pub(crate) async fn create_key(
    pool: &Pool<Db>,
    change: &Change,
    name: &str,
    tenant: Option<&TenantId>,
    scopes: &[KeyScope],
    secret: &str,
) -> Result<ApiKey> {
    check_text("name", name)?;
    if !(20..=256).contains(&secret.len()) || !secret.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(StoreError::invalid(
            "key",
            "a key is 20 to 256 printable ASCII characters",
        ));
    }
    if scopes.is_empty() {
        return Err(StoreError::invalid(
            "scopes",
            "a key needs at least one scope",
        ));
    }
    match (&change.principal, tenant) {
        (Principal::Tenant(_), None) => {
            return Err(StoreError::Forbidden(
                "only platform keys create platform keys".into(),
            ));
        }
        (Principal::Tenant(own), Some(t)) if own != t => {
            return Err(StoreError::invalid("tenant_id", format!("no tenant `{t}`")));
        }
        _ => {}
    }
    let mut scopes = scopes.to_vec();
    scopes.sort_unstable();
    scopes.dedup();
    let scope_text = scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let id = ids::new("key");
    let last4: String = secret
        .chars()
        .skip(secret.chars().count().saturating_sub(4))
        .collect();
    let mut tx = begin(pool).await?;
    if let Some(t) = tenant {
        visible_tenant(&mut tx, &change.principal, t.as_str(), "tenant_id").await?;
    }
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, secret_hash, last4, scopes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(tenant.map(TenantId::as_str))
    .bind(name)
    .bind(audit::sha256_hex(secret))
    .bind(&last4)
    .bind(&scope_text)
    .bind(ms(change.at))
    .execute(&mut *tx)
    .await?;
    append(
        &mut tx,
        tenant.map(TenantId::as_str),
        change,
        "key.created",
        None,
        &json!({"key_id": id, "name": name, "scopes": scopes, "last4": last4}),
    )
    .await?;
    tx.commit().await?;
    Ok(ApiKey {
        id,
        name: name.to_owned(),
        tenant_id: tenant.map(ToString::to_string),
        scopes,
        last4,
        calls: 0,
        last_used_at: None,
        created_at: change.at,
        revoked_at: None,
    })
}

pub(crate) async fn list_keys(pool: &Pool<Db>, principal: &Principal) -> Result<Vec<ApiKey>> {
    let rows = sqlx::query(
        "SELECT * FROM api_keys WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_at, id",
    )
    .bind(principal.tenant().map(TenantId::as_str))
    .fetch_all(pool)
    .await?;
    rows.iter().map(key_row).collect()
}

pub(crate) async fn count_keys(pool: &Pool<Db>) -> Result<u64> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn revoke_key(pool: &Pool<Db>, change: &Change, id: &str) -> Result<ApiKey> {
    let mut tx = begin(pool).await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM api_keys WHERE id = $1{FOR_UPDATE}"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let key = match row {
        Some(row) => key_row(&row)?,
        None => return Err(StoreError::not_found(format!("key {id}"))),
    };
    if !change.principal.sees(key.tenant_id.as_deref()) {
        return Err(StoreError::not_found(format!("key {id}")));
    }
    if key.revoked_at.is_some() {
        return Err(StoreError::conflict(format!("key {id} is already revoked")));
    }
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
        .bind(ms(change.at))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    append(
        &mut tx,
        key.tenant_id.as_deref(),
        change,
        "key.revoked",
        None,
        &json!({"key_id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(ApiKey {
        revoked_at: Some(change.at),
        ..key
    })
}

/// The live key whose whole text hashes to `secret_hash`, if any.
pub(crate) async fn authenticate(pool: &Pool<Db>, secret_hash: &str) -> Result<Option<ApiKey>> {
    let row = sqlx::query("SELECT * FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL")
        .bind(secret_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(key_row).transpose()
}

// ---------------------------------------------------------------- policies

fn policy_row(row: &<Db as sqlx::Database>::Row) -> Result<StoredPolicy> {
    let scope: String = row.try_get("scope")?;
    let rules: String = row.try_get("rules")?;
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "draft" => Status::Draft,
        "active" => Status::Active,
        "deprecated" => Status::Deprecated,
        other => return Err(StoreError::Backend(format!("unknown status {other}"))),
    };
    let id: String = row.try_get("id")?;
    let lineage: String = row.try_get("lineage_id")?;
    let cloned_from: Option<String> = row.try_get("cloned_from")?;
    let activated: Option<i64> = row.try_get("activated_at")?;
    let deprecated: Option<i64> = row.try_get("deprecated_at")?;
    let bad_id = |e: charter_core::ids::IdError| StoreError::Backend(format!("stored id: {e}"));
    let policy = Policy {
        id: PolicyId::new(id).map_err(bad_id)?,
        lineage_id: LineageId::new(lineage).map_err(bad_id)?,
        version: to_u32(row.try_get("version")?, "version")?,
        status,
        revision: to_u32(row.try_get("revision")?, "revision")?,
        definition: PolicyDefinition {
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            scope: serde_json::from_str(&scope)?,
            rules: serde_json::from_str(&rules)?,
        },
        cloned_from: cloned_from.map(PolicyId::new).transpose().map_err(bad_id)?,
        created_at: time(row.try_get("created_at")?)?,
        created_by: row.try_get("created_by")?,
        activated_at: activated.map(time).transpose()?,
        activated_by: row.try_get("activated_by")?,
        deprecated_at: deprecated.map(time).transpose()?,
        deprecated_by: row.try_get("deprecated_by")?,
    };
    Ok(StoredPolicy {
        policy,
        tenant_id: row.try_get("tenant_id")?,
    })
}

/// Checks that the principal may author a policy in `scope`, and that its tenant and agent
/// exist; paths name the scope field at fault.
async fn check_scope(tx: &mut Tx, principal: &Principal, scope: &Scope) -> Result<()> {
    match scope {
        Scope::Platform => {
            if *principal != Principal::Platform {
                return Err(StoreError::Forbidden(
                    "only platform keys author platform policies".into(),
                ));
            }
        }
        Scope::Tenant { tenant_id } => {
            visible_tenant(tx, principal, tenant_id.as_str(), "scope.tenant_id").await?;
        }
        Scope::Agent {
            tenant_id,
            agent_id,
        } => {
            visible_tenant(tx, principal, tenant_id.as_str(), "scope.tenant_id").await?;
            let exists =
                sqlx::query("SELECT 1 AS one FROM agents WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id.as_str())
                    .bind(agent_id.as_str())
                    .fetch_optional(&mut **tx)
                    .await?
                    .is_some();
            if !exists {
                return Err(StoreError::invalid(
                    "scope.agent_id",
                    format!("no agent `{agent_id}` in tenant `{tenant_id}`"),
                ));
            }
        }
    }
    Ok(())
}

fn policy_ref(p: &Policy) -> (&str, &str, u32) {
    (p.id.as_str(), p.lineage_id.as_str(), p.version)
}

fn definition_json(d: &PolicyDefinition) -> Value {
    json!({"name": d.name, "description": d.description, "scope": d.scope, "rules": d.rules})
}

async fn insert_policy(tx: &mut Tx, stored: &StoredPolicy, change: &Change) -> Result<()> {
    let p = &stored.policy;
    sqlx::query(
        "INSERT INTO policies (id, lineage_id, version, tenant_id, scope, status, revision, name, \
         description, rules, cloned_from, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(p.id.as_str())
    .bind(p.lineage_id.as_str())
    .bind(i64::from(p.version))
    .bind(stored.tenant_id.as_deref())
    .bind(serde_json::to_string(&p.definition.scope)?)
    .bind(p.status.as_str())
    .bind(i64::from(p.revision))
    .bind(&p.definition.name)
    .bind(&p.definition.description)
    .bind(serde_json::to_string(&p.definition.rules)?)
    .bind(p.cloned_from.as_ref().map(PolicyId::as_str))
    .bind(ms(change.at))
    .bind(&change.actor.key_id)
    .bind(ms(change.at))
    .bind(&change.actor.key_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn new_draft(
    definition: PolicyDefinition,
    lineage: LineageId,
    version: u32,
    cloned_from: Option<PolicyId>,
    change: &Change,
) -> Result<StoredPolicy> {
    let id = PolicyId::new(ids::new("pol")).map_err(|e| StoreError::Backend(e.to_string()))?;
    let tenant_id = definition.scope.tenant_id().map(ToString::to_string);
    let mut policy = Policy::draft(id, lineage, definition, change.at);
    policy.version = version;
    policy.cloned_from = cloned_from;
    policy.created_by.clone_from(&change.actor.key_id);
    Ok(StoredPolicy { policy, tenant_id })
}

fn new_lineage() -> Result<LineageId> {
    LineageId::new(ids::new("lin")).map_err(|e| StoreError::Backend(e.to_string()))
}

/// A lineage's row: its scope (fixed once a version has been active) and the next version
/// number.
struct Lineage {
    scope: Scope,
    next_version: u32,
    fixed: bool,
}

async fn insert_lineage(tx: &mut Tx, stored: &StoredPolicy) -> Result<()> {
    sqlx::query(
        "INSERT INTO lineages (id, tenant_id, scope, next_version, fixed) VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(stored.policy.lineage_id.as_str())
    .bind(stored.tenant_id.as_deref())
    .bind(serde_json::to_string(&stored.policy.definition.scope)?)
    .bind(i64::from(stored.policy.version) + 1)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks a lineage for the rest of `tx`. Lineage locks are always taken before policy row
/// locks, so two lineage-level changes never wait on each other in a cycle.
async fn lock_lineage(tx: &mut Tx, id: &str) -> Result<Lineage> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT scope, next_version, fixed FROM lineages WHERE id = $1{FOR_UPDATE}"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::Backend(format!("lineage {id} has no row")))?;
    let scope: String = row.try_get("scope")?;
    let fixed: i64 = row.try_get("fixed")?;
    Ok(Lineage {
        scope: serde_json::from_str(&scope)?,
        next_version: to_u32(row.try_get("next_version")?, "next_version")?,
        fixed: fixed != 0,
    })
}

/// Reads a policy without locking it, to learn its lineage before taking locks in order.
async fn peek_policy(tx: &mut Tx, id: &str) -> Result<StoredPolicy> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => policy_row(&row),
        None => Err(StoreError::not_found(format!("policy {id}"))),
    }
}

pub(crate) async fn create_policy(
    pool: &Pool<Db>,
    change: &Change,
    definition: PolicyDefinition,
    imported: bool,
) -> Result<StoredPolicy> {
    let mut tx = begin(pool).await?;
    check_scope(&mut tx, &change.principal, &definition.scope).await?;
    let stored = new_draft(definition, new_lineage()?, 1, None, change)?;
    insert_policy(&mut tx, &stored, change).await?;
    insert_lineage(&mut tx, &stored).await?;
    let action = if imported {
        "policy.imported"
    } else {
        "policy.created"
    };
    append(
        &mut tx,
        stored.tenant_id.as_deref(),
        change,
        action,
        Some(policy_ref(&stored.policy)),
        &json!({"definition": definition_json(&stored.policy.definition)}),
    )
    .await?;
    tx.commit().await?;
    Ok(stored)
}

/// Whether a principal may read a policy: its own tenant's, and the platform policies that
/// can govern it (not platform drafts, which govern nothing).
fn visible(principal: &Principal, stored: &StoredPolicy) -> bool {
    match &stored.tenant_id {
        Some(t) => principal.sees(Some(t)),
        None => *principal == Principal::Platform || stored.policy.status != Status::Draft,
    }
}

/// Reads a policy the principal may see (a tenant key also sees platform policies).
pub(crate) async fn get_policy(
    pool: &Pool<Db>,
    principal: &Principal,
    id: &str,
) -> Result<StoredPolicy> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let stored = match row {
        Some(row) => policy_row(&row)?,
        None => return Err(StoreError::not_found(format!("policy {id}"))),
    };
    if visible(principal, &stored) {
        Ok(stored)
    } else {
        Err(StoreError::not_found(format!("policy {id}")))
    }
}

pub(crate) async fn list_policies(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &PolicyFilter,
) -> Result<Vec<StoredPolicy>> {
    // A tenant key lists its own tenant's policies and the platform's.
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies \
         WHERE ($1 IS NULL OR tenant_id = $1 OR tenant_id IS NULL) \
         AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR tenant_id = $3) \
         ORDER BY created_at, id"
    )))
    .bind(principal.tenant().map(TenantId::as_str))
    .bind(filter.status.map(Status::as_str))
    .bind(filter.tenant_id.as_deref())
    .fetch_all(pool)
    .await?;
    let q = filter.q.as_ref().map(|q| q.to_lowercase());
    let mut out = Vec::new();
    for row in &rows {
        let stored = policy_row(row)?;
        if !visible(principal, &stored) {
            continue;
        }
        let scope = stored.policy.scope();
        if filter
            .scope_type
            .as_deref()
            .is_some_and(|t| t != scope.type_name())
        {
            continue;
        }
        if let Some(agent) = &filter.agent_id
            && !matches!(scope, Scope::Agent { agent_id, .. } if agent_id.as_str() == agent)
        {
            continue;
        }
        if let Some(q) = &q
            && !stored.policy.name().to_lowercase().contains(q.as_str())
        {
            continue;
        }
        out.push(stored);
    }
    Ok(out)
}

/// Locks a policy the principal may change, for the rest of `tx`.
async fn lock_policy(tx: &mut Tx, principal: &Principal, id: &str) -> Result<StoredPolicy> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1{FOR_UPDATE}"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let stored = match row {
        Some(row) => policy_row(&row)?,
        None => return Err(StoreError::not_found(format!("policy {id}"))),
    };
    match (&stored.tenant_id, principal) {
        // A platform draft is invisible to tenants: it answers as if it did not exist.
        (None, Principal::Tenant(_)) if !visible(principal, &stored) => {
            Err(StoreError::not_found(format!("policy {id}")))
        }
        (None, Principal::Tenant(_)) => Err(StoreError::Forbidden(
            "platform policies can be changed only with a platform key".into(),
        )),
        (Some(t), _) if !principal.sees(Some(t)) => {
            Err(StoreError::not_found(format!("policy {id}")))
        }
        _ => Ok(stored),
    }
}

fn check_revision(stored: &StoredPolicy, if_revision: Option<u32>) -> Result<()> {
    match if_revision {
        Some(expected) if expected != stored.policy.revision => Err(StoreError::Conflict {
            message: format!(
                "policy {} is at revision {}, not {expected}",
                stored.policy.id, stored.policy.revision
            ),
            current_revision: Some(stored.policy.revision),
        }),
        _ => Ok(()),
    }
}

fn require_status(stored: &StoredPolicy, wanted: Status, doing: &str) -> Result<()> {
    if stored.policy.status == wanted {
        Ok(())
    } else {
        Err(StoreError::conflict(format!(
            "cannot {doing} policy {}: it is {}; only {} policies can be {}",
            stored.policy.id,
            stored.policy.status.as_str(),
            wanted.as_str(),
            match doing {
                "edit" => "edited",
                "delete" => "deleted",
                "activate" => "activated",
                _ => "deprecated",
            }
        )))
    }
}

/// Writes a draft's new definition, bumping its revision, and records before and after.
async fn rewrite_draft(
    mut tx: Tx,
    change: &Change,
    before: StoredPolicy,
    definition: PolicyDefinition,
) -> Result<StoredPolicy> {
    let revision = before.policy.revision + 1;
    let tenant_id = definition.scope.tenant_id().map(ToString::to_string);
    let updated = sqlx::query(
        "UPDATE policies SET tenant_id = $1, scope = $2, name = $3, description = $4, rules = $5, \
         revision = $6, updated_at = $7, updated_by = $8 \
         WHERE id = $9 AND status = 'draft' AND revision = $10",
    )
    .bind(tenant_id.as_deref())
    .bind(serde_json::to_string(&definition.scope)?)
    .bind(&definition.name)
    .bind(&definition.description)
    .bind(serde_json::to_string(&definition.rules)?)
    .bind(i64::from(revision))
    .bind(ms(change.at))
    .bind(&change.actor.key_id)
    .bind(before.policy.id.as_str())
    .bind(i64::from(before.policy.revision))
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::conflict("the policy changed meanwhile; retry"));
    }
    let mut after = before.clone();
    after.policy.definition = definition;
    after.policy.revision = revision;
    after.tenant_id = tenant_id;
    // A scope move between tenants is recorded in the chain the policy now belongs to.
    append(
        &mut tx,
        after.tenant_id.as_deref(),
        change,
        "policy.updated",
        Some(policy_ref(&after.policy)),
        &json!({
            "revision": revision,
            "before": definition_json(&before.policy.definition),
            "after": definition_json(&after.policy.definition),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub(crate) async fn update_policy(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
    edit: PolicyEdit,
    if_revision: Option<u32>,
) -> Result<StoredPolicy> {
    let mut tx = begin(pool).await?;
    let moving = match &edit.scope {
        Some(scope) => {
            let peeked = peek_policy(&mut tx, id).await?;
            (*scope != peeked.policy.definition.scope).then(|| peeked.policy.lineage_id.clone())
        }
        None => None,
    };
    let lineage = match &moving {
        Some(lineage_id) => Some(lock_lineage(&mut tx, lineage_id.as_str()).await?),
        None => None,
    };
    let before = lock_policy(&mut tx, &change.principal, id).await?;
    require_status(&before, Status::Draft, "edit")?;
    check_revision(&before, if_revision)?;
    let mut definition = before.policy.definition.clone();
    if let Some(name) = edit.name {
        PolicyDefinition::check_name(&name).map_err(|e| StoreError::invalid(e.path, e.message))?;
        definition.name = name;
    }
    if let Some(description) = edit.description {
        PolicyDefinition::check_description(&description)
            .map_err(|e| StoreError::invalid(e.path, e.message))?;
        definition.description = description;
    }
    if let (Some(scope), Some(lineage)) = (edit.scope, lineage)
        && scope != definition.scope
    {
        if lineage.fixed {
            return Err(StoreError::conflict(
                "the scope of a lineage that has had an active version is fixed: clone into the new scope instead",
            ));
        }
        // A lineage stays within one tenant: its versions, versions list and audit entries
        // must never span two tenants' data.
        if scope.tenant_id() != definition.scope.tenant_id() {
            return Err(StoreError::invalid(
                "scope",
                "a draft's scope can move within its tenant only: clone or import it into the other scope",
            ));
        }
        check_scope(&mut tx, &change.principal, &scope).await?;
        definition.scope = scope;
    }
    if let Some(rules) = edit.rules {
        definition.rules = rules;
    }
    rewrite_draft(tx, change, before, definition).await
}

pub(crate) async fn add_rule(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
    rule: Rule,
    if_revision: Option<u32>,
) -> Result<StoredPolicy> {
    let mut tx = begin(pool).await?;
    let before = lock_policy(&mut tx, &change.principal, id).await?;
    require_status(&before, Status::Draft, "edit")?;
    check_revision(&before, if_revision)?;
    let mut definition = before.policy.definition.clone();
    if definition.rules.len() >= charter_core::rule::MAX_RULES {
        return Err(StoreError::invalid(
            "",
            "the policy already holds the most rules allowed",
        ));
    }
    if definition.rules.iter().any(|r| r.id == rule.id) {
        return Err(StoreError::conflict(format!(
            "rule id `{}` is already used in this policy",
            rule.id
        )));
    }
    definition.rules.push(rule);
    check_unique_ids(&definition.rules, "rules")
        .map_err(|e| StoreError::invalid(e.path, e.message))?;
    rewrite_draft(tx, change, before, definition).await
}

pub(crate) async fn remove_rule(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
    rule_id: &RuleId,
    if_revision: Option<u32>,
) -> Result<StoredPolicy> {
    let mut tx = begin(pool).await?;
    let before = lock_policy(&mut tx, &change.principal, id).await?;
    require_status(&before, Status::Draft, "edit")?;
    check_revision(&before, if_revision)?;
    let mut definition = before.policy.definition.clone();
    let count = definition.rules.len();
    definition.rules.retain(|r| &r.id != rule_id);
    if definition.rules.len() == count {
        return Err(StoreError::not_found(format!(
            "rule {rule_id} in policy {id}"
        )));
    }
    rewrite_draft(tx, change, before, definition).await
}

pub(crate) async fn delete_policy(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
    if_revision: Option<u32>,
) -> Result<()> {
    let mut tx = begin(pool).await?;
    let stored = lock_policy(&mut tx, &change.principal, id).await?;
    require_status(&stored, Status::Draft, "delete")?;
    check_revision(&stored, if_revision)?;
    sqlx::query("DELETE FROM policies WHERE id = $1 AND status = 'draft'")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM validations WHERE policy_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    // The full definition, so the draft can be re-created from the audit log.
    append(
        &mut tx,
        stored.tenant_id.as_deref(),
        change,
        "policy.deleted",
        Some(policy_ref(&stored.policy)),
        &json!({"revision": stored.policy.revision, "definition": definition_json(&stored.policy.definition)}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn record_validation(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
    revision: u32,
    report: &Value,
) -> Result<()> {
    let mut tx = begin(pool).await?;
    let stored = lock_policy(&mut tx, &change.principal, id).await?;
    if stored.policy.revision != revision {
        return Err(StoreError::Conflict {
            message: format!(
                "policy {id} is at revision {}, not {revision}",
                stored.policy.revision
            ),
            current_revision: Some(stored.policy.revision),
        });
    }
    sqlx::query(
        "INSERT INTO validations (policy_id, revision, at, report) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (policy_id, revision) DO UPDATE SET at = excluded.at, report = excluded.report",
    )
    .bind(id)
    .bind(i64::from(revision))
    .bind(ms(change.at))
    .bind(serde_json::to_string(report)?)
    .execute(&mut *tx)
    .await?;
    append(
        &mut tx,
        stored.tenant_id.as_deref(),
        change,
        "policy.validated",
        Some(policy_ref(&stored.policy)),
        &json!({"revision": revision}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn activate(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
    how: Activation,
    if_revision: Option<u32>,
) -> Result<StoredPolicy> {
    let mut tx = begin(pool).await?;
    let peeked = peek_policy(&mut tx, id).await?;
    // The lineage lock makes concurrent activations (and supersedes) of one lineage take turns.
    let lineage = lock_lineage(&mut tx, peeked.policy.lineage_id.as_str()).await?;
    let stored = lock_policy(&mut tx, &change.principal, id).await?;
    require_status(&stored, Status::Draft, "activate")?;
    check_revision(&stored, if_revision)?;
    if lineage.fixed && lineage.scope != stored.policy.definition.scope {
        return Err(StoreError::conflict(
            "this lineage's scope is fixed by an earlier active version: clone into the new scope instead",
        ));
    }
    sqlx::query("UPDATE lineages SET fixed = 1, scope = $1 WHERE id = $2")
        .bind(serde_json::to_string(&stored.policy.definition.scope)?)
        .bind(stored.policy.lineage_id.as_str())
        .execute(&mut *tx)
        .await?;
    let validated =
        sqlx::query("SELECT 1 AS one FROM validations WHERE policy_id = $1 AND revision = $2")
            .bind(id)
            .bind(i64::from(stored.policy.revision))
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
    if !validated && !how.force {
        return Err(StoreError::ValidationRequired {
            revision: stored.policy.revision,
        });
    }
    let mut superseded = Vec::new();
    if how.supersede {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE lineage_id = $1 AND status = 'active' AND id <> $2 ORDER BY version{FOR_UPDATE}"
        )))
        .bind(stored.policy.lineage_id.as_str())
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let old = policy_row(row)?;
            mark_deprecated(&mut tx, change, &old, Some(id)).await?;
            superseded.push(old.policy.id.to_string());
        }
    }
    let updated = sqlx::query(
        "UPDATE policies SET status = 'active', activated_at = $1, activated_by = $2 \
         WHERE id = $3 AND status = 'draft' AND revision = $4",
    )
    .bind(ms(change.at))
    .bind(&change.actor.key_id)
    .bind(id)
    .bind(i64::from(stored.policy.revision))
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::conflict("the policy changed meanwhile; retry"));
    }
    append(
        &mut tx,
        stored.tenant_id.as_deref(),
        change,
        "policy.activated",
        Some(policy_ref(&stored.policy)),
        &json!({"revision": stored.policy.revision, "force": how.force, "validated": validated, "superseded": superseded}),
    )
    .await?;
    tx.commit().await?;
    let mut active = stored;
    active.policy.status = Status::Active;
    active.policy.activated_at = Some(change.at);
    active.policy.activated_by = Some(change.actor.key_id.clone());
    Ok(active)
}

async fn mark_deprecated(
    tx: &mut Tx,
    change: &Change,
    stored: &StoredPolicy,
    superseded_by: Option<&str>,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE policies SET status = 'deprecated', deprecated_at = $1, deprecated_by = $2 \
         WHERE id = $3 AND status = 'active'",
    )
    .bind(ms(change.at))
    .bind(&change.actor.key_id)
    .bind(stored.policy.id.as_str())
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::conflict("the policy changed meanwhile; retry"));
    }
    append(
        tx,
        stored.tenant_id.as_deref(),
        change,
        "policy.deprecated",
        Some(policy_ref(&stored.policy)),
        &json!({"superseded_by": superseded_by}),
    )
    .await
}

pub(crate) async fn deprecate(pool: &Pool<Db>, change: &Change, id: &str) -> Result<StoredPolicy> {
    let mut tx = begin(pool).await?;
    let stored = lock_policy(&mut tx, &change.principal, id).await?;
    require_status(&stored, Status::Active, "deprecate")?;
    mark_deprecated(&mut tx, change, &stored, None).await?;
    tx.commit().await?;
    let mut out = stored;
    out.policy.status = Status::Deprecated;
    out.policy.deprecated_at = Some(change.at);
    out.policy.deprecated_by = Some(change.actor.key_id.clone());
    Ok(out)
}

pub(crate) async fn clone_policy(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
    scope: Option<Scope>,
    name: Option<String>,
) -> Result<StoredPolicy> {
    let mut tx = begin(pool).await?;
    // Reading suffices: cloning changes nothing of the source, and a tenant key may clone a
    // platform policy into its own tenant.
    let source = peek_policy(&mut tx, id).await?;
    if !visible(&change.principal, &source) {
        return Err(StoreError::not_found(format!("policy {id}")));
    }
    let mut definition = source.policy.definition.clone();
    if let Some(name) = name {
        PolicyDefinition::check_name(&name).map_err(|e| StoreError::invalid(e.path, e.message))?;
        definition.name = name;
    }
    let new_scope = scope.filter(|s| *s != definition.scope);
    let new_lineage_needed = new_scope.is_some();
    let (lineage, version) = if let Some(scope) = new_scope {
        definition.scope = scope;
        (new_lineage()?, 1)
    } else {
        // The next version comes from the locked lineage row: concurrent clones get 2, 3, ...
        // and a deleted draft's number is never given again.
        let row = lock_lineage(&mut tx, source.policy.lineage_id.as_str()).await?;
        sqlx::query("UPDATE lineages SET next_version = next_version + 1 WHERE id = $1")
            .bind(source.policy.lineage_id.as_str())
            .execute(&mut *tx)
            .await?;
        (source.policy.lineage_id.clone(), row.next_version)
    };
    check_scope(&mut tx, &change.principal, &definition.scope).await?;
    let stored = new_draft(
        definition,
        lineage,
        version,
        Some(source.policy.id.clone()),
        change,
    )?;
    insert_policy(&mut tx, &stored, change).await?;
    if new_lineage_needed {
        insert_lineage(&mut tx, &stored).await?;
    }
    append(
        &mut tx,
        stored.tenant_id.as_deref(),
        change,
        "policy.cloned",
        Some(policy_ref(&stored.policy)),
        &json!({"cloned_from": source.policy.id, "from_version": source.policy.version}),
    )
    .await?;
    tx.commit().await?;
    Ok(stored)
}

pub(crate) async fn versions(
    pool: &Pool<Db>,
    principal: &Principal,
    id: &str,
) -> Result<(LineageId, Vec<StoredPolicy>)> {
    let one = get_policy(pool, principal, id).await?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE lineage_id = $1 ORDER BY version"
    )))
    .bind(one.policy.lineage_id.as_str())
    .fetch_all(pool)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored = policy_row(row)?;
        if visible(principal, &stored) {
            items.push(stored);
        }
    }
    Ok((one.policy.lineage_id, items))
}

// ---------------------------------------------------------------- limits

/// Settles the claims of one action in one transaction: every claim is checked against its
/// counter, and all are committed only if none is exceeded (or, for `Record`, unconditionally).
/// Concurrent settlements of a counter, from any node, are serialised, so two requests can
/// never both take the last unit of a budget.
pub(crate) async fn settle(
    pool: &Pool<Db>,
    claims: &[Claim],
    at: Timestamp,
    mode: Settle,
) -> Result<Vec<Exceeded>> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = begin(pool).await?;
    let mut book = Book::default();
    load_counters(&mut tx, &mut book, Book::wanted([(claims, at)])).await?;
    let exceeded = book.settle(claims, at, mode);
    store_counters(&mut tx, &book).await?;
    tx.commit().await?;
    Ok(exceeded)
}

/// Locks (on PostgreSQL) and loads the counters a transaction will claim, in key order
/// everywhere, so two transactions never wait on each other in a cycle.
async fn load_counters(
    tx: &mut Tx,
    book: &mut Book,
    wanted: std::collections::BTreeMap<String, i64>,
) -> Result<()> {
    for (key, first) in wanted {
        if !LOCK_COUNTER.is_empty() {
            sqlx::query(LOCK_COUNTER)
                .bind(&key)
                .execute(&mut **tx)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT bucket, amount FROM limit_counters WHERE counter = $1 AND bucket >= $2",
        )
        .bind(&key)
        .bind(first)
        .fetch_all(&mut **tx)
        .await?;
        let rows = rows
            .iter()
            .map(|row| Ok((row.try_get("bucket")?, row.try_get("amount")?)))
            .collect::<Result<Vec<(i64, i64)>>>()?;
        book.load(key, rows);
    }
    Ok(())
}

/// Writes back what a transaction added to its counters, and drops buckets that can no longer
/// count.
async fn store_counters(tx: &mut Tx, book: &Book) -> Result<()> {
    for (key, bucket, amount) in book.additions() {
        let amount = i64::try_from(amount)
            .map_err(|_| StoreError::Backend("counter amount out of range".into()))?;
        sqlx::query(
            "INSERT INTO limit_counters (counter, bucket, amount) VALUES ($1, $2, $3) \
             ON CONFLICT (counter, bucket) DO UPDATE SET amount = limit_counters.amount + excluded.amount",
        )
        .bind(key)
        .bind(bucket)
        .bind(amount)
        .execute(&mut **tx)
        .await?;
    }
    for (key, before) in book.prunes() {
        sqlx::query("DELETE FROM limit_counters WHERE counter = $1 AND bucket < $2")
            .bind(key)
            .bind(before)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- runs, actions, violations

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
    insert_run(&mut tx, &run).await?;
    tx.commit().await?;
    Ok((run, policies))
}

async fn insert_run(tx: &mut Tx, run: &Run) -> Result<()> {
    sqlx::query(
        "INSERT INTO runs (id, tenant_id, agent_id, started_at, ended_at, status, metadata, \
         policy_set_hash, policy_set, imported) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn get_run(pool: &Pool<Db>, principal: &Principal, id: &str) -> Result<Run> {
    let row = sqlx::query("SELECT * FROM runs WHERE id = $1")
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
        "SELECT * FROM runs WHERE id = $1{FOR_UPDATE}"
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

/// Rows per multi-row statement. Every statement is a round trip (on SQLite, to its
/// connection's thread): a batch of checks is written in a handful of statements, and the
/// chunking keeps the number of distinct statement texts (each prepared once) small.
const ROWS_PER_STATEMENT: usize = 64;

/// The state of the runs of `ids` (sorted, distinct), locked on PostgreSQL in id order.
async fn run_states(
    tx: &mut Tx,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, RunState>> {
    let mut states = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "SELECT id, status, ended_at, halted_by FROM runs WHERE id IN (",
        );
        let mut list = query.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        // Locked in the byte order the chunks were cut in (PostgreSQL's default collation
        // may order ids otherwise), so two nodes always lock shared runs in the same order.
        query.push(format_args!(") ORDER BY id{BYTE_ORDER}{FOR_UPDATE}"));
        for row in query.build().fetch_all(&mut **tx).await? {
            let status: String = row.try_get("status")?;
            let ended: Option<i64> = row.try_get("ended_at")?;
            let halted_by: Option<String> = row.try_get("halted_by")?;
            states.insert(
                row.try_get("id")?,
                RunState::read(&status, ended.is_some(), halted_by.as_deref())?,
            );
        }
    }
    Ok(states)
}

/// A check decided in a batch, before it is written.
struct Decided<'a> {
    check: &'a PendingCheck,
    decision: charter_core::engine::Decision,
    violation_ids: Vec<String>,
}

/// Settles, decides and records a batch of evaluated checks in one transaction (the group
/// commit). Each check's run is read first (and locked, on PostgreSQL), so a check racing the
/// end or the halt of its run is answered from the run's state and records nothing; the limit
/// counters of the whole batch are locked and loaded once, settled in memory in arrival order,
/// and written back together: exact across concurrent checks and nodes, and a check's spend is
/// counted if and only if the check is recorded as allowed.
pub(crate) async fn commit_checks(
    pool: &Pool<Db>,
    batch: &[PendingCheck],
) -> Result<Vec<CheckOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = begin(pool).await?;
    let mut run_ids: Vec<&str> = batch.iter().map(|c| c.run_id.as_str()).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    let mut runs = run_states(&mut tx, &run_ids).await?;
    let mut book = Book::default();
    let wanted = Book::wanted(batch.iter().map(|c| (c.evaluation.claims.as_slice(), c.at)));
    load_counters(&mut tx, &mut book, wanted).await?;
    // Decided checks are written together after the loop; the others are answered from
    // their run.
    let mut decided: Vec<Decided> = Vec::with_capacity(batch.len());
    let mut refused: Vec<Option<CheckOutcome>> = Vec::with_capacity(batch.len());
    for check in batch {
        let (decision, halting) = match step(runs.get_mut(&check.run_id), &mut book, check)? {
            Step::Refused(outcome) => {
                refused.push(Some(outcome));
                continue;
            }
            Step::Decided { decision, halting } => (decision, halting),
        };
        if let Some(halting) = halting {
            sqlx::query("UPDATE runs SET status = 'halted', halted_by = $1 WHERE id = $2")
                .bind(halting.to_string())
                .bind(&check.run_id)
                .execute(&mut *tx)
                .await?;
        }
        let violation_ids = decision
            .violations
            .iter()
            .map(|_| ids::new("vio"))
            .collect();
        decided.push(Decided {
            check,
            decision,
            violation_ids,
        });
        refused.push(None);
    }
    let records: Vec<ActionRecord<'_>> = decided
        .iter()
        .map(|d| ActionRecord {
            id: &d.check.id,
            run_id: &d.check.run_id,
            tenant_id: &d.check.tenant_id,
            agent_id: &d.check.agent_id,
            at: d.check.at,
            action: &d.check.action,
            decision: d.decision.outcome,
            violations: &d.decision.violations,
            policy_set_hash: &d.check.policy_set_hash,
            violation_ids: &d.violation_ids,
        })
        .collect();
    insert_actions(&mut tx, &records).await?;
    store_counters(&mut tx, &book).await?;
    tx.commit().await?;

    let mut decided = decided.into_iter();
    Ok(refused
        .into_iter()
        .filter_map(|slot| match slot {
            Some(outcome) => Some(outcome),
            None => decided.next().map(|d| CheckOutcome::Decided {
                decision: d.decision,
                violation_ids: d.violation_ids,
            }),
        })
        .collect())
}

/// Writes decided actions and their violation events, many rows per statement.
async fn insert_actions(tx: &mut Tx, records: &[ActionRecord<'_>]) -> Result<()> {
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let inputs = chunk
            .iter()
            .map(|r| serde_json::to_string(r.action))
            .collect::<std::result::Result<Vec<String>, _>>()?;
        let mut query = QueryBuilder::<Db>::new(
            "INSERT INTO actions (id, run_id, tenant_id, agent_id, at, kind, input, decision, policy_set_hash) ",
        );
        query.push_values(chunk.iter().zip(inputs), |mut row, (r, input)| {
            row.push_bind(r.id.to_owned())
                .push_bind(r.run_id.to_owned())
                .push_bind(r.tenant_id.to_owned())
                .push_bind(r.agent_id.to_owned())
                .push_bind(ms(r.at))
                .push_bind(r.action.kind().as_str())
                .push_bind(input)
                .push_bind(r.decision.as_str())
                .push_bind(r.policy_set_hash.to_owned());
        });
        query.build().execute(&mut **tx).await?;
    }
    // The action's summary once per refused action, not once per violation.
    let summaries: Vec<String> = records
        .iter()
        .map(|r| {
            if r.violations.is_empty() {
                String::new()
            } else {
                r.action.summary()
            }
        })
        .collect();
    let violations: Vec<(&ActionRecord<'_>, &Violation, &String, &String)> = records
        .iter()
        .zip(&summaries)
        .flat_map(|(r, summary)| {
            r.violations
                .iter()
                .zip(r.violation_ids)
                .map(move |(v, id)| (r, v, id, summary))
        })
        .collect();
    for chunk in violations.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "INSERT INTO violations (id, at, decision, policy_id, policy_name, policy_version, \
             lineage_id, rule_id, rule_type, tenant_id, agent_id, run_id, action_id, action_kind, \
             action_summary, matching_input, message) ",
        );
        query.push_values(chunk, |mut row, (r, v, id, summary)| {
            let policy = &v.source.policy;
            row.push_bind((*id).clone())
                .push_bind(ms(r.at))
                .push_bind(v.outcome.as_str())
                .push_bind(policy.id.as_str().to_owned())
                .push_bind(policy.name.clone())
                .push_bind(i64::from(policy.version))
                .push_bind(policy.lineage_id.as_str().to_owned())
                .push_bind(v.source.rule_id.as_str().to_owned())
                .push_bind(v.source.rule_type.as_str())
                .push_bind(r.tenant_id.to_owned())
                .push_bind(r.agent_id.to_owned())
                .push_bind(r.run_id.to_owned())
                .push_bind(r.id.to_owned())
                .push_bind(r.action.kind().as_str())
                .push_bind((*summary).clone())
                .push_bind(v.matching_input.clone())
                .push_bind(v.message.clone());
        });
        query.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn violation_row(row: &<Db as sqlx::Database>::Row) -> Result<ViolationEvent> {
    Ok(ViolationEvent {
        id: row.try_get("id")?,
        at: time(row.try_get("at")?)?,
        decision: row.try_get("decision")?,
        policy_id: row.try_get("policy_id")?,
        policy_name: row.try_get("policy_name")?,
        policy_version: to_u32(row.try_get("policy_version")?, "policy_version")?,
        lineage_id: row.try_get("lineage_id")?,
        rule_id: row.try_get("rule_id")?,
        rule_type: row.try_get("rule_type")?,
        tenant_id: row.try_get("tenant_id")?,
        agent_id: row.try_get("agent_id")?,
        run_id: row.try_get("run_id")?,
        action_id: row.try_get("action_id")?,
        action: ActionSummary {
            kind: row.try_get("action_kind")?,
            summary: row.try_get("action_summary")?,
        },
        matching_input: row.try_get("matching_input")?,
        message: row.try_get("message")?,
    })
}

/// A WHERE clause of only the filters given, so the database can use its indexes (an
/// `($1 IS NULL OR col = $1)` form cannot). Column names come from this file only; every value
/// is bound, never spliced.
#[derive(Default)]
struct Filters {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

/// A value bound to a placeholder of a built query.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// `sql` with `binds` bound to its placeholders, in order.
fn bound(
    sql: String,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for bind in binds {
        query = match bind {
            Bind::Text(v) => query.bind(v),
            Bind::Int(v) => query.bind(v),
        };
    }
    query
}

impl Filters {
    fn next(&self) -> usize {
        self.binds.len() + 1
    }

    fn text(&mut self, clause: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.clauses
                .push(clause.replace('?', &format!("${}", self.next())));
            self.binds.push(Bind::Text(v.to_owned()));
        }
    }

    fn int(&mut self, clause: &str, value: Option<i64>) {
        if let Some(v) = value {
            self.clauses
                .push(clause.replace('?', &format!("${}", self.next())));
            self.binds.push(Bind::Int(v));
        }
    }

    /// A clause with several placeholders `?1`, `?2`, ... bound to `values` in order.
    fn row(&mut self, clause: &str, values: Vec<Bind>) {
        let mut text = clause.to_owned();
        for (k, value) in values.into_iter().enumerate() {
            text = text.replace(&format!("?{}", k + 1), &format!("${}", self.next()));
            self.binds.push(value);
        }
        self.clauses.push(text);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "TRUE".to_owned()
        } else {
            self.clauses.join(" AND ")
        }
    }

    fn query(
        self,
        sql: String,
    ) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
        bound(sql, self.binds)
    }
}

/// The principal's own tenant, and the one a filter names: a tenant key naming another
/// tenant matches nothing (never its own items, never a hint that the other exists).
fn tenant_filters(f: &mut Filters, principal: &Principal, named: Option<&str>) {
    let own = principal.tenant().map(TenantId::as_str);
    f.text("tenant_id = ?", own);
    if named != own {
        f.text("tenant_id = ?", named);
    }
}

async fn violation_filters(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
) -> Result<Filters> {
    let mut f = Filters::default();
    tenant_filters(&mut f, principal, filter.tenant_id.as_deref());
    f.text("policy_id = ?", filter.policy_id.as_deref());
    f.text("lineage_id = ?", filter.lineage_id.as_deref());
    f.text("agent_id = ?", filter.agent_id.as_deref());
    if let Some(run_id) = filter.run_id.as_deref() {
        // A run's violations are its agent's, from its start on: bounded so the agent's
        // index finds them (there is no index by run). The caller's tenant filter above still
        // decides whether it may see them.
        let run = sqlx::query("SELECT tenant_id, agent_id, started_at FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(pool)
            .await?;
        match run {
            Some(run) => {
                let tenant: String = run.try_get("tenant_id")?;
                let agent: String = run.try_get("agent_id")?;
                f.text("tenant_id = ?", Some(&tenant));
                f.text("agent_id = ?", Some(&agent));
                f.int("at >= ?", Some(run.try_get("started_at")?));
            }
            // No such run: it has no violations.
            None => f.int("0 = ?", Some(1)),
        }
        f.text("run_id = ?", Some(run_id));
    }
    f.text("rule_type = ?", filter.rule_type.as_deref());
    f.int("at >= ?", filter.since.map(ms));
    f.int("at < ?", filter.until.map(ms));
    Ok(f)
}

fn bad_cursor() -> StoreError {
    StoreError::invalid("cursor", "not a cursor of this list")
}

/// `<at>~<id>` cursors of lists ordered newest first.
fn parse_cursor(cursor: &str) -> Result<(i64, String)> {
    let (at, id) = cursor.split_once('~').ok_or_else(bad_cursor)?;
    Ok((at.parse().map_err(|_| bad_cursor())?, id.to_owned()))
}

/// A list read newest first by (`time`, id): its table, time column, row reader and the key
/// of an item (for the next cursor).
struct Listing<T> {
    table: &'static str,
    time: &'static str,
    row: fn(&<Db as sqlx::Database>::Row) -> Result<T>,
    key: fn(&T) -> (i64, &str),
}

const VIOLATIONS: Listing<ViolationEvent> = Listing {
    table: "violations",
    time: "at",
    row: violation_row,
    key: |v| (v.at.as_millisecond(), v.id.as_str()),
};

const RUNS: Listing<Run> = Listing {
    table: "runs",
    time: "started_at",
    row: run_row,
    key: |r| (r.started_at.as_millisecond(), r.id.as_str()),
};

/// One page of a listing, after `cursor` (`<time>~<id>`).
async fn newest_first<T>(
    pool: &Pool<Db>,
    listing: &Listing<T>,
    mut f: Filters,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<T>> {
    let Listing {
        table,
        time,
        row,
        key,
    } = listing;
    let limit = limit.clamp(1, 500);
    if let Some(cursor) = cursor {
        let (at, id) = parse_cursor(cursor)?;
        f.row(
            &format!("({time} < ?1 OR ({time} = ?2 AND id < ?3))"),
            vec![Bind::Int(at), Bind::Int(at), Bind::Text(id)],
        );
    }
    let sql = format!(
        "SELECT * FROM {table} WHERE {} ORDER BY {time} DESC, id DESC LIMIT {}",
        f.sql(),
        u64::from(limit) + 1
    );
    let rows = f.query(sql).fetch_all(pool).await?;
    let mut items = rows.iter().map(row).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|item| {
            let (at, id) = key(item);
            format!("{at}~{id}")
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub(crate) async fn list_violations(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<ViolationEvent>> {
    let f = violation_filters(pool, principal, filter).await?;
    newest_first(pool, &VIOLATIONS, f, cursor, limit).await
}

/// The most buckets one stats call returns.
const MAX_BUCKETS: usize = 10_000;

pub(crate) async fn violation_stats(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &ViolationFilter,
    bucket_ms: i64,
) -> Result<Vec<(Timestamp, u64)>> {
    if bucket_ms <= 0 {
        return Err(StoreError::invalid(
            "bucket",
            "a bucket is a positive duration",
        ));
    }
    let f = violation_filters(pool, principal, filter).await?;
    // The bucket width is a number we checked, written into the text so the filters keep
    // their placeholders in order.
    let sql = format!(
        "SELECT (at / {bucket_ms}) * {bucket_ms} AS start, COUNT(*) AS n FROM violations \
         WHERE {} GROUP BY 1 ORDER BY 1 LIMIT {}",
        f.sql(),
        MAX_BUCKETS + 1
    );
    let rows = f.query(sql).fetch_all(pool).await?;
    if rows.len() > MAX_BUCKETS {
        return Err(StoreError::invalid(
            "bucket",
            format!("more than {MAX_BUCKETS} buckets: use a larger bucket or a shorter range"),
        ));
    }
    rows.iter()
        .map(|r| {
            let start: i64 = r.try_get("start")?;
            let n: i64 = r.try_get("n")?;
            Ok((time(start)?, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}

/// Recorded actions in `[since, until)` of the principal's tenant (or, for the platform, of
/// `tenant` or every tenant), and of `agent` if given, in replay order (time, run, id), one
/// page after `after`: Validate streams a range in pages, so a million actions never sit in
/// memory at once, and each page is an index range scan.
#[allow(
    clippy::too_many_arguments,
    reason = "a keyset page needs its whole key"
)]
pub(crate) async fn actions_page(
    pool: &Pool<Db>,
    principal: &Principal,
    tenant: Option<&str>,
    agent: Option<&str>,
    since: Timestamp,
    until: Timestamp,
    after: Option<&(i64, String, String)>,
    limit: u32,
) -> Result<Vec<RecordedRow>> {
    let (sql, binds) = actions_page_query(principal, tenant, agent, since, until, after, limit);
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
                action: input.and_then(|i| charter_core::Action::from_json(&i).ok()),
                decision: decision.as_deref().and_then(Outcome::from_name),
            })
        })
        .collect()
}

/// The query of one page of `actions_page` and its bound values, in placeholder order (SQLite's
/// Validate reader runs the same text through rusqlite). Columns: `id`, `run_id`,
/// `tenant_id`, `agent_id`, `at`, `input`, `decision`, the run's `started_at`.
#[allow(
    clippy::too_many_arguments,
    reason = "a keyset page needs its whole key"
)]
pub(crate) fn actions_page_query(
    principal: &Principal,
    tenant: Option<&str>,
    agent: Option<&str>,
    since: Timestamp,
    until: Timestamp,
    after: Option<&(i64, String, String)>,
    limit: u32,
) -> (String, Vec<Bind>) {
    let tenant = match principal {
        Principal::Tenant(own) => Some(own.as_str()),
        Principal::Platform => tenant,
    };
    let mut f = Filters::default();
    f.text("a.tenant_id = ?", tenant);
    f.text("a.agent_id = ?", agent);
    // The first page starts just before `since`: ids and run ids are never empty.
    let (at, run, id) = match after {
        Some((at, run, id)) => (*at, run.clone(), id.clone()),
        None => (ms(since) - 1, String::new(), String::new()),
    };
    f.row(
        "(a.at, a.run_id, a.id) > (?1, ?2, ?3)",
        vec![Bind::Int(at), Bind::Text(run), Bind::Text(id)],
    );
    f.int("a.at < ?", Some(ms(until)));
    let sql = format!(
        "SELECT a.id, a.run_id, a.tenant_id, a.agent_id, a.at, a.input, a.decision, r.started_at \
         FROM actions a JOIN runs r ON r.id = a.run_id WHERE {} ORDER BY a.at, a.run_id, a.id LIMIT {}",
        f.sql(),
        limit.clamp(1, 10_000)
    );
    (sql, f.binds)
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
    newest_first(pool, &RUNS, f, cursor, limit).await
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

/// Imports recorded runs in one transaction: all or nothing. Each run's agent must exist in
/// its tenant, which the principal must see; `path` of an error names the run's index.
pub(crate) async fn import_runs(
    pool: &Pool<Db>,
    principal: &Principal,
    runs: &[ImportedRun],
) -> Result<(u64, u64)> {
    let mut tx = begin(pool).await?;
    let mut actions = 0u64;
    for (i, imported) in runs.iter().enumerate() {
        let path = |field: &str| format!("runs[{i}].{field}");
        let exists = sqlx::query("SELECT 1 AS one FROM agents WHERE tenant_id = $1 AND id = $2")
            .bind(&imported.tenant_id)
            .bind(&imported.agent_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists || !principal.sees(Some(&imported.tenant_id)) {
            // A tenant the key cannot name is refused as one that exists nowhere.
            visible_tenant(&mut tx, principal, &imported.tenant_id, &path("tenant_id")).await?;
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
        insert_run(&mut tx, &run).await?;
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
            .execute(&mut *tx)
            .await?;
            actions += 1;
        }
    }
    tx.commit().await?;
    Ok((runs.len() as u64, actions))
}

/// Adds usage to keys (flushed about once a second by the server, not per request).
pub(crate) async fn record_key_usage(
    pool: &Pool<Db>,
    usage: &[(String, u64, Timestamp)],
) -> Result<()> {
    if usage.is_empty() {
        return Ok(());
    }
    // In id order: two nodes flushing the same keys lock their rows in the same order.
    let mut usage: Vec<&(String, u64, Timestamp)> = usage.iter().collect();
    usage.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut tx = begin(pool).await?;
    for (id, calls, last) in usage {
        sqlx::query(
            "UPDATE api_keys SET calls = calls + $1, \
             last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END \
             WHERE id = $3",
        )
        .bind(i64::try_from(*calls).unwrap_or(i64::MAX))
        .bind(ms(*last))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The latest validation report of a policy the principal may see: (revision, when, report).
pub(crate) async fn latest_validation(
    pool: &Pool<Db>,
    principal: &Principal,
    id: &str,
) -> Result<Option<(u32, Timestamp, Value)>> {
    get_policy(pool, principal, id).await?;
    let row = sqlx::query(
        "SELECT revision, at, report FROM validations WHERE policy_id = $1 ORDER BY revision DESC, at DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let report: String = r.try_get("report")?;
        Ok((
            to_u32(r.try_get("revision")?, "revision")?,
            time(r.try_get("at")?)?,
            serde_json::from_str(&report)?,
        ))
    })
    .transpose()
}

/// Imports documents as drafts, each a new lineage, in one transaction: all or nothing. With
/// several documents, an error's path starts with the document's index.
pub(crate) async fn import_policies(
    pool: &Pool<Db>,
    change: &Change,
    definitions: Vec<PolicyDefinition>,
) -> Result<Vec<StoredPolicy>> {
    let many = definitions.len() > 1;
    let mut tx = begin(pool).await?;
    let mut out = Vec::with_capacity(definitions.len());
    for (i, definition) in definitions.into_iter().enumerate() {
        check_scope(&mut tx, &change.principal, &definition.scope)
            .await
            .map_err(|e| match e {
                StoreError::Invalid { path, message } if many => StoreError::Invalid {
                    path: format!("[{i}].{path}"),
                    message,
                },
                other => other,
            })?;
        let stored = new_draft(definition, new_lineage()?, 1, None, change)?;
        insert_policy(&mut tx, &stored, change).await?;
        insert_lineage(&mut tx, &stored).await?;
        append(
            &mut tx,
            stored.tenant_id.as_deref(),
            change,
            "policy.imported",
            Some(policy_ref(&stored.policy)),
            &json!({"definition": definition_json(&stored.policy.definition)}),
        )
        .await?;
        out.push(stored);
    }
    tx.commit().await?;
    Ok(out)
}

/// Records that a policy the principal may see was exported.
pub(crate) async fn record_export(
    pool: &Pool<Db>,
    change: &Change,
    id: &str,
) -> Result<StoredPolicy> {
    let stored = get_policy(pool, &change.principal, id).await?;
    let mut tx = begin(pool).await?;
    // A tenant exporting a platform policy records it in its own chain.
    let chain = stored
        .tenant_id
        .as_deref()
        .or(change.principal.tenant().map(TenantId::as_str));
    append(
        &mut tx,
        chain,
        change,
        "policy.exported",
        Some(policy_ref(&stored.policy)),
        &json!({"revision": stored.policy.revision}),
    )
    .await?;
    tx.commit().await?;
    Ok(stored)
}
