//! The audit log: appending to a tenant's hash chain, listing it, verifying it.

use serde_json::Value;
use sqlx::{AssertSqlSafe, Pool, Row};

use super::query::{Bind, Filters, bad_cursor, bound};
use super::{Db, FOR_UPDATE, Result, Tx, ms, time, to_u32};
use crate::AuditFilter;
use crate::audit::{self, GENESIS, Hashed};
use crate::error::StoreError;
use crate::model::{Actor, AuditEntry, Change, Principal, Verification};
use crate::runs::Page;

/// Appends one entry to the chain of `tenant` (`None`: the platform chain), inside `tx`.
pub(super) async fn append(
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

/// An audit entry's columns, in [`RawEntry`]'s order (the SQLite reader reads them by
/// position).
pub(crate) const ENTRY_COLUMNS: &str = "chain, seq, at, tenant_id, actor_key_id, actor_name, \
     action, policy_id, lineage_id, version, details, prev_hash, hash";

/// An entry's columns as stored, read by either driver, then parsed by [`RawEntry::entry`].
pub(crate) struct RawEntry {
    pub(crate) chain: String,
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) tenant_id: Option<String>,
    pub(crate) actor_key_id: String,
    pub(crate) actor_name: String,
    pub(crate) action: String,
    pub(crate) policy_id: Option<String>,
    pub(crate) lineage_id: Option<String>,
    pub(crate) version: Option<i64>,
    pub(crate) details: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

impl RawEntry {
    /// The entry, and its details as stored (what its hash covers).
    fn entry(self) -> Result<(AuditEntry, String)> {
        let entry = AuditEntry {
            seq: u64::try_from(self.seq).map_err(|_| StoreError::Backend("bad seq".into()))?,
            at: time(self.at)?,
            tenant_id: self.tenant_id,
            actor: Actor {
                key_id: self.actor_key_id,
                name: self.actor_name,
            },
            action: self.action,
            policy_id: self.policy_id,
            lineage_id: self.lineage_id,
            version: self.version.map(|v| to_u32(v, "version")).transpose()?,
            details: serde_json::from_str(&self.details).unwrap_or(Value::Null),
            prev_hash: self.prev_hash,
            hash: self.hash,
        };
        Ok((entry, self.details))
    }
}

fn raw_entry(row: &<Db as sqlx::Database>::Row) -> Result<RawEntry> {
    Ok(RawEntry {
        chain: row.try_get("chain")?,
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        tenant_id: row.try_get("tenant_id")?,
        actor_key_id: row.try_get("actor_key_id")?,
        actor_name: row.try_get("actor_name")?,
        action: row.try_get("action")?,
        policy_id: row.try_get("policy_id")?,
        lineage_id: row.try_get("lineage_id")?,
        version: row.try_get("version")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
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

/// One page of the audit log as the principal reads it, filtered, in the chains' order: the
/// query [`AuditListing::new`] gives reads it, [`AuditListing::page`] makes the page of its
/// rows.
pub(crate) struct AuditListing {
    limit: usize,
}

impl AuditListing {
    /// The listing, and its query with the query's binds.
    pub(crate) fn new(
        principal: &Principal,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(AuditListing, String, Vec<Bind>)> {
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
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE {} ORDER BY chain, seq LIMIT {}",
            f.sql(),
            u64::from(limit) + 1
        );
        let listing = AuditListing {
            limit: limit as usize,
        };
        Ok((listing, sql, f.binds))
    }

    /// The page of the rows the query read, with the next page's cursor.
    pub(crate) fn page(&self, rows: Vec<RawEntry>) -> Result<Page<AuditEntry>> {
        let mut items = rows
            .into_iter()
            .map(|raw| raw.entry().map(|(entry, _)| entry))
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > self.limit {
            items.truncate(self.limit);
            items
                .last()
                .map(|e| format!("{}~{}", e.seq, e.tenant_id.as_deref().unwrap_or("")))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

/// [`AuditListing`] through sqlx (PostgreSQL, and an in-memory SQLite database).
pub(crate) async fn audit_list(
    pool: &Pool<Db>,
    principal: &Principal,
    filter: &AuditFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<AuditEntry>> {
    let (listing, sql, binds) = AuditListing::new(principal, filter, cursor, limit)?;
    let rows = bound(sql, binds).fetch_all(pool).await?;
    listing.page(rows.iter().map(raw_entry).collect::<Result<_>>()?)
}

pub(crate) async fn audit_verify(
    pool: &Pool<Db>,
    principal: &Principal,
    tenant: Option<&str>,
) -> Result<Verification> {
    let chain_filter = chains_for(principal, tenant);
    // The entries are read between two reads of the anchors: a pruning pass moves an anchor and
    // deletes what it covers in one transaction, and anchors only move forward, so equal reads
    // mean the entries read are those the anchors begin (else read again).
    let (rows, anchor_rows) = loop {
        let before = anchors(pool, chain_filter.as_deref()).await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE ($1 IS NULL OR chain = $1) \
             ORDER BY chain, seq"
        )))
        .bind(chain_filter.as_deref())
        .fetch_all(pool)
        .await?;
        let after = anchors(pool, chain_filter.as_deref()).await?;
        if before == after {
            break (rows, after);
        }
    };
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
    let anchor_of = |chain: &str| {
        anchor_rows
            .iter()
            .find(|(c, _, _)| c == chain)
            .map(|(_, seq, hash)| (*seq, hash.as_str()))
    };
    let mut entries: Vec<(String, AuditEntry, String)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let raw = raw_entry(row)?;
        let chain = raw.chain.clone();
        let (entry, details) = raw.entry()?;
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
        let broken = audit::first_bad(&one, anchor_of(&chain)).or_else(|| {
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
    // A chain whose every entry is gone still has its head, which only retention's anchor may
    // account for: then the anchor is the head.
    if let Some((chain, _, _)) = heads.iter().find(|(c, seq, hash)| {
        *seq > 0
            && !entries.iter().any(|(e, _, _)| e == c)
            && anchor_of(c) != Some((*seq, hash.as_str()))
    }) {
        return Ok(Verification::Broken {
            ok: false,
            tenant_id: (!chain.is_empty()).then(|| chain.clone()),
            first_bad_seq: anchor_of(chain).map_or(1, |(seq, _)| seq + 1),
        });
    }
    Ok(Verification::Ok {
        ok: true,
        entries: total,
    })
}

/// The anchors of the chains `chain` selects (`None`: all): (chain, seq, hash), in chain order.
async fn anchors(pool: &Pool<Db>, chain: Option<&str>) -> Result<Vec<(String, u64, String)>> {
    let rows = sqlx::query(
        "SELECT chain, seq, hash FROM audit_anchors WHERE ($1 IS NULL OR chain = $1) ORDER BY chain",
    )
    .bind(chain)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let seq: i64 = row.try_get("seq")?;
            Ok((
                row.try_get("chain")?,
                u64::try_from(seq).unwrap_or(0),
                row.try_get("hash")?,
            ))
        })
        .collect()
}
