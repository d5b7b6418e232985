//! End-to-end tests against the real `charter` binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness fails by panicking"
)]

mod backup;
mod cli;
mod crash;
mod monitor;
mod outage;
mod serve;
mod walkthrough;
