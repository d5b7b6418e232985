//! `POST /v1/runs/import`: recorded history from before Charter or from another installation.
//!
//! A JSON body is read whole (within the body limit). An NDJSON body has no overall limit, so
//! it is never held in memory: each line is parsed and checked as it arrives (a bad one is
//! refused at once, naming its line), then kept on disk, in an unnamed file that vanishes with
//! the request or the process; once the body has ended, the store pulls the runs back one at a
//! time as it writes them (`RunSource`; all or nothing), the next megabyte of lines read and
//! parsed while it inserts the current one. Memory holds a line and two such pieces, whatever the
//! body's length.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Seek as _, Write as _};
use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use charter_core::Action;
use charter_store::{ImportedRun, RunSource, RunStatus, StoreError};
use serde::Deserialize;
use serde_json::Value;

use super::parse;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// Staged records are written to disk in pieces of this size.
const WRITE_AT: usize = 1 << 20;
/// The store is handed staged runs read back in pieces of about this many bytes of lines.
const READ_AT: usize = 1 << 20;

/// `POST /v1/runs/import`: recorded runs with their own timestamps, all or nothing. A JSON
/// body `{"runs": [...]}`, or `application/x-ndjson` with one run per line (each line within
/// the body limit).
#[utoipa::path(
    post,
    path = "/v1/runs/import",
    operation_id = "import_runs",
    summary = "Import recorded runs (history for Validate), all or nothing.",
    tag = "runs",
    request_body(
        description = "`{\"runs\": [...]}` within the body limit, or, with `Content-Type: application/x-ndjson`, one run per line (blank lines skipped), streamed: no overall size limit, each line within the body limit. Imported runs are ended and never enforced.",
        content(
            (ImportBody = "application/json"),
            (ImportRun = "application/x-ndjson")
        )
    ),
    responses(
        (status = 201, description = "How many runs and actions were imported.", body = crate::answers::RunsImported),
        (status = 400, description = "`invalid`: a bad body; `details.path` names the first bad run and field: `runs[2].actions[0].at`, or for NDJSON `line 7.agent_id` (the run's line in the body, counting from 1, blank lines included).", body = crate::error::ErrorBody),
        (status = 413, description = "`too_large`: the JSON body, or one NDJSON line, exceeds the body limit; or an NDJSON body would leave the server's disk with less than its reserve free (`details.free_bytes`, `details.reserve_bytes`).", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn import(
    State(state): State<AppState>,
    crate::extract::Writer(caller): crate::extract::Writer,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ndjson = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let (runs, actions) = if ndjson {
        let staged = stage(&state, &caller, body).await?;
        let mut runs = staged.into_runs(caller.clone()).await?;
        let imported = state.store.import_runs(&caller.principal, &mut runs).await;
        imported.map_err(|e| runs.name_line(e))?
    } else {
        let bytes = axum::body::to_bytes(body, state.body_limit)
            .await
            .map_err(|_| ApiError::too_large(state.body_limit))?;
        let value = charter_core::parse::json(&bytes)?;
        let parsed: ImportBody = parse(&value)?;
        let mut runs = Vec::with_capacity(parsed.runs.len());
        for (i, run) in parsed.runs.iter().enumerate() {
            runs.push(parse_run(run, &caller).map_err(|e| e.under(&format!("runs[{i}]")))?);
        }
        state
            .store
            .import_runs(&caller.principal, &mut runs.into_iter())
            .await?
    };
    let imported = crate::answers::RunsImported { runs, actions };
    Ok((StatusCode::CREATED, super::json(&imported)?))
}

/// Reads an NDJSON body line by line (each within the body limit), refusing the first line
/// that is not a valid run, and stages every run on disk.
async fn stage(
    state: &AppState,
    caller: &Caller,
    mut body: axum::body::Body,
) -> Result<Staged, ApiError> {
    use http_body_util::BodyExt as _;
    let mut staged = Staged::create(state.staging_dir.clone(), state.staging_reserve).await?;
    // The unfinished line, and how much of it is known to hold no newline (a line cut into
    // many frames is scanned once, not once per frame).
    let mut pending: Vec<u8> = Vec::new();
    let mut scanned = 0;
    let mut line_no = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::invalid("", format!("reading the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        let mut start = 0;
        while let Some(end) = pending[scanned..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|at| scanned + at)
        {
            if end - start > state.body_limit {
                return Err(ApiError::too_large(state.body_limit));
            }
            line_no += 1;
            staged.take(&pending[start..end], line_no, caller).await?;
            start = end + 1;
            scanned = start;
        }
        pending.drain(..start);
        scanned = pending.len();
        if pending.len() > state.body_limit {
            return Err(ApiError::too_large(state.body_limit));
        }
    }
    if !pending.is_empty() {
        line_no += 1;
        staged.take(&pending, line_no, caller).await?;
    }
    Ok(staged)
}

/// An NDJSON import's runs, checked and kept on disk until the store pulls them back. Each
/// record is a line: the run's line number in the body, a tab, the line as it came (a line
/// holds no newline: the body was split on them).
///
/// The body has no length limit, so the disk is what bounds it: the import is refused as soon
/// as the disk's free space falls under `reserve` plus what is staged (which the store will
/// write once more), looked at before the first byte and after every write. An import never
/// fills the disk the database lives on.
struct Staged {
    file: Option<File>,
    unwritten: Vec<u8>,
    /// Bytes written to the file so far.
    written: u64,
    reserve: u64,
}

impl Staged {
    /// An unnamed file in `dir`: nothing is left behind, whatever happens to the request.
    async fn create(dir: PathBuf, reserve: u64) -> Result<Staged, ApiError> {
        let (file, free) = blocking(move || {
            let file = tempfile::tempfile_in(&dir)?;
            let free = free_space(&file)?;
            Ok::<_, std::io::Error>((file, free))
        })
        .await?
        .map_err(|e| staging_failed(&e))?;
        let staged = Staged {
            file: Some(file),
            unwritten: Vec::new(),
            written: 0,
            reserve,
        };
        staged.room(free)?;
        Ok(staged)
    }

    /// Refuses the import if `free` bytes on the disk are not enough to go on.
    fn room(&self, free: Option<u64>) -> Result<(), ApiError> {
        const MIB: u64 = 1 << 20;
        let Some(free) = free else {
            return Ok(());
        };
        let needed = self.reserve.saturating_add(self.written);
        if free >= needed {
            return Ok(());
        }
        Err(ApiError::no_room(
            format!(
                "the import does not fit on the server's disk: {} MiB free, and it keeps {} MiB \
                 free beyond room for the {} MiB staged so far to be written into the \
                 database; import the history in smaller requests, or free space",
                free / MIB,
                self.reserve / MIB,
                self.written / MIB
            ),
            free,
            self.reserve,
        ))
    }

    /// Checks one line of the body (line `line_no`) and stages it; a blank line is skipped.
    async fn take(&mut self, line: &[u8], line_no: usize, caller: &Caller) -> Result<(), ApiError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        read_run(line, line_no, caller)?;
        let _ = write!(self.unwritten, "{line_no}\t");
        self.unwritten.extend_from_slice(line);
        self.unwritten.push(b'\n');
        if self.unwritten.len() >= WRITE_AT {
            self.write().await?;
        }
        Ok(())
    }

    async fn write(&mut self) -> Result<(), ApiError> {
        let (mut file, bytes) = (self.take_file()?, std::mem::take(&mut self.unwritten));
        let length = bytes.len() as u64;
        let (file, result) = blocking(move || {
            let result = file.write_all(&bytes).and_then(|()| free_space(&file));
            (file, result)
        })
        .await?;
        self.file = Some(file);
        let free = result.map_err(|e| staging_failed(&e))?;
        self.written += length;
        self.room(free)
    }

    fn take_file(&mut self) -> Result<File, ApiError> {
        self.file
            .take()
            .ok_or_else(|| ApiError::internal("staging the import: the file was lost"))
    }

    /// The staged runs, to be read back from the start.
    async fn into_runs(mut self, caller: Caller) -> Result<StagedRuns, ApiError> {
        self.write().await?;
        let mut file = self.take_file()?;
        let file = blocking(move || file.rewind().map(|()| file))
            .await?
            .map_err(|e| staging_failed(&e))?;
        Ok(StagedRuns {
            next: Some(read_piece(BufReader::new(file), caller.clone())),
            ready: VecDeque::new(),
            caller,
            given: 0,
            last_line: 0,
            failed: None,
        })
    }
}

/// The bytes free to an unprivileged writer on the disk holding `file` (`None` where that
/// cannot be asked).
#[cfg(unix)]
fn free_space(file: &File) -> std::io::Result<Option<u64>> {
    let stats = rustix::fs::fstatvfs(file)?;
    Ok(Some(stats.f_bavail.saturating_mul(stats.f_frsize)))
}

#[cfg(not(unix))]
fn free_space(_: &File) -> std::io::Result<Option<u64>> {
    Ok(None)
}

/// A piece of staged runs read back: the reader (`None` once at its end) and the runs, with
/// their lines.
type Piece = (
    Option<BufReader<File>>,
    Result<Vec<(usize, ImportedRun)>, StoreError>,
);

/// Reads and parses the next piece (about `READ_AT` bytes of lines) on a blocking thread.
fn read_piece(mut reader: BufReader<File>, caller: Caller) -> tokio::task::JoinHandle<Piece> {
    tokio::task::spawn_blocking(move || {
        let mut runs = Vec::new();
        let mut read = 0;
        let mut record = Vec::new();
        while read < READ_AT {
            record.clear();
            match reader.read_until(b'\n', &mut record) {
                Ok(0) => return (None, Ok(runs)),
                Ok(n) => read += n,
                Err(e) => return (None, Err(staging(&e))),
            }
            match unstage(&record, &caller) {
                Ok(run) => runs.push(run),
                Err(e) => return (None, Err(e)),
            }
        }
        (Some(reader), Ok(runs))
    })
}

/// The staged runs as the store pulls them. The next piece is read and parsed while the store
/// inserts the current one, so its transactions (on SQLite, the write lock) wait for the disk
/// and the parser as little as possible.
struct StagedRuns {
    /// The next piece being read; `None` once the last one was taken.
    next: Option<tokio::task::JoinHandle<Piece>>,
    /// Runs read back and not yet given, with their lines.
    ready: VecDeque<(usize, ImportedRun)>,
    caller: Caller,
    given: usize,
    /// The line of the run given last.
    last_line: usize,
    /// A failure already reported, reported again rather than taken for the end.
    failed: Option<StoreError>,
}

impl StagedRuns {
    /// Names a run the store refused (`runs[3].agent_id`: it counts the runs it pulled, and
    /// refuses only the one it pulled last) by its line in the body (`line 7.agent_id`), as
    /// parse errors are named.
    fn name_line(&self, e: StoreError) -> StoreError {
        let StoreError::Invalid { path, message } = e else {
            return e;
        };
        let renamed = path.strip_prefix("runs[").and_then(|rest| {
            let (index, field) = rest.split_once(']')?;
            (index.parse::<usize>().ok()? + 1 == self.given)
                .then(|| format!("line {}{field}", self.last_line))
        });
        StoreError::Invalid {
            path: renamed.unwrap_or(path),
            message,
        }
    }
}

impl RunSource for StagedRuns {
    async fn next_run(&mut self) -> Result<Option<ImportedRun>, StoreError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while self.ready.is_empty() {
            let Some(reading) = self.next.take() else {
                return Ok(None);
            };
            let (reader, runs) = reading.await.unwrap_or_else(|e| (None, Err(staging(&e))));
            let runs = runs.inspect_err(|e| self.failed = Some(e.clone()))?;
            self.next = reader.map(|reader| read_piece(reader, self.caller.clone()));
            self.ready.extend(runs);
        }
        Ok(self.ready.pop_front().map(|(line, run)| {
            self.given += 1;
            self.last_line = line;
            run
        }))
    }
}

/// One staged record back as its line and run. The line was checked when it arrived, so a
/// failure here is the disk's, not the caller's.
fn unstage(record: &[u8], caller: &Caller) -> Result<(usize, ImportedRun), StoreError> {
    let record = record.strip_suffix(b"\n").unwrap_or(record);
    let tab = record.iter().position(|b| *b == b'\t');
    let (line_no, line) = tab
        .and_then(|tab| {
            let line_no = std::str::from_utf8(&record[..tab]).ok()?.parse().ok()?;
            Some((line_no, &record[tab + 1..]))
        })
        .ok_or_else(|| StoreError::Backend("reading the staged import: a damaged record".into()))?;
    let run = read_run(line, line_no, caller)
        .map_err(|e| StoreError::Backend(format!("reading the staged import: {e:?}")))?;
    Ok((line_no, run))
}

/// A failure of the staging file itself, while the body arrives (logged; the caller sees 500).
fn staging_failed(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::internal(&format!("staging the import: {e}"))
}

fn staging(e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("reading the staged import: {e}"))
}

