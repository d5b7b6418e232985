//! Integration tests of charter-core: engine cases as data files, invalid-input cases, and
//! property tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness fails by panicking"
)]

mod cases;
mod differential;
mod limits;
mod properties;
mod schema;
