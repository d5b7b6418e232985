//! The store's operations, written once for both backends: this folder is compiled twice, as
//! `sqlite::ops` and `postgres::ops`, each parent module supplying `Db`, `begin` and the few
//! SQL fragments that differ. Placeholders are `$1, $2, ...` in order of first use, which both
//! SQLite and PostgreSQL read the same way.
//!
//! One module per part of the product: the audit chain, accounts (tenants, agents, keys),
//! policies, limits settled outside a run, runs, the group commit of checks, recorded history
//! (Validate's pages, imports), the Monitor's reads, the web workspace's sessions, and the query
//! builder they share.

use jiff::Timestamp;
use sqlx::Transaction;

use super::{
    BYTE_ORDER, Db, FOR_UPDATE, LOCK_COUNTER, LOCK_SUBJECT, LOCK_SUBJECT_SHARED, NAME_CONTAINS,
    RULE_COUNT, begin,
};
use crate::error::StoreError;

mod accounts;
pub(crate) mod audit;
pub(crate) mod checks;
mod health;
pub(crate) mod history;
mod limits;
pub(crate) mod monitor;
pub(crate) mod policies;
pub(crate) mod query;
mod retention;
mod runs;
mod sessions;

pub(crate) use accounts::{
    authenticate, count_keys, create_agent, create_key, create_tenant, list_agents, list_keys,
    list_tenants, record_key_usage, revoke_key,
};
pub(crate) use audit::{audit_list, audit_verify};
pub(crate) use checks::commit_checks;
pub(crate) use health::readiness;
pub(crate) use history::actions_page;
pub(crate) use limits::{seed, settle};
pub(crate) use monitor::{first_violation_at, list_violations, violation_stats};
pub(crate) use policies::{
    activate, add_rule, clone_policy, create_policy, delete_policy, deprecate, get_policy,
    import_policies, latest_validation, list_policies, policies_page, record_export,
    record_validation, remove_rule, update_policy, versions, versions_near,
};

pub(crate) use retention::{audit_chains, limit_policies, prune_batch};
pub(crate) use sessions::{choose_session_tenant, create_session, end_session, session};

pub(crate) use runs::{
    end_run, get_run, list_runs, pinned_policies, run_actions, run_actions_page, start_run,
};

type Result<T> = std::result::Result<T, StoreError>;
pub(crate) type Tx = Transaction<'static, Db>;

fn ms(at: Timestamp) -> i64 {
    at.as_millisecond()
}

fn time(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Backend(format!("bad time {ms}: {e}")))
}

fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("{what} out of range: {v}")))
}

/// Binds `params` to `query`, in order.
fn bind_all<'q>(
    query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
    params: &[crate::commit::Param<'q>],
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    params.iter().fold(query, |query, param| match *param {
        crate::commit::Param::Text(text) => query.bind(text),
        crate::commit::Param::MaybeText(text) => query.bind(text),
        crate::commit::Param::Int(n) => query.bind(n),
    })
}
