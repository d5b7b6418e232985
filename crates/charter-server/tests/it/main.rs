//! In-process HTTP tests of API v1 (tower `oneshot` against the router over a real SQLite
//! store): every endpoint's happy path, refused transitions, bad input, and tenant isolation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness fails by panicking"
)]

mod answers;
mod app;
mod consistency;
mod health;
mod hostile;
mod isolation;
mod limits;
mod metrics;
mod monitor;
mod openapi;
mod policies;
mod replay;
mod requests;
mod runs;
mod workspace;
