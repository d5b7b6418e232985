//! A consistent copy of a live SQLite database, taken while a server keeps checking.
//!
//! `VACUUM INTO` reads the database in one read transaction (a snapshot: in WAL mode writers go
//! on meanwhile, and what they commit after it began is not in the copy) and writes a compact,
//! self-contained file: no `-wal` to carry along. Restoring is putting that file in place of
//! `charter.db` while no server uses the directory (docs/operations.md).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;

/// Copies the SQLite database at `db` into a new file `out`, consistently, while other
/// processes (a running server) read and write it. `out` must not exist yet.
pub fn backup_sqlite(db: &Path, out: &Path) -> Result<(), StoreError> {
    let backend = |what: &str, e: rusqlite::Error| StoreError::Backend(format!("{what}: {e}"));
    if !db.is_file() {
        return Err(StoreError::Invalid {
            path: "data_dir".into(),
            message: format!("no database at {}", db.display()),
        });
    }
    if out.exists() {
        return Err(StoreError::Invalid {
            path: "out".into(),
            message: format!("{} exists: a backup never overwrites a file", out.display()),
        });
    }
    let target = out.to_str().ok_or_else(|| StoreError::Invalid {
        path: "out".into(),
        message: "the path is not UTF-8".into(),
    })?;
    // Read-write without creating: SQLite's WAL needs a reader to take its locks in the shared
    // memory file; nothing is written to the source.
    let connection = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| backend(&format!("opening {}", db.display()), e))?;
    connection
        .busy_timeout(Duration::from_secs(30))
        .map_err(|e| backend("setting a busy timeout", e))?;
    connection
        .execute("VACUUM INTO ?1", [target])
        .map_err(|e| backend(&format!("copying into {}", out.display()), e))?;
    let check: String = Connection::open_with_flags(out, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|copy| copy.query_row("PRAGMA integrity_check", [], |row| row.get(0)))
        .map_err(|e| backend("checking the copy", e))?;
    if check != "ok" {
        return Err(StoreError::Backend(format!(
            "the copy at {} failed its integrity check: {check}",
            out.display()
        )));
    }
    Ok(())
}
