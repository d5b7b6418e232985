//! What every handler shares: the store, the clock, the limits of outside input.

use std::path::PathBuf;
use std::sync::Arc;

use charter_store::Store;
use jiff::Timestamp;

/// Where the server reads the time: the system clock in production, a fixed one in tests, so
/// time windows and daily caps are tested exactly.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// The free space an NDJSON import leaves on the disk it is staged on: 1 GiB.
pub const DEFAULT_STAGING_RESERVE: u64 = 1 << 30;

/// The server's shared state: what every handler shares, behind one `Arc`.
///
/// axum hands each request its own copy of the state (several, through the layers), so a copy
/// must cost one reference count, not one per handle inside (the store's, the writer's...).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl AppState {
    /// State over `store` with the system clock and the default body limit (see
    /// [`Shared::new`] to change them first).
    pub fn new(store: Store) -> AppState {
        Shared::new(store).into()
    }
}

/// What the state holds, set up before the server starts ([`AppState::from`]).
pub struct Shared {
    /// Everything Charter keeps.
    pub store: Store,
    /// The server's clock.
    pub clock: Arc<dyn Clock>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Request counts and latencies.
    pub metrics: crate::metrics::Metrics,
    /// Key usage not yet flushed to the store.
    pub usage: crate::usage::Usage,
    /// Compiled sets and the action writer.
    pub runtime: crate::runtime::Runtime,
    /// Where an NDJSON run import is kept until the store writes it (unnamed files, gone with the
    /// request). `Shared::new` puts it in the system's temporary directory; `charter serve`
    /// and `charter demo` on SQLite put it in the data directory, on disk (a `/tmp` may be
    /// memory).
    pub staging_dir: PathBuf,
    /// Free space an NDJSON import leaves on the staging directory's disk, beyond room for
    /// what it staged to be written again into the database: an import that would take it is
    /// refused (413) while it streams, and changes nothing. [`DEFAULT_STAGING_RESERVE`].
    pub staging_reserve: u64,
    /// Open violation streams per key, and the most one key may hold
    /// ([`crate::DEFAULT_STREAMS_PER_KEY`]).
    pub streams: crate::streams::Streams,
    /// Whether the workspace's session cookie is always marked `Secure` (set when a proxy
    /// terminates TLS but does not send `X-Forwarded-Proto: https`); without it, the cookie is
    /// `Secure` when the request says it came over https.
    pub secure_cookies: bool,
}

impl Shared {
    /// State over `store` with the system clock and the default body limit (starts the action
    /// writer: call inside a Tokio runtime).
    pub fn new(store: Store) -> Shared {
        Shared {
            runtime: crate::runtime::Runtime::new(store.clone()),
            store,
            clock: Arc::new(SystemClock),
            body_limit: DEFAULT_BODY_LIMIT,
            metrics: crate::metrics::Metrics::default(),
            usage: crate::usage::Usage::default(),
            staging_dir: std::env::temp_dir(),
            staging_reserve: DEFAULT_STAGING_RESERVE,
            streams: crate::streams::Streams::new(crate::streams::DEFAULT_STREAMS_PER_KEY),
            secure_cookies: false,
        }
    }
}
