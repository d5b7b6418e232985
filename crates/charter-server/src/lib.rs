//! Charter's HTTP API v1 and its web workspace over a [`charter_store::Store`]: the only crate
//! that knows HTTP. Handlers parse outside input once (strictly, with JSON paths in errors), ask
//! the store, and render; the API's errors are one type, [`ApiError`], in the API's error
//! format. [`app`] is both: the workspace at `/` beside the API at `/v1`.

mod answers;
mod api;
pub mod demo;
mod error;
mod extract;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod live;
mod metrics;
mod process;
mod pruning;
mod runtime;
mod schemas;
mod serve;
mod state;
mod streams;
mod usage;
mod validation;
mod web;

pub use api::router;
pub use error::ApiError;
pub use extract::Caller;
pub use metrics::{Exposition, Metrics};
pub use runtime::{Checked, Runtime};
pub use schemas::openapi;
pub use serve::{SHUTDOWN_GRACE, bootstrap, serve};
pub use state::{
    AppState, Clock, DEFAULT_BODY_LIMIT, DEFAULT_STAGING_RESERVE, Shared, SystemClock,
};
pub use streams::{DEFAULT_STREAMS_PER_KEY, Streams};
pub use usage::Usage;
pub use web::app;
