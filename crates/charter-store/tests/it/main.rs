//! The store's conformance suite: every test runs against SQLite and against PostgreSQL.
//!
//! PostgreSQL is the server at `CHARTER_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets its own schema. When it is not
//! reachable the PostgreSQL half is skipped with a message, unless `CI=true` or
//! `CHARTER_TEST_POSTGRES=1` (set by `scripts/test` when it found the server), where that fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness fails by panicking"
)]

mod harness;
mod history;
mod lifecycle;
mod limits;
mod runs;
mod seeding;
mod sessions;
mod tenancy;
mod upgrades;
