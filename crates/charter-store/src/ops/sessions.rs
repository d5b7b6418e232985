//! The web workspace's sessions: created at sign-in, read on every request with the key they
//! name (live keys only), pointed at a tenant by a platform key, ended at sign-out.

use charter_core::TenantId;
use jiff::Timestamp;
use sqlx::{Pool, Row};

use super::accounts::key_row;
use super::{Db, Result, begin, ms, time};
use crate::error::StoreError;
use crate::model::{Principal, WebSession};

/// Stores a session under the hash of its id, and drops the sessions that have expired.
pub(crate) async fn create_session(
    pool: &Pool<Db>,
    id_hash: &str,
    key_id: &str,
    csrf_token: &str,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    let mut tx = begin(pool).await?;
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(ms(created_at))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, key_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(key_id)
    .bind(csrf_token)
    .bind(ms(created_at))
    .bind(ms(expires_at))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The unexpired session whose id hashes to `id_hash`, with its key as stored now; `None` when
/// there is no such session, it has expired, or its key has been revoked.
pub(crate) async fn session(
    pool: &Pool<Db>,
    id_hash: &str,
    now: Timestamp,
) -> Result<Option<WebSession>> {
    let row = sqlx::query(
        "SELECT k.*, s.tenant_id AS session_tenant, s.csrf_token, s.created_at AS session_created, \
         s.expires_at AS session_expires \
         FROM web_sessions s JOIN api_keys k ON k.id = s.key_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
    )
    .bind(id_hash)
    .bind(ms(now))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(WebSession {
        key: key_row(&row)?,
        tenant_id: row.try_get("session_tenant")?,
        csrf_token: row.try_get("csrf_token")?,
        created_at: time(row.try_get("session_created")?)?,
        expires_at: time(row.try_get("session_expires")?)?,
    }))
}

/// Points a platform key's session at one tenant (`None`: all of them). A tenant key sees one
/// tenant only and has nothing to choose.
pub(crate) async fn choose_session_tenant(
    pool: &Pool<Db>,
    id_hash: &str,
    principal: &Principal,
    tenant: Option<&TenantId>,
) -> Result<()> {
    if *principal != Principal::Platform {
        return Err(StoreError::Forbidden(
            "only platform keys switch between tenants".into(),
        ));
    }
    let mut tx = begin(pool).await?;
    if let Some(tenant) = tenant {
        let exists = sqlx::query("SELECT 1 AS one FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::invalid(
                "tenant",
                format!("no tenant `{tenant}`"),
            ));
        }
    }
    let updated = sqlx::query("UPDATE web_sessions SET tenant_id = $1 WHERE id_hash = $2")
        .bind(tenant.map(TenantId::as_str))
        .bind(id_hash)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::not_found("session"));
    }
    tx.commit().await?;
    Ok(())
}

/// Ends a session (nothing to do when it is already gone).
pub(crate) async fn end_session(pool: &Pool<Db>, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}
