//! What every handler shares: the store, the clock, the limits of outside input.

use std::path::PathBuf;
use std::sync::Arc;

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

/// The server's shared state.
#[derive(Clone)]
pub struct AppState<S> {
    /// Everything Charter keeps.
    pub store: S,
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
    /// request). `AppState::new` puts it in the system's temporary directory; `charter serve`
    /// and `charter demo` on SQLite put it in the data directory, on disk (a `/tmp` may be
    /// memory).
    pub staging_dir: PathBuf,
}

impl<S: charter_store::Store + Clone> AppState<S> {
    /// State over `store` with the system clock and the default body limit (starts the action
    /// writer: call inside a Tokio runtime).
    pub fn new(store: S) -> AppState<S> {
        AppState {
            runtime: crate::runtime::Runtime::new(store.clone()),
            store,
            clock: Arc::new(SystemClock),
            body_limit: DEFAULT_BODY_LIMIT,
            metrics: crate::metrics::Metrics::default(),
            usage: crate::usage::Usage::default(),
            staging_dir: std::env::temp_dir(),
        }
    }
}
