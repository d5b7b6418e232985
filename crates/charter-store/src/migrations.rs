//! Running the embedded migrations when a node starts.
//!
//! Nodes of two versions share one database during a rolling upgrade: the first newer node
//! migrates it, and the older nodes keep serving. An older node must also be able to restart
//! then, so migrations a newer build applied are not an error here (sqlx refuses them by
//! default). That is sound because every migration only adds (tables, columns with defaults,
//! indexes) and never changes what an older build reads or writes; see docs/operations.md,
//! "Upgrades".

use sqlx::migrate::Migrator;

/// `embedded`, tolerant of migrations this build does not know.
pub(crate) fn tolerant(embedded: &Migrator) -> Migrator {
    let mut migrator = Migrator::with_migrations(embedded.iter().cloned().collect());
    migrator.set_ignore_missing(true);
    migrator
}
