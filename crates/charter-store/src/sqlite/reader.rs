//! Validate's reads on SQLite: recorded actions in replay order, read through rusqlite on a
//! blocking thread instead of sqlx.
//!
//! sqlx's SQLite driver copies every column of every row into an owned value on its worker
//! thread and hands rows one by one to the async side: measured, a plain `SELECT` of a
//! million recorded actions took 7–11 s through it, while SQLite itself scans them in about
//! 1 s. rusqlite reads the same rows in place, on the thread that parses them. rusqlite 0.39
//! links the same `libsqlite3-sys` as sqlx, so it is the same SQLite library on the same file.
//! The connections are read-only and each page is its own short read transaction, as with
//! sqlx, so a long validation never holds a snapshot that keeps the write-ahead log from
//! restarting.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use charter_core::Action;
use charter_core::engine::{ArgsRead, Outcome};
use jiff::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};

use super::ops::{self, query::Bind};
use crate::counting::{KnownCounters, Seed};
use crate::error::StoreError;
use crate::{HistoryPage, Principal, RecordedRow};

/// Read-only connections to one database file, kept between pages.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

/// Connections kept idle; more may be open while several validations run.
const KEEP_IDLE: usize = 2;

fn backend(e: &rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("reading recorded actions: {e}"))
}

/// The query builder's binds as rusqlite's values.
fn sql_values(binds: Vec<Bind>) -> Vec<SqlValue> {
    binds
        .into_iter()
        .map(|bind| match bind {
            Bind::Text(text) => SqlValue::Text(text),
            Bind::Int(int) => SqlValue::Integer(int),
        })
        .collect()
}

impl Reader {
    pub(crate) fn new(path: &Path) -> Reader {
        Reader {
            path: path.to_owned(),
            idle: Arc::default(),
        }
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(connection) = idle {
            return Ok(connection);
        }
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| backend(&e))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| backend(&e))?;
        // The settings of every connection: above all its cache, which keeps the pages of the
        // lists' indexes between pages (SQLite's default holds 2 MiB).
        connection
            .execute_batch(&super::pragma_statements())
            .map_err(|e| backend(&e))?;
        Ok(connection)
    }

    fn release(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP_IDLE
        {
            idle.push(connection);
        }
    }

    /// Runs `read` on a connection of the pool, on a blocking thread; `doing` names the read
    /// in the error if the thread fails.
    async fn on_connection<T: Send + 'static>(
        &self,
        doing: &'static str,
        read: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = reader.connect()?;
            let read = read(&mut connection);
            reader.release(connection);
            read
        })
        .await
        .map_err(|e| StoreError::Backend(format!("{doing}: {e}")))?
    }

    /// One page of recorded actions, as `Store::actions_page` describes it.
    pub(crate) async fn actions_page(
        &self,
        principal: &Principal,
        page: &HistoryPage,
    ) -> Result<Vec<RecordedRow>, StoreError> {
        let (sql, binds) = ops::history::actions_page_query(principal, page);
        let binds = sql_values(binds);
        let args = page.args.clone();
        self.on_connection("reading recorded actions", move |connection| {
            read(connection, &sql, binds, &args)
        })
        .await
    }
}

impl Reader {
    /// One page of the policy list (`ops::policies::PolicyScan`), its chunks read here.
    pub(crate) async fn policies_page(
        &self,
        principal: &Principal,
        filter: &crate::PolicyFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<crate::Page<crate::PolicySummary>, StoreError> {
        let mut scan = ops::policies::PolicyScan::new(principal, filter, cursor, limit)?;
        self.on_connection("reading policies", move |connection| {
            loop {
                let (sql, binds) = scan.query();
                let rows = read_rows(connection, &sql, binds, "reading policies", summary_row)?;
                if !scan.take(rows)? {
                    return Ok(scan.page());
                }
            }
        })
        .await
    }
}

/// The rows `sql` selects, each made by `make` (which reads its columns by position: finding
/// a column by its name cost more than reading it); `doing` names the read in errors.
fn read_rows<T>(
    connection: &Connection,
    sql: &str,
    binds: Vec<Bind>,
    doing: &str,
    make: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let failed = |e: rusqlite::Error| StoreError::Backend(format!("{doing}: {e}"));
    let mut statement = connection.prepare_cached(sql).map_err(failed)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(sql_values(binds)), make)
        .map_err(failed)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(failed)
}

/// A policy summary's row (`ops::policies::summary_columns`), as stored.
fn summary_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ops::policies::RawSummary> {
    Ok(ops::policies::RawSummary {
        id: row.get(0)?,
        lineage_id: row.get(1)?,
        version: row.get(2)?,
        tenant_id: row.get(3)?,
        scope: row.get(4)?,
        status: row.get(5)?,
        name: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        activated_at: row.get(9)?,
        deprecated_at: row.get(10)?,
        rule_count: row.get(11)?,
        activated_by: row.get(12)?,
        deprecated_by: row.get(13)?,
    })
}

/// An audit entry's row (`ops::audit::ENTRY_COLUMNS`), as stored.
fn entry_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ops::audit::RawEntry> {
    Ok(ops::audit::RawEntry {
        chain: row.get(0)?,
        seq: row.get(1)?,
        at: row.get(2)?,
        tenant_id: row.get(3)?,
        actor_key_id: row.get(4)?,
        actor_name: row.get(5)?,
        action: row.get(6)?,
        policy_id: row.get(7)?,
        lineage_id: row.get(8)?,
        version: row.get(9)?,
        details: row.get(10)?,
        prev_hash: row.get(11)?,
        hash: row.get(12)?,
    })
}

