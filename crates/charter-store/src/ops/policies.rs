//! Policies: drafts, edits, lifecycle (activate, deprecate, clone), versions, validations, import and export.

use charter_core::policy::{Policy, PolicyDefinition, Status};
use charter_core::rule::{Rule, check_unique_ids};
use charter_core::{LineageId, PolicyId, RuleId, Scope, TenantId};
use jiff::Timestamp;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Pool, Row};

use super::accounts::visible_tenant;
use super::audit::append;
use super::query::{Bind, Filters, bad_cursor, bound};
use super::{Db, FOR_UPDATE, NAME_CONTAINS, RULE_COUNT, Result, Tx, begin, ms, time, to_u32};
use crate::PolicyEdit;

use crate::error::StoreError;
use crate::ids;
use crate::model::{
    Activation, Change, PolicyFilter, PolicySummary, Principal, StoredPolicy, VersionsNear,
};
use crate::runs::Page;

pub(super) const POLICY_COLUMNS: &str = "id, lineage_id, version, tenant_id, scope, status, revision, name, \
     description, rules, cloned_from, created_at, created_by, activated_at, activated_by, \
     deprecated_at, deprecated_by, updated_at";

/// A policy's columns as stored, then parsed once by [`RawPolicy::stored`].
struct RawPolicy {
    id: String,
    lineage_id: String,
    version: i64,
    tenant_id: Option<String>,
    scope: String,
    status: String,
    revision: i64,
    name: String,
    description: String,
    rules: String,
    cloned_from: Option<String>,
    created_at: i64,
    created_by: String,
    activated_at: Option<i64>,
    activated_by: Option<String>,
    deprecated_at: Option<i64>,
    deprecated_by: Option<String>,
    updated_at: i64,
}

impl RawPolicy {
    fn stored(self) -> Result<StoredPolicy> {
        let status = status_of(&self.status)?;
        let policy = Policy {
            id: stored_id(PolicyId::new(self.id))?,
            lineage_id: stored_id(LineageId::new(self.lineage_id))?,
            version: to_u32(self.version, "version")?,
            status,
            revision: to_u32(self.revision, "revision")?,
            definition: PolicyDefinition {
                name: self.name,
                description: self.description,
                scope: serde_json::from_str(&self.scope)?,
                rules: serde_json::from_str(&self.rules)?,
            },
            cloned_from: stored_id(self.cloned_from.map(PolicyId::new).transpose())?,
            created_at: time(self.created_at)?,
            created_by: self.created_by,
            activated_at: self.activated_at.map(time).transpose()?,
            activated_by: self.activated_by,
            deprecated_at: self.deprecated_at.map(time).transpose()?,
            deprecated_by: self.deprecated_by,
        };
        Ok(StoredPolicy {
            policy,
            tenant_id: self.tenant_id,
            updated_at: time(self.updated_at)?,
        })
    }
}

/// The columns of a [`PolicySummary`], in [`RawSummary`]'s order (the SQLite reader reads them
/// by position).
pub(crate) fn summary_columns() -> String {
    format!(
        "id, lineage_id, version, tenant_id, scope, status, name, created_at, updated_at, \
         activated_at, deprecated_at, {RULE_COUNT} AS rule_count, activated_by, deprecated_by"
    )
}

/// A summary's columns as stored, read by either driver, then parsed by
/// [`RawSummary::summary`].
pub(crate) struct RawSummary {
    pub(crate) id: String,
    pub(crate) lineage_id: String,
    pub(crate) version: i64,
    pub(crate) tenant_id: Option<String>,
    pub(crate) scope: String,
    pub(crate) status: String,
    pub(crate) name: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) activated_at: Option<i64>,
    pub(crate) deprecated_at: Option<i64>,
    pub(crate) rule_count: i64,
    pub(crate) activated_by: Option<String>,
    pub(crate) deprecated_by: Option<String>,
}

fn status_of(text: &str) -> Result<Status> {
    match text {
        "draft" => Ok(Status::Draft),
        "active" => Ok(Status::Active),
        "deprecated" => Ok(Status::Deprecated),
        other => Err(StoreError::Backend(format!("unknown status {other}"))),
    }
}

fn stored_id<T>(id: std::result::Result<T, charter_core::ids::IdError>) -> Result<T> {
    id.map_err(|e| StoreError::Backend(format!("stored id: {e}")))
}

impl RawSummary {
    pub(crate) fn summary(self) -> Result<PolicySummary> {
        let activated_at = self.activated_at.map(time).transpose()?;
        let deprecated_at = self.deprecated_at.map(time).transpose()?;
        Ok(PolicySummary {
            id: stored_id(PolicyId::new(self.id))?,
            lineage_id: stored_id(LineageId::new(self.lineage_id))?,
            version: to_u32(self.version, "version")?,
            status: status_of(&self.status)?,
            name: self.name,
            scope: serde_json::from_str(&self.scope)?,
            tenant_id: self.tenant_id,
            rules: usize::try_from(self.rule_count).unwrap_or(0),
            created_at: time(self.created_at)?,
            activated: activated_at.zip(self.activated_by),
            deprecated: deprecated_at.zip(self.deprecated_by),
            updated_at: time(self.updated_at)?,
        })
    }
}