/// Line `line_no` of an NDJSON body as a run; errors are named `line N...`.
pub(crate) fn read_run(
    line: &[u8],
    line_no: usize,
    caller: &Caller,
) -> Result<ImportedRun, ApiError> {
    let value = charter_core::parse::json(line)
        .map_err(|e| ApiError::from(e).under(&format!("line {line_no}")))?;
    parse_run(&value, caller).map_err(|e| e.under(&format!("line {line_no}")))
}

/// Runs file work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| staging_failed(&e))
}

/// A JSON import body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RunImportBody)]
struct ImportBody {
    /// The runs, imported all or nothing.
    #[schema(value_type = Vec<ImportRun>)]
    runs: Vec<Value>,
}

/// One recorded run of an import body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportedRun)]
struct ImportRun {
    /// The agent; it must exist in the run's tenant.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    agent_id: String,
    /// The run's tenant: a platform key must name it; a tenant key's runs are its own.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]+$")]
    tenant_id: Option<String>,
    /// When it started (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    started_at: jiff::Timestamp,
    /// When it ended (default: at its last action).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    ended_at: Option<jiff::Timestamp>,
    /// How it ended (default `completed`).
    #[serde(default)]
    status: Option<ImportedStatus>,
    /// What the source attached (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Its actions, in time order, none before `started_at` (default none).
    #[serde(default, deserialize_with = "charter_core::parse::null_as_default")]
    #[schema(value_type = Option<Vec<crate::schemas::ImportedAction>>)]
    actions: Vec<Value>,
}

