//! Readiness: the database answers, and holds every migration this build knows.

use sqlx::Pool;

use super::super::{Db, MIGRATOR};
use super::Result;
use crate::error::StoreError;

/// `Ok` when the database answers a query and has this build's migrations applied; else why
/// not (the database's own error, or how far behind its schema is).
pub(crate) async fn readiness(pool: &Pool<Db>) -> Result<()> {
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?;
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match applied {
        Some(applied) if applied >= known => Ok(()),
        applied => Err(StoreError::Backend(format!(
            "the schema is at migration {}, this build needs {known}",
            applied.unwrap_or(0)
        ))),
    }
}
