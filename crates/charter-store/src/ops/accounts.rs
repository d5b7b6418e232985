//! Tenants, agents and API keys.

use charter_core::TenantId;
use jiff::Timestamp;
use serde_json::json;
use sqlx::{AssertSqlSafe, Pool, Row};

use super::audit::append;
use super::{Db, FOR_UPDATE, Result, Tx, begin, ms, time};
use crate::audit::{self};
use crate::error::StoreError;
use crate::ids;
use crate::model::{Agent, ApiKey, Change, KeyScope, Principal, Tenant};

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
pub(super) async fn visible_tenant(
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

pub(super) fn key_row(row: &<Db as sqlx::Database>::Row) -> Result<ApiKey> {
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