/// How an imported run ended.
#[derive(Deserialize, Clone, Copy, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum ImportedStatus {
    /// Ended normally (the default).
    #[default]
    Completed,
    /// Ended in failure.
    Failed,
    /// Stopped by a rule.
    Halted,
}

/// Parses one imported run; error paths are relative to it.
fn parse_run(value: &Value, caller: &Caller) -> Result<charter_store::ImportedRun, ApiError> {
    let run: ImportRun = parse(value)?;
    let tenant_id = super::runs::run_tenant(&caller.principal, run.tenant_id, "each run's")?;
    let status = match run.status.unwrap_or_default() {
        ImportedStatus::Completed => RunStatus::Completed,
        ImportedStatus::Failed => RunStatus::Failed,
        ImportedStatus::Halted => RunStatus::Halted,
    };
    let metadata = super::runs::run_metadata(run.metadata)?;
    let mut actions = Vec::with_capacity(run.actions.len());
    for (i, value) in run.actions.iter().enumerate() {
        let path = format!("actions[{i}]");
        let mut object = match value {
            Value::Object(map) => map.clone(),
            _ => return Err(ApiError::invalid(&path, "an action is a JSON object")),
        };
        let at: jiff::Timestamp = match object.remove("at") {
            Some(at) => charter_core::parse::from_value(&at)
                .map_err(|e| ApiError::from(e.under(&format!("{path}.at"))))?,
            None => {
                return Err(ApiError::invalid(
                    &format!("{path}.at"),
                    "missing field `at`",
                ));
            }
        };
        let decision = match object.remove("decision") {
            None | Some(Value::Null) => None,
            Some(d) => Some(
                d.as_str()
                    .and_then(charter_core::Outcome::from_name)
                    .ok_or_else(|| {
                        ApiError::invalid(&format!("{path}.decision"), "allow, block or halt")
                    })?,
            ),
        };
        let action = Action::from_value(Value::Object(object))
            .map_err(|e| ApiError::from(e.under(&path)))?;
        actions.push(charter_store::ImportedAction {
            at,
            action,
            decision,
        });
    }
    Ok(charter_store::ImportedRun {
        tenant_id,
        agent_id: run.agent_id,
        started_at: run.started_at,
        ended_at: run.ended_at,
        status,
        metadata,
        actions,
    })
}
