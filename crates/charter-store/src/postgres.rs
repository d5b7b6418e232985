//! The PostgreSQL backend: several nodes share one database; row locks (`FOR UPDATE`)
//! serialise changes to one policy and to one audit chain.

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Pool, Postgres, Transaction};

use crate::error::StoreError;

#[path = "ops/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "ops/ is compiled once per backend, on purpose"
)]
pub(crate) mod ops;

/// This build's migrations of the PostgreSQL schema, run at open and counted by readiness.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub(crate) type Db = Postgres;
/// Serialises settlements of one counter across every node, until the transaction ends.
pub(crate) const LOCK_COUNTER: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
/// A subject's lock (`crate::counting`): exclusive while one of its counters is seeded, shared
/// by a batch from before it reads the subject's watched counters until it commits.
pub(crate) const LOCK_SUBJECT: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
pub(crate) const LOCK_SUBJECT_SHARED: &str =
    "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))";
pub(crate) const FOR_UPDATE: &str = " FOR UPDATE";
/// Orders text by its bytes, as Rust sorts it, whatever the database's default collation.
pub(crate) const BYTE_ORDER: &str = " COLLATE \"C\"";
/// A policy's number of rules: as kept, else counted in its `rules` column (text holding a
/// JSON array).
pub(crate) const RULE_COUNT: &str =
    "coalesce(rule_count, CAST(json_array_length(rules::json) AS BIGINT))";
/// Whether a policy's lowercased name (`name_folded`) contains the search `?`.
pub(crate) const NAME_CONTAINS: &str = "strpos(name_folded, ?) > 0";

pub(crate) async fn begin(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, StoreError> {
    Ok(pool.begin().await?)
}

/// Charter's store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: Pool<Db>,
    /// Limit counters known to be seeded (by this node or another).
    known: crate::counting::KnownCounters,
    /// The channel on which this database's nodes announce their violation events
    /// (`crate::feed`).
    channel: String,
    /// This node's tag in those announcements.
    node: String,
}

/// How long a request waits for a connection before it is refused as unavailable (503). While
/// the database is away the pool keeps trying to connect for that long: sqlx's 30 s would hold
/// every check that long before answering.
const ACQUIRE: Duration = Duration::from_secs(5);

/// How long the first connection may take before starting fails.
const FIRST_CONNECTION: Duration = Duration::from_secs(10);

/// Makes one connection by itself before the pool: a database that cannot be reached fails the
/// start within seconds with its own cause (refused, unknown host, bad password, no such
/// database), where the pool would retry for its 30 s and say only that it timed out.
async fn first_connection(options: &PgConnectOptions) -> Result<(), StoreError> {
    let place = format!(
        "PostgreSQL at {}:{}",
        options.get_host(),
        options.get_port()
    );
    match tokio::time::timeout(FIRST_CONNECTION, PgConnection::connect_with(options)).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Backend(format!(
            "cannot connect to {place}: {e}"
        ))),
        Err(_) => Err(StoreError::Backend(format!(
            "cannot connect to {place}: no answer within {} s",
            FIRST_CONNECTION.as_secs()
        ))),
    }
}

impl PgStore {
    pub(crate) async fn prune_batch(
        &self,
        step: &crate::retention::Step,
    ) -> Result<(crate::Pruned, bool), StoreError> {
        let mut tx = begin(&self.pool).await?;
        let batch = ops::prune_batch(&mut tx, step).await?;
        tx.commit().await?;
        Ok(batch)
    }

    /// Connects to `url` and migrates the database.
    pub(crate) async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (a test gives each run its own `search_path` schema).
    pub(crate) async fn connect_with(options: PgConnectOptions) -> Result<PgStore, StoreError> {
        // Multi-row inserts have one statement text per row count and table: more than the
        // default cache of 100 prepared statements holds.
        let options = options.statement_cache_capacity(512);
        first_connection(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE)
            .connect_with(options)
            .await?;
        crate::migrations::tolerant(&MIGRATOR)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating: {e}")))?;
        // Rows written before what the list keeps of them (`policies.name_folded`, `rule_count`),
        // or by an older node. Only the list's speed depends on it: no reason not to start.
        if let Err(e) = ops::policies::fill_kept(&pool).await {
            tracing::warn!(error = %e, "filling what the policy list keeps of each policy");
        }
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        Ok(PgStore {
            pool,
            known: crate::counting::KnownCounters::default(),
            channel: crate::feed::channel(&schema),
            node: crate::new_id_suffix(),
        })
    }

    /// Connects anew with the same options, as a restarted process (or another node) would.
    pub(crate) async fn reopen(&self) -> Result<PgStore, StoreError> {
        let options = (*self.pool.connect_options()).clone();
        Self::connect_with(options).await
    }

    /// Closes the pool (every connection), as a process would on shutdown.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Validate's page of recorded actions.
    pub(crate) async fn recorded_page(
        &self,
        principal: &crate::Principal,
        page: &crate::HistoryPage,
    ) -> Result<Vec<crate::RecordedRow>, StoreError> {
        ops::actions_page(&self.pool, principal, page).await
    }

    /// A run import, in one transaction: nothing here waits behind it (no database-wide
    /// write lock).
    pub(crate) async fn import_recorded(
        &self,
        principal: &crate::Principal,
        runs: &mut impl crate::RunSource,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = begin(&self.pool).await?;
        let piece = ops::history::import_piece(&mut tx, principal, runs, 0, u64::MAX, None).await?;
        tx.commit().await?;
        Ok((piece.runs, piece.actions))
    }

    /// The group commit of `batch`.
    pub(crate) async fn commit_batch(
        &self,
        batch: crate::CheckBatch,
    ) -> Result<Vec<crate::CheckOutcome>, StoreError> {
        self.known.seed_for(batch.checks(), false, self).await?;
        let announce = ops::checks::Announce {
            channel: &self.channel,
            node: &self.node,
        };
        ops::commit_checks(&self.pool, batch.checks(), &self.known, Some(announce)).await
    }

    /// The violation events the other nodes on this database commit, as they commit.
    pub(crate) async fn violation_feed(&self) -> Result<crate::ViolationFeed, StoreError> {
        crate::feed::ViolationFeed::listen(&self.pool, &self.channel, &self.node).await
    }

    /// Seeds the counters `check` claims unseeded, before it joins a batch
    /// (`crate::counting`).
    pub(crate) async fn seed_counters(
        &self,
        check: &crate::PendingCheck,
    ) -> Result<(), StoreError> {
        self.known
            .seed_for(std::slice::from_ref(check), true, self)
            .await
    }

    /// Runs raw SQL: for tests that prove the database itself refuses forbidden changes.
    pub(crate) async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

impl crate::counting::MakeSeed for PgStore {
    async fn make_seed(&self, seed: &crate::counting::Seed) -> Result<(), StoreError> {
        ops::seed(&self.pool, seed, &self.known).await
    }
}