impl Reader {
    /// One page of the audit log (`ops::audit::AuditListing`), read here.
    pub(crate) async fn audit_page(
        &self,
        principal: &Principal,
        filter: &crate::AuditFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<crate::Page<crate::AuditEntry>, StoreError> {
        let (listing, sql, binds) =
            ops::audit::AuditListing::new(principal, filter, cursor, limit)?;
        self.on_connection("reading the audit log", move |connection| {
            listing.page(read_rows(
                connection,
                &sql,
                binds,
                "reading the audit log",
                entry_row,
            )?)
        })
        .await
    }
}

impl Reader {
    /// Counts `seed` in a snapshot of the database, outside the write lock: the buckets it
    /// counted, and the last row of `actions` the snapshot holds (`commit::write_seed` counts
    /// the rows after it).
    pub(crate) async fn seed_snapshot(
        &self,
        seed: Seed,
        known: &KnownCounters,
    ) -> Result<(i64, Vec<(i64, i64)>), StoreError> {
        let known = known.clone();
        self.on_connection("seeding a counter", move |connection| {
            seed_snapshot(connection, &seed, &known)
        })
        .await
    }
}

fn seed_snapshot(
    connection: &mut Connection,
    seed: &Seed,
    known: &KnownCounters,
) -> Result<(i64, Vec<(i64, i64)>), StoreError> {
    // One read transaction: the rowid and the rows are of the same snapshot.
    let tx = connection.transaction().map_err(|e| backend(&e))?;
    let through: i64 = tx
        .query_row("SELECT coalesce(max(rowid), 0) FROM actions", [], |row| {
            row.get(0)
        })
        .map_err(|e| backend(&e))?;
    let (policy_id, rule_id) = seed.rule();
    let rule = super::commit::counting_rule(&tx, known, policy_id, rule_id)?;
    let (set, _) = seed.counting(rule);
    let (sql, params) = seed.query(None);
    let mut count = seed.count(&set);
    {
        let mut read = tx.prepare(&sql).map_err(|e| backend(&e))?;
        let rows = read
            .query_map(rusqlite::params_from_iter(params), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(|e| backend(&e))?;
        for row in rows {
            count.add(row.map_err(|e| backend(&e))?);
        }
    }
    Ok((through, count.finish()))
}

/// A row as read, before its action is parsed.
struct Raw {
    row: RecordedRow,
    input: Option<String>,
}

/// Pages longer than this are parsed on two threads.
const PARSE_SPLIT: usize = 512;

/// Runs the page's query, then parses the actions: the two halves of a long page on two
/// threads (parsing costs more than reading, and the replay of the previous page runs on
/// another thread meanwhile).
fn read(
    connection: &Connection,
    sql: &str,
    binds: Vec<SqlValue>,
    args: &ArgsRead,
) -> Result<Vec<RecordedRow>, StoreError> {
    let mut raws = query(connection, sql, binds)?;
    if raws.len() > PARSE_SPLIT {
        let second = raws.split_off(raws.len() / 2);
        let (first, second) = std::thread::scope(|scope| {
            let other = scope.spawn(|| parse(second, args));
            let first = parse(raws, args);
            (first, other.join())
        });
        let mut page = first;
        page.extend(second.map_err(|_| {
            StoreError::Backend("reading recorded actions: a parser thread failed".into())
        })?);
        Ok(page)
    } else {
        Ok(parse(raws, args))
    }
}

fn parse(raws: Vec<Raw>, args: &ArgsRead) -> Vec<RecordedRow> {
    raws.into_iter()
        .map(|raw| {
            let mut row = raw.row;
            // An input this version cannot read is "not replayable", never guessed.
            row.action = raw
                .input
                .as_deref()
                .and_then(|input| Action::from_json_reading(input, args).ok());
            row
        })
        .collect()
}

fn query(connection: &Connection, sql: &str, binds: Vec<SqlValue>) -> Result<Vec<Raw>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(|e| backend(&e))?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(binds))
        .map_err(|e| backend(&e))?;
    let mut page = Vec::new();
    while let Some(row) = rows.next().map_err(|e| backend(&e))? {
        let text = |i: usize| -> Result<Option<&str>, StoreError> {
            row.get_ref(i)
                .and_then(|v| v.as_str_or_null().map_err(Into::into))
                .map_err(|e| backend(&e))
        };
        let int = |i: usize| -> Result<i64, StoreError> { row.get(i).map_err(|e| backend(&e)) };
        let owned = |i: usize| -> Result<String, StoreError> {
            text(i)?
                .map(str::to_owned)
                .ok_or_else(|| StoreError::Backend(format!("column {i} of an action is null")))
        };
        let started = int(7)?;
        page.push(Raw {
            row: RecordedRow {
                id: owned(0)?,
                run_id: owned(1)?,
                tenant_id: owned(2)?,
                agent_id: owned(3)?,
                at_ms: int(4)?,
                run_started_at: Timestamp::from_millisecond(started)
                    .map_err(|e| StoreError::Backend(format!("bad time {started}: {e}")))?,
                action: None,
                decision: text(6)?.and_then(Outcome::from_name),
            },
            input: text(5)?.map(str::to_owned),
        });
    }
    Ok(page)
}