fn raw_summary(row: &<Db as sqlx::Database>::Row) -> Result<RawSummary> {
    Ok(RawSummary {
        id: row.try_get("id")?,
        lineage_id: row.try_get("lineage_id")?,
        version: row.try_get("version")?,
        tenant_id: row.try_get("tenant_id")?,
        scope: row.try_get("scope")?,
        status: row.try_get("status")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        activated_at: row.try_get("activated_at")?,
        deprecated_at: row.try_get("deprecated_at")?,
        rule_count: row.try_get("rule_count")?,
        activated_by: row.try_get("activated_by")?,
        deprecated_by: row.try_get("deprecated_by")?,
    })
}

fn raw_policy(row: &<Db as sqlx::Database>::Row) -> Result<RawPolicy> {
    Ok(RawPolicy {
        id: row.try_get("id")?,
        lineage_id: row.try_get("lineage_id")?,
        version: row.try_get("version")?,
        tenant_id: row.try_get("tenant_id")?,
        scope: row.try_get("scope")?,
        status: row.try_get("status")?,
        revision: row.try_get("revision")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        rules: row.try_get("rules")?,
        cloned_from: row.try_get("cloned_from")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        activated_at: row.try_get("activated_at")?,
        activated_by: row.try_get("activated_by")?,
        deprecated_at: row.try_get("deprecated_at")?,
        deprecated_by: row.try_get("deprecated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn policy_row(row: &<Db as sqlx::Database>::Row) -> Result<StoredPolicy> {
    raw_policy(row)?.stored()
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
         description, rules, cloned_from, created_at, created_by, updated_at, updated_by, \
         name_folded, rule_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
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
    .bind(fold(&p.definition.name))
    .bind(rule_count(&p.definition.rules))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A name or a search as the search compares them (`policies.name_folded`): lowercased,
/// Unicode's rules.
fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// A definition's number of rules, as `policies.rule_count` keeps it.
fn rule_count(rules: &[Rule]) -> i64 {
    i64::try_from(rules.len()).unwrap_or(i64::MAX)
}

/// Fills `name_folded` and `rule_count` of the rows written before they existed (or by an
/// older node), a few hundred rows read at a time, each row once; how many values it filled.
/// A value is written only where it is missing, and only for the name or rules it was made
/// from, each in a statement of its own (no lock held across rows, so no live change waits on
/// it in a cycle). They only spare the list work: a row that cannot be filled is left for the
/// list to read from its definition, and logged.
pub(crate) async fn fill_kept(pool: &Pool<Db>) -> Result<u64> {
    let mut filled = 0;
    let mut after = String::new();
    loop {
        let rows = sqlx::query(
            "SELECT id, name, rules, name_folded IS NULL AS unfolded, \
             rule_count IS NULL AS uncounted FROM policies \
             WHERE (name_folded IS NULL OR rule_count IS NULL) AND id > $1 \
             ORDER BY id LIMIT 500",
        )
        .bind(&after)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(filled);
        };
        after = last.try_get("id")?;
        for row in &rows {
            let id: String = row.try_get("id")?;
            if row.try_get::<bool, _>("unfolded")? {
                let name: String = row.try_get("name")?;
                filled += sqlx::query(
                    "UPDATE policies SET name_folded = $1 \
                     WHERE id = $2 AND name = $3 AND name_folded IS NULL",
                )
                .bind(fold(&name))
                .bind(&id)
                .bind(&name)
                .execute(pool)
                .await?
                .rows_affected();
            }
            if row.try_get::<bool, _>("uncounted")? {
                let rules: String = row.try_get("rules")?;
                // Counted without reading each rule: stored rules were checked when written.
                let count = match serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&rules) {
                    Ok(rules) => rules.len(),
                    Err(e) => {
                        tracing::warn!(policy = %id, error = %e, "stored rules are not a list");
                        continue;
                    }
                };
                filled += sqlx::query(
                    "UPDATE policies SET rule_count = $1 \
                     WHERE id = $2 AND rules = $3 AND rule_count IS NULL",
                )
                .bind(i64::try_from(count).unwrap_or(i64::MAX))
                .bind(&id)
                .bind(&rules)
                .execute(pool)
                .await?
                .rows_affected();
            }
        }
    }
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
    Ok(StoredPolicy {
        policy,
        tenant_id,
        updated_at: change.at,
    })
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
    visible_as(principal, stored.tenant_id.as_deref(), stored.policy.status)
}

/// [`visible`], of a policy of tenant `tenant_id` (`None`: platform) in `status`.
fn visible_as(principal: &Principal, tenant_id: Option<&str>, status: Status) -> bool {
    match tenant_id {
        Some(t) => principal.sees(Some(t)),
        None => *principal == Principal::Platform || status != Status::Draft,
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
    let q = filter.q.as_deref().map(fold);
    let mut out = Vec::new();
    for row in &rows {
        let stored = policy_row(row)?;
        if visible(principal, &stored)
            && matches(
                stored.policy.scope(),
                stored.policy.name(),
                filter,
                q.as_deref(),
            )
        {
            out.push(stored);
        }
    }
    Ok(out)
}

/// Whether a policy of `scope` named `name` passes the filters SQL cannot tell exactly: the
/// scope's type and agent, and a case-insensitive (Unicode) search of the name for `q`,
/// lowercased.
fn matches(scope: &Scope, name: &str, filter: &PolicyFilter, q: Option<&str>) -> bool {
    if filter
        .scope_type
        .as_deref()
        .is_some_and(|t| t != scope.type_name())
    {
        return false;
    }
    if let Some(agent) = &filter.agent_id
        && !matches!(scope, Scope::Agent { agent_id, .. } if agent_id.as_str() == agent)
    {
        return false;
    }
    q.is_none_or(|q| fold(name).contains(q))
}

/// One page of the policies the principal may see, filtered, newest first (by creation, then
/// id), after a cursor (`<created_at>~<id>`): what the workspace's list shows, read through
/// the (status | tenant, `created_at`, id) indexes, never the whole table. Status, tenant,
/// scope type and a name search (Unicode case-insensitive, as [`list_policies`]: on the
/// lowercased names kept beside the names) are filtered in SQL; an agent is checked on the rows
/// as they are read, in chunks, until the page is full. The driver runs
/// [`PolicyScan::query`] and hands the rows to [`PolicyScan::take`] until it says stop.
pub(crate) struct PolicyScan {
    principal: Principal,
    filter: PolicyFilter,
    /// The search, lowercased.
    q: Option<String>,
    limit: usize,
    /// Rows per query.
    chunk: usize,
    /// The last row read.
    after: Option<(i64, String)>,
    items: Vec<PolicySummary>,
}

impl PolicyScan {
    pub(crate) fn new(
        principal: &Principal,
        filter: &PolicyFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<PolicyScan> {
        let limit = limit.clamp(1, 500) as usize;
        // An agent is checked on the rows read; everything else SQL tells.
        let checked = filter.agent_id.is_some();
        Ok(PolicyScan {
            principal: principal.clone(),
            filter: filter.clone(),
            q: filter.q.as_deref().map(fold),
            limit,
            chunk: if checked { 500 } else { limit + 1 },
            after: cursor.map(parse_cursor).transpose()?,
            items: Vec::new(),
        })
    }

    /// The next chunk's query and its binds.
    pub(crate) fn query(&self) -> (String, Vec<Bind>) {
        let filter = &self.filter;
        let mut f = Filters::default();
        if let Some(own) = self.principal.tenant() {
            f.text(
                "(tenant_id = ? OR (tenant_id IS NULL AND status <> 'draft'))",
                Some(own.as_str()),
            );
        }
        f.text("status = ?", filter.status.map(Status::as_str));
        f.text("tenant_id = ?", filter.tenant_id.as_deref());
        match filter.scope_type.as_deref() {
            Some("platform") => f.always("tenant_id IS NULL"),
            // The scope's JSON starts with its tag (`Scope` is internally tagged); `matches`
            // checks it again on the parsed scope.
            Some(t @ ("tenant" | "agent")) => {
                f.text("scope LIKE ?", Some(&format!("{{\"type\":\"{t}\",%")));
            }
            _ => {}
        }
        if let Some(q) = &self.q {
            // Rows without a lowercased name (written before it existed) are read, and
            // their names tested in `take`.
            f.text(
                &format!("({NAME_CONTAINS} OR name_folded IS NULL)"),
                Some(q),
            );
        }
        if let Some((at, id)) = &self.after {
            f.row(
                "(created_at < ?1 OR (created_at = ?2 AND id < ?3))",
                vec![Bind::Int(*at), Bind::Int(*at), Bind::Text(id.clone())],
            );
        }
        let sql = format!(
            "SELECT {} FROM policies WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
            summary_columns(),
            f.sql(),
            self.chunk
        );
        (sql, f.binds)
    }

    /// Takes a chunk's rows, in order; whether to read the next chunk.
    pub(crate) fn take(&mut self, rows: Vec<RawSummary>) -> Result<bool> {
        let read = rows.len();
        for raw in rows {
            self.after = Some((raw.created_at, raw.id.clone()));
            if self.items.len() > self.limit {
                continue;
            }
            // SQL matched the kept lowercased names; rows without one are told here, by
            // `matches`, as `list_policies` tells every row.
            let summary = raw.summary()?;
            if visible_as(
                &self.principal,
                summary.tenant_id.as_deref(),
                summary.status,
            ) && matches(
                &summary.scope,
                &summary.name,
                &self.filter,
                self.q.as_deref(),
            ) {
                self.items.push(summary);
            }
        }
        Ok(self.items.len() <= self.limit && read == self.chunk)
    }

    /// The page read, with the next page's cursor.
    pub(crate) fn page(mut self) -> Page<PolicySummary> {
        let next_cursor = if self.items.len() > self.limit {
            self.items.truncate(self.limit);
            self.items
                .last()
                .map(|p| format!("{}~{}", ms(p.created_at), p.id))
        } else {
            None
        };
        Page {
            items: self.items,
            next_cursor,
        }
    }
}

/// [`PolicyScan`] through sqlx (PostgreSQL, and an in-memory SQLite database).
pub(crate) async fn policies_page(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &PolicyFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<PolicySummary>> {
    let mut scan = PolicyScan::new(principal, filter, cursor, limit)?;
    loop {
        let (sql, binds) = scan.query();
        let rows = bound(sql, binds).fetch_all(pool).await?;
        let rows = rows.iter().map(raw_summary).collect::<Result<Vec<_>>>()?;
        if !scan.take(rows)? {
            return Ok(scan.page());
        }
    }
}

/// `<created_at>~<id>` of the policies' pages.
fn parse_cursor(cursor: &str) -> Result<(i64, String)> {
    let (at, id) = cursor.split_once('~').ok_or_else(bad_cursor)?;
    Ok((at.parse().map_err(|_| bad_cursor())?, id.to_owned()))
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
        Some(expected) if expected != stored.policy.revision => Err(StoreError::RevisionMismatch {
            message: format!(
                "policy {} is at revision {}, not {expected}",
                stored.policy.id, stored.policy.revision
            ),
            current_revision: stored.policy.revision,
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
    // What the list keeps of the definition, in a statement of its own: written with the name
    // and rules, the triggers that catch an older node's edits would take an unchanged value
    // (a rename of case only, an edit of one rule) for stale and empty it.
    sqlx::query("UPDATE policies SET name_folded = $1, rule_count = $2 WHERE id = $3")
        .bind(fold(&definition.name))
        .bind(rule_count(&definition.rules))
        .bind(before.policy.id.as_str())
        .execute(&mut *tx)
        .await?;
    let mut after = before.clone();
    after.policy.definition = definition;
    after.policy.revision = revision;
    after.tenant_id = tenant_id;
    after.updated_at = change.at;
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

/// The versions of `id`'s lineage from `radius` before it to `radius` after it, oldest first,
/// with how many visible versions come before and after those: a policy's page shows its
/// neighbours in a lineage of any length, read through the (`lineage_id`, version) index.
pub(crate) async fn versions_near(
    pool: &Pool<Db>,
    principal: &Principal,
    id: &str,
    radius: u32,
) -> Result<VersionsNear> {
    let one = get_policy(pool, principal, id).await?;
    let lineage = one.policy.lineage_id.as_str();
    let low = i64::from(one.policy.version.saturating_sub(radius));
    let high = i64::from(one.policy.version.saturating_add(radius));
    // What `visible` leaves out of a lineage the principal may see: a platform lineage's
    // drafts, for a tenant key.
    let seen = if principal.tenant().is_some() {
        "(tenant_id IS NOT NULL OR status <> 'draft')"
    } else {
        "TRUE"
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM policies WHERE lineage_id = $1 \
         AND version >= $2 AND version <= $3 ORDER BY version",
        summary_columns()
    )))
    .bind(lineage)
    .bind(low)
    .bind(high)
    .fetch_all(pool)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let summary = raw_summary(row)?.summary()?;
        if visible_as(principal, summary.tenant_id.as_deref(), summary.status) {
            items.push(summary);
        }
    }
    let outside = sqlx::query(AssertSqlSafe(format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN version < $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS before, \
         CAST(COALESCE(SUM(CASE WHEN version > $3 THEN 1 ELSE 0 END), 0) AS BIGINT) AS after \
         FROM policies WHERE lineage_id = $1 AND (version < $2 OR version > $3) AND {seen}"
    )))
    .bind(lineage)
    .bind(low)
    .bind(high)
    .fetch_one(pool)
    .await?;
    let count = |name: &str| -> Result<u32> { to_u32(outside.try_get(name)?, name) };
    Ok(VersionsNear {
        lineage_id: one.policy.lineage_id,
        before: count("before")?,
        after: count("after")?,
        items,
    })
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
